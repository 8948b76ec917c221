//! linktoken-gateway: the thin web face of the linktoken extension. See `--help` and
//! docs/gateway.md.

mod config;
mod db;
mod framing;
mod html;
mod limits;
mod metrics;
mod routes;
mod screen;

use clap::Parser;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Most request headers (count) and bytes of request head a client may send (the request
/// screen holds at most MAX_HEAD_BYTES of an unfinished head per connection).
const MAX_HEADERS: usize = 64;
const MAX_HEAD_BYTES: usize = 16 * 1024;

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn build(cfg: config::Config) -> Result<routes::App, String> {
    let templates = html::Templates::new(cfg.templates.as_deref())?;
    let db = db::Db::new(&cfg)?;
    let limiter = limits::FailureLimiter::new(cfg.failed_lookups_per_minute);
    Ok(routes::App {
        cfg,
        db,
        templates,
        limiter,
        metrics: Arc::default(),
    })
}

#[tokio::main]
async fn main() {
    let cfg = config::Config::parse();
    let listen = cfg.listen;
    let header_timeout = cfg.header_timeout();
    let grace = cfg.shutdown_grace();
    let app = match build(cfg) {
        Ok(app) => Arc::new(app),
        Err(e) => {
            eprintln!("linktoken-gateway: {e}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("linktoken-gateway: cannot listen on {listen}: {e}");
            std::process::exit(2);
        }
    };
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    eprintln!("linktoken-gateway listening on http://{local}");

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
    let graceful = GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // e.g. out of file descriptors: keep serving the open connections.
                        eprintln!("warn: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let reporter = screen::Reporter { metrics: app.metrics.clone(), peer: peer.ip() };
                let app = app.clone();
                let service = service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(routes::handle(&app, req, peer).await) }
                });
                let io = screen::Screened::new(stream, MAX_HEAD_BYTES, reporter);
                let conn = graceful.watch(http.serve_connection(TokioIo::new(io), service));
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = &mut shutdown => {
                eprintln!("linktoken-gateway: shutting down, finishing in-flight requests");
                break;
            }
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => eprintln!("linktoken-gateway: stopped"),
        _ = tokio::time::sleep(grace) => eprintln!("linktoken-gateway: stopped after the grace period with requests still open"),
    }
}
