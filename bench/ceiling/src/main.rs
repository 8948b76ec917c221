//! The HTTP ceiling of the gateway benchmark (bench/http/run.sh): the same hyper 1 HTTP/1.1
//! server setup as linktoken-gateway (multi-threaded tokio, keep-alive, a header-read timer),
//! but every request is answered at once with one constant HTML page. Whatever the gateway
//! does beyond this (routing, templates, the database) shows up as the distance to this server.
//!
//! Usage: linktoken-bench-ceiling PORT   (listens on 127.0.0.1:PORT only)

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{header, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpListener;

const PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Ceiling</title></head><body><main><h1>Ceiling</h1>\
<p>A constant page: the fastest answer this HTTP stack gives.</p></main></body></html>\n";

async fn answer(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from_static(PAGE.as_bytes())));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Ok(resp)
}

fn port_from_args() -> Result<u16, String> {
    let arg = std::env::args()
        .nth(1)
        .ok_or("usage: linktoken-bench-ceiling PORT")?;
    arg.parse()
        .map_err(|_| format!("not a port number: {arg:?}"))
}

#[tokio::main]
async fn main() {
    let port = port_from_args().unwrap_or_else(|e| {
        eprintln!("linktoken-bench-ceiling: {e}");
        std::process::exit(2);
    });
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = TcpListener::bind(addr).await.unwrap_or_else(|e| {
        eprintln!("linktoken-bench-ceiling: cannot listen on {addr}: {e}");
        std::process::exit(2);
    });
    eprintln!("linktoken-bench-ceiling listening on http://{addr}");
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .keep_alive(true);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("warn: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let conn = http.serve_connection(TokioIo::new(stream), service_fn(answer));
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
