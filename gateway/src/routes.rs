//! The route table: which handler a request goes to, the per-client cap of requests in
//! flight, the timeout, HEAD, the security headers, metrics and the access log. The handlers
//! are one module per resource: links.rs, codes.rs, requests.rs; health and metrics here.
//!
//! * `GET|HEAD /t/{token}`: the landing page. Only looks (READ ONLY transaction), never changes a token.
//! * `POST /t/{token}`: redeems with the submitted form; RFC 8058 one-click included.
//! * `GET|HEAD /code/{purpose}`, `POST /code/{purpose}`: the typed-code form and its redemption.
//! * `GET|HEAD /request/{purpose}`, `POST /request/{purpose}`: the request form (requests.rs).
//! * `GET /healthz`, `GET /metrics` (or on `--metrics-listen`), `GET /static/style.css`.
//!
//! Malformed tokens are answered without a database round trip; every state-changing POST
//! passes the cross-site check first (post.rs); one client's requests in flight are
//! capped; every response carries the security headers; the access log names a token only by
//! a short hash prefix.

use crate::app::{App, Resp};
use crate::framing;
use crate::html::STYLE_CSS;
use crate::limits::Admitted;
use crate::metrics::PoolStatus;
use crate::respond::{error, not_allowed, not_found, security_headers, text};
use crate::{codes, links, requests};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// The listener a request came in on: the main one, or `--metrics-listen` (only /metrics).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Main,
    Metrics,
}

/// The fixed route names used in metrics and logs (never a raw path).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Link(&'a str),
    Code(&'a str),
    Request(&'a str),
    Health,
    Metrics,
    Style,
    Other,
}

impl Route<'_> {
    fn name(&self) -> &'static str {
        match self {
            Route::Link(_) => "link",
            Route::Code(_) => "code",
            Route::Request(_) => "request",
            Route::Health => "healthz",
            Route::Metrics => "metrics",
            Route::Style => "static",
            Route::Other => "other",
        }
    }
}

fn route(path: &str) -> Route<'_> {
    match path {
        "/healthz" => Route::Health,
        "/metrics" => Route::Metrics,
        "/static/style.css" => Route::Style,
        _ => {
            if let Some(token) = path
                .strip_prefix("/t/")
                .filter(|t| !t.is_empty() && !t.contains('/'))
            {
                Route::Link(token)
            } else if let Some(purpose) = path
                .strip_prefix("/code/")
                .filter(|p| linktoken_core::input::purpose_name("purpose", p).is_ok())
            {
                Route::Code(purpose)
            } else if let Some(purpose) = path
                .strip_prefix("/request/")
                .filter(|p| linktoken_core::input::purpose_name("purpose", p).is_ok())
            {
                Route::Request(purpose)
            } else {
                Route::Other
            }
        }
    }
}

/// What the access log shows instead of a path that holds a token.
fn log_path(route: &Route<'_>) -> String {
    match route {
        Route::Link(t) => {
            let digest = Sha256::digest(t.as_bytes());
            let prefix: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
            format!("/t/#{prefix}")
        }
        Route::Code(purpose) => format!("/code/{purpose}"),
        Route::Request(purpose) => format!("/request/{purpose}"),
        Route::Health => "/healthz".into(),
        Route::Metrics => "/metrics".into(),
        Route::Style => "/static/style.css".into(),
        Route::Other => "(other)".into(),
    }
}

fn client_ip(headers: &HeaderMap, peer: SocketAddr, trust_proxy: bool) -> IpAddr {
    if trust_proxy {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .next_back();
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    peer.ip()
}

/// Which route a path is on this listener: with `--metrics-listen`, /metrics lives only there
/// and that listener serves nothing else.
fn route_on<'p>(app: &App, listener: Listener, path: &'p str) -> Route<'p> {
    match (listener, route(path)) {
        (Listener::Metrics, Route::Metrics) => Route::Metrics,
        (Listener::Metrics, _) => Route::Other,
        (Listener::Main, Route::Metrics) if app.cfg.metrics_listen.is_some() => Route::Other,
        (Listener::Main, r) => r,
    }
}

/// A place among the client's requests in flight, for the routes that use the database
/// (`Ok(None)` for the others); `Err` when the client has too many, answered with
/// [`too_many_in_flight`]. Checked before anything else, so a client over its cap costs no pool
/// connection and no wait.
fn admit<'a>(app: &'a App, route: &Route<'_>, ip: IpAddr) -> Result<Option<Admitted<'a>>, ()> {
    if !matches!(route, Route::Link(_) | Route::Code(_) | Route::Request(_)) {
        return Ok(None);
    }
    app.in_flight.admit(ip).map(Some).ok_or(())
}

