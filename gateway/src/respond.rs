//! The responses handlers send: pages and errors, the 429s, the answer after a successful
//! redemption (redirect, session cookie), database errors mapped to statuses, and the security
//! headers every response carries.

use crate::app::{App, Resp};
use crate::browser;
use crate::config::Config;
use crate::db::DbError;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use linktoken_core::page::{self, Page};
use std::net::IpAddr;
use std::time::Instant;

/// Too many failed lookups from this address: the 429 to send instead.
pub fn rate_limited(app: &App, ip: IpAddr) -> Option<Resp> {
    let wait = app.limiter.check(ip, Instant::now())?;
    Some(too_many(
        app,
        wait,
        "Too many attempts",
        "Too many links or codes that did not work came from your address. Please wait a minute and try again.",
    ))
}

/// 429 with Retry-After (whole seconds, at least 1).
pub fn too_many(app: &App, wait: std::time::Duration, title: &str, message: &str) -> Resp {
    let mut resp = error(app, StatusCode::TOO_MANY_REQUESTS, title, message);
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(wait.as_secs().max(1)),
    );
    resp
}

/// After a successful redemption: a session cookie and redirect from the action's result, or the
/// purpose's success URL, or the success page.
pub fn success(app: &App, page: &Page, result: Option<&serde_json::Value>) -> Resp {
    let redirect = result
        .and_then(|r| r.get("redirect"))
        .and_then(|v| v.as_str())
        .filter(|u| page::is_local_path(u))
        .or(page
            .success_url
            .as_deref()
            .filter(|u| page::is_local_path(u)));
    let mut resp = match redirect {
        Some(location) => {
            let mut r = text(
                StatusCode::SEE_OTHER,
                "text/plain; charset=utf-8",
                String::new(),
            );
            if let Ok(v) = HeaderValue::from_str(location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        None => html(StatusCode::OK, app.templates.success(page)),
    };
    if let Some(cookie) = result
        .and_then(|r| r.get("session"))
        .and_then(|s| browser::session_cookie(s, app.cfg.is_https()))
    {
        resp.headers_mut().append(header::SET_COOKIE, cookie);
    }
    resp
}

pub fn db_error(app: &App, e: DbError) -> Resp {
    match e {
        DbError::Unavailable(why) => {
            eprintln!("warn: database unavailable: {why}");
            let mut r = error(app, StatusCode::SERVICE_UNAVAILABLE, "Temporarily unavailable", "We cannot check your link right now. Please try again in a minute; the link still works.");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
        DbError::NotReady(why) => {
            eprintln!("error: database not set up for this: {why}");
            let mut r = error(
                app,
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "This cannot be done right now. Please try again later.",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            r
        }
        DbError::Rejected(message) | DbError::Failed(message) => {
            eprintln!("error: database: {message}");
            error(
                app,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again later; the link still works.",
            )
        }
    }
}

pub fn status_page(app: &App, status: &str) -> Resp {
    let code = if status == "invalid" {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::GONE
    };
    html(code, app.templates.status(status))
}

pub fn not_found(app: &App) -> Resp {
    error(
        app,
        StatusCode::NOT_FOUND,
        "Not found",
        "There is nothing here.",
    )
}

pub fn too_large(app: &App) -> Resp {
    error(
        app,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Too much data",
        "The form was larger than this page accepts.",
    )
}

pub fn not_allowed(app: &App, allow: &'static str) -> Resp {
    let mut r = error(
        app,
        StatusCode::METHOD_NOT_ALLOWED,
        "Not allowed",
        "This address does not accept that kind of request.",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

pub fn error(app: &App, code: StatusCode, title: &str, message: &str) -> Resp {
    html(code, app.templates.error(title, message))
}

pub fn html(code: StatusCode, body: String) -> Resp {
    text(code, "text/html; charset=utf-8", body)
}

pub fn text(code: StatusCode, content_type: &'static str, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Headers on every response: nothing cached, no referrer (the URL holds a token), no scripts
/// or foreign resources, no framing, no indexing; HSTS behind https.
pub fn security_headers(cfg: &Config, h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if cfg.is_https() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}
