//! The request form (issue 12): "enter your email" → a mail with a link.
//!
//! * `GET|HEAD /request/{purpose}`: a form with one field, `identifier`, for purposes with a
//!   resolver (READ ONLY); the usual 404 for any other, unknown or malformed purpose.
//! * `POST /request/{purpose}`: `linktoken.request(purpose, identifier, bind)`, which issues and
//!   queues a mail for a known identifier and does nothing for others. The answer is the same
//!   page, status and headers for every identifier, and takes at least
//!   `--request-min-duration` (padded after COMMIT), so that neither its content nor its time
//!   tells whether the identifier is known.
//!
//! The POST's form is read as every POST's is (post.rs: the cross-site check first).

use crate::app::{context, App, Resp};
use crate::browser;
use crate::db::{ClientContext, DbError};
use crate::post::{read_post, OneClick};
use crate::respond::{db_error, html, not_found, too_many};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, StatusCode};
use linktoken_core::page;
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long the bind cookie set by the request form lives: longer than any link's TTL is
/// likely to be, so the link still works in this browser when the mail arrives.
const BIND_COOKIE_MAX_AGE: i64 = 7 * 24 * 3600;

/// What the handlers below produce, rendered by [`answer`].
enum Answer {
    /// 200 with this page.
    Page(String),
    /// 200 with this page and the bind cookie to set.
    Sent(String, Option<HeaderValue>),
    /// The gateway's usual 404: no such purpose, or one without a resolver.
    NotFound,
    /// A database error, mapped as on every route.
    Failed(DbError),
}

/// GET|HEAD /request/{purpose}: the request form.
pub async fn form(app: &App, req: &Request<Incoming>, purpose: &str, ip: IpAddr) -> Resp {
    let shown = form_page(app, purpose, &context(req.headers(), ip)).await;
    answer(app, shown)
}

/// POST /request/{purpose}: the client's request budget, then the form as every POST reads it,
/// then [`send`]. The same answer for every identifier.
pub async fn submit(app: &App, req: Request<Incoming>, purpose: &str, ip: IpAddr) -> Resp {
    if let Some(wait) = app.request_budget.check(ip, Instant::now()) {
        return too_many(
            app,
            wait,
            "Too many requests",
            "Too many links were asked for from your address. Please wait a minute and try again.",
        );
    }
    let ctx = context(req.headers(), ip);
    let headers = req.headers().clone();
    let fields = match read_post(app, req, OneClick::NotExempt).await {
        Ok(form) => form.fields,
        Err(resp) => return resp,
    };
    let sent = send(app, purpose, &fields, &headers, ip, &ctx).await;
    answer(app, sent)
}

fn answer(app: &App, answer: Answer) -> Resp {
    match answer {
        Answer::Page(body) => html(StatusCode::OK, body),
        Answer::Sent(body, cookie) => {
            let mut resp = html(StatusCode::OK, body);
            if let Some(cookie) = cookie {
                resp.headers_mut().append(header::SET_COOKIE, cookie);
            }
            resp
        }
        Answer::NotFound => not_found(app),
        Answer::Failed(e) => db_error(app, e),
    }
}

/// The form, or 404.
async fn form_page(site: &App, purpose: &str, ctx: &ClientContext) -> Answer {
    match site.db.request_page(purpose, ctx).await {
        Ok(Some(page)) => Answer::Page(site.templates.landing(
            &page.request_form(),
            &format!("/request/{purpose}"),
            None,
            &Map::new(),
        )),
        Ok(None) => Answer::NotFound,
        Err(e) => Answer::Failed(e),
    }
}

/// A fresh bind value: 32 random bytes in hex (nothing shaped like a token).
fn fresh_bind() -> Option<String> {
    let mut bytes = [0u8; 32];
    linktoken_core::token::fill_random(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// After the form was read (cross-site check included): counts the request against the
/// client's budget, calls linktoken.request with the browser's bind value (its cookie, else a
/// new one, which the answer sets), and answers no sooner than `--request-min-duration` after
/// it started.
async fn send(
    site: &App,
    purpose: &str,
    fields: &Map<String, Value>,
    headers: &HeaderMap,
    ip: IpAddr,
    ctx: &ClientContext,
) -> Answer {
    let started = Instant::now();
    site.request_budget.failed(ip, started);
    let identifier = fields
        .get(page::IDENTIFIER_FIELD)
        .and_then(Value::as_str)
        .unwrap_or("");
    let https = site.cfg.is_https();
    // Passed for every purpose: request() binds only the tokens of bind_browser purposes (the
    // gateway cannot tell which those are, and the answer must not differ anyway).
    let Some(bind) = browser::bind_cookie(headers, https).or_else(fresh_bind) else {
        return Answer::Failed(DbError::Failed(
            "no random bytes for a bind cookie".to_owned(),
        ));
    };
    let answer = match site.db.request(purpose, identifier, &bind, ctx).await {
        Ok(Some(page)) => {
            let cookie = browser::session_cookie(
                &serde_json::json!({
                    "name": browser::BIND_COOKIE,
                    "value": bind,
                    "max_age": BIND_COOKIE_MAX_AGE,
                }),
                https,
            );
            Answer::Sent(site.templates.success(&page.request_sent()), cookie)
        }
        Ok(None) => Answer::NotFound,
        Err(e) => Answer::Failed(e),
    };
    pad(started, site.cfg.request_min_duration).await;
    answer
}

/// Waits until `min` has passed since `started`. Work that took longer is logged (without
/// anything about the request): its time may then tell a known identifier from an unknown one,
/// so `--request-min-duration` should be raised.
async fn pad(started: Instant, min: Duration) {
    let took = started.elapsed();
    if min.is_zero() {
        return;
    }
    if took > min {
        eprintln!(
            "warn: a link request took {} ms, longer than --request-min-duration ({} ms)",
            took.as_millis(),
            min.as_millis()
        );
        return;
    }
    tokio::time::sleep_until((started + min).into()).await;
}