fn too_many_in_flight(app: &App) -> Resp {
    app.metrics.refused("in_flight");
    let mut resp = error(
        app,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests at once",
        "Your address has several requests in progress already. Please wait a moment and try again.",
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// Entry point for every request.
pub async fn handle(
    app: &App,
    req: Request<Incoming>,
    peer: SocketAddr,
    listener: Listener,
) -> Resp {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = route_on(app, listener, &path);
    let ip = client_ip(req.headers(), peer, app.cfg.trust_proxy);
    let mut resp = match admit(app, &route, ip) {
        Err(()) => too_many_in_flight(app),
        Ok(_admitted) => {
            match tokio::time::timeout(app.cfg.request_timeout(), dispatch(app, req, route, ip))
                .await
            {
                Ok(resp) => resp,
                Err(_) => error(
                    app,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "This took too long. Please try again in a moment.",
                ),
            }
        }
    };
    if method == Method::HEAD {
        // Same status and headers as GET, no body.
        let len = resp.body().size_hint().exact().unwrap_or(0);
        *resp.body_mut() = Full::new(Bytes::new());
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    security_headers(&app.cfg, resp.headers_mut());
    let took = started.elapsed();
    app.metrics
        .request(route.name(), resp.status().as_u16(), took);
    eprintln!(
        "access {ip} {method} {} {} {}ms",
        log_path(&route),
        resp.status().as_u16(),
        took.as_millis()
    );
    resp
}

async fn dispatch(app: &App, req: Request<Incoming>, route: Route<'_>, ip: IpAddr) -> Resp {
    if framing::unsupported_transfer_coding(req.headers()) {
        // The body cannot be read, so neither can the next request on this connection.
        let mut r = error(
            app,
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The request could not be read.",
        );
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    let method = req.method().clone();
    let read_only = method == Method::GET || method == Method::HEAD;
    match route {
        Route::Link(tok) if read_only => links::landing(app, &req, tok, ip).await,
        Route::Link(tok) if method == Method::POST => links::submit(app, req, tok, ip).await,
        Route::Link(_) => not_allowed(app, "GET, HEAD, POST"),
        Route::Code(purpose) if read_only => codes::form(app, &req, purpose, ip).await,
        Route::Code(purpose) if method == Method::POST => {
            codes::submit(app, req, purpose, ip).await
        }
        Route::Code(_) => not_allowed(app, "GET, HEAD, POST"),
        Route::Request(purpose) if read_only => requests::form(app, &req, purpose, ip).await,
        Route::Request(purpose) if method == Method::POST => {
            requests::submit(app, req, purpose, ip).await
        }
        Route::Request(_) => not_allowed(app, "GET, HEAD, POST"),
        _ if !read_only => not_allowed(app, "GET, HEAD"),
        Route::Health => {
            // From the health probe's last result (health.rs): no pool connection per check.
            if app.health.healthy() {
                text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into())
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    "database unavailable\n".into(),
                )
            }
        }
        Route::Metrics => {
            let s = app.db.status();
            let pool = PoolStatus {
                max_size: s.max_size,
                size: s.size,
                available: s.available,
                waiting: s.waiting,
            };
            text(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                app.metrics.render(&pool),
            )
        }
        Route::Style => text(StatusCode::OK, "text/css; charset=utf-8", STYLE_CSS.into()),
        Route::Other => not_found(app),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linktoken_core::token;

    #[test]
    fn routes_and_log_paths_never_hold_the_token() {
        let t = token::generate(32).unwrap();
        let path = format!("/t/{t}");
        let r = route(&path);
        assert!(matches!(r, Route::Link(x) if x == t));
        let logged = log_path(&r);
        assert!(!logged.contains(&t[4..]));
        assert!(logged.starts_with("/t/#") && logged.len() == 12);
        assert!(matches!(route("/t/"), Route::Other));
        assert!(matches!(route("/t/a/b"), Route::Other));
        assert_eq!(log_path(&route(&format!("/x/{t}"))), "(other)");
        let r = route("/request/magic_login");
        assert!(matches!(r, Route::Request("magic_login")));
        assert_eq!(log_path(&r), "/request/magic_login");
        assert!(matches!(route("/request/Not A Purpose"), Route::Other));
        assert!(matches!(route("/request/a/b"), Route::Other));
    }

    #[test]
    fn forwarded_for_only_when_trusted() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.7, 198.51.100.2"),
        );
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(client_ip(&h, peer, false).to_string(), "127.0.0.1");
        assert_eq!(client_ip(&h, peer, true).to_string(), "198.51.100.2");
    }
}
