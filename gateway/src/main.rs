//! linktoken-gateway: the thin web face of the linktoken extension. See `--help` and
//! docs/gateway.md.

mod app;
mod browser;
mod codes;
mod config;
mod db;
mod framing;
mod health;
mod html;
mod limits;
mod links;
mod mailer;
mod metrics;
mod post;
mod requests;
mod respond;
mod routes;
mod screen;
mod shutdown;
mod tls;

use clap::Parser;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Most request headers (count) and bytes of request head a client may send (the request
/// screen holds at most MAX_HEAD_BYTES of an unfinished head per connection).
const MAX_HEADERS: usize = 64;
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// hyper's HTTP/1 server as the gateway runs it (also what screen/hyper_alone.rs tests).
fn http_builder(header_timeout: Duration) -> http1::Builder {
    let mut http = http1::Builder::new();
    // Without a timer hyper silently has no header-read timeout.
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        // The request screen ends hyper's input after a refused head: answers to the requests
        // before it must still be written, not cut off (see screen.rs).
        .half_close(true)
        .keep_alive(true);
    http
}

fn build(cfg: config::Config) -> Result<app::App, String> {
    let origin = browser::Origin::of_url(&cfg.public_url)?;
    let templates = html::Templates::new(cfg.templates.as_deref())?;
    let db = db::Db::new(&cfg)?;
    let limiter = limits::FailureLimiter::new(cfg.failed_lookups_per_minute);
    let in_flight = limits::InFlight::new(cfg.in_flight_cap());
    let request_budget = limits::FailureLimiter::new(cfg.requests_per_minute);
    if cfg.request_min_duration >= cfg.request_timeout() {
        // Every request form POST would be padded past its own timeout and answer 503.
        return Err(format!(
            "--request-min-duration ({} ms) must be shorter than --request-timeout-ms ({} ms)",
            cfg.request_min_duration.as_millis(),
            cfg.request_timeout().as_millis()
        ));
    }
    Ok(app::App {
        cfg,
        origin,
        db,
        templates,
        limiter,
        request_budget,
        in_flight,
        health: health::Health::default(),
        metrics: Arc::default(),
    })
}

async fn bind(addr: std::net::SocketAddr) -> TcpListener {
    match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("linktoken-gateway: cannot listen on {addr}: {e}");
            std::process::exit(2);
        }
    }
}

fn local(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// The next connection on `listener`; never, when there is none.
async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// e.g. out of file descriptors: keep serving the open connections, try again shortly.
async fn accept_failed(e: std::io::Error) {
    eprintln!("warn: accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Serves one accepted connection: through the request screen, watched for graceful shutdown.
fn serve(
    app: &Arc<app::App>,
    http: &http1::Builder,
    graceful: &GracefulShutdown,
    stream: TcpStream,
    peer: std::net::SocketAddr,
    listener: routes::Listener,
) {
    let reporter = screen::Reporter {
        metrics: app.metrics.clone(),
        peer: peer.ip(),
    };
    let app = app.clone();
    let service = service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(routes::handle(&app, req, peer, listener).await) }
    });
    let io = screen::Screened::new(stream, MAX_HEAD_BYTES, reporter);
    let conn = graceful.watch(http.serve_connection(TokioIo::new(io), service));
    tokio::spawn(async move {
        let _ = conn.await;
    });
}

#[tokio::main]
async fn main() {
    if std::env::args_os().nth(1).is_some_and(|a| a == "mailer") {
        return mailer::main().await;
    }
    let cfg = config::Config::parse();
    let shutdown = shutdown::signal();
    let listen = cfg.listen;
    let metrics_listen = cfg.metrics_listen;
    let header_timeout = cfg.header_timeout();
    let grace = cfg.shutdown_grace();
    let app = match build(cfg) {
        Ok(app) => Arc::new(app),
        Err(e) => {
            eprintln!("linktoken-gateway: {e}");
            std::process::exit(2);
        }
    };
    // The first health probe before the first request, so /healthz is right from the start.
    app.health.probe(&app.db).await;
    let probe = app.clone();
    tokio::spawn(async move { probe.health.run(&probe.db).await });
    let metrics_listener = match metrics_listen {
        Some(addr) => Some(bind(addr).await),
        None => None,
    };
    let listener = bind(listen).await;
    if let Some(m) = &metrics_listener {
        eprintln!("linktoken-gateway serving /metrics on http://{}", local(m));
    }
    eprintln!("linktoken-gateway listening on http://{}", local(&listener));

    let http = http_builder(header_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => serve(&app, &http, &graceful, stream, peer, routes::Listener::Main),
                Err(e) => accept_failed(e).await,
            },
            accepted = accept(metrics_listener.as_ref()) => match accepted {
                Ok((stream, peer)) => serve(&app, &http, &graceful, stream, peer, routes::Listener::Metrics),
                Err(e) => accept_failed(e).await,
            },
            _ = &mut shutdown => {
                eprintln!("linktoken-gateway: shutting down, finishing in-flight requests");
                break;
            }
        }
    }
    drop(listener);
    drop(metrics_listener);
    tokio::select! {
        _ = graceful.shutdown() => eprintln!("linktoken-gateway: stopped"),
        _ = tokio::time::sleep(grace) => eprintln!("linktoken-gateway: stopped after the grace period with requests still open"),
    }
}
