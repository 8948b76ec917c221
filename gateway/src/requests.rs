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
//! routes.rs reads the request (cross-site check, body) and renders the [`Answer`]; this module
//! never imports routes.rs.

use crate::browser;
use crate::config::Config;
use crate::db::{ClientContext, Db, DbError};
use crate::html::Templates;
use crate::limits::FailureLimiter;
use hyper::header::{HeaderMap, HeaderValue};
use linktoken_core::page;
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long the bind cookie set by the request form lives: longer than any link's TTL is
/// likely to be, so the link still works in this browser when the mail arrives.
const BIND_COOKIE_MAX_AGE: i64 = 7 * 24 * 3600;

/// What the gateway needs to answer a request.
pub struct Site<'a> {
    pub cfg: &'a Config,
    pub db: &'a Db,
    pub templates: &'a Templates,
}

/// What routes.rs sends back.
pub enum Answer {
    /// 200 with this page.
    Page(String),
    /// 200 with this page and the bind cookie to set.
    Sent(String, Option<HeaderValue>),
    /// The gateway's usual 404: no such purpose, or one without a resolver.
    NotFound,
    /// A database error, mapped as on every route.
    Failed(DbError),
}

/// Every client's budget of link requests (`--requests-per-minute`), a token bucket per client
/// as for failed lookups. (Kept here rather than in `routes::App`, which main.rs builds.)
fn budget(cfg: &Config) -> &'static FailureLimiter {
    static BUDGET: OnceLock<FailureLimiter> = OnceLock::new();
    BUDGET.get_or_init(|| FailureLimiter::new(cfg.requests_per_minute))
}

/// None when this client may request a link now, else how long until it may.
pub fn over_budget(cfg: &Config, ip: IpAddr) -> Option<Duration> {
    budget(cfg).check(ip, Instant::now())
}

/// GET /request/{purpose}: the form, or 404.
pub async fn form(site: &Site<'_>, purpose: &str, ctx: &ClientContext) -> Answer {
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

/// POST /request/{purpose}, after routes.rs read the form (cross-site check included): counts
/// the request against the client's budget, calls linktoken.request with the browser's bind
/// value (its cookie, else a new one, which the answer sets), and answers no sooner than
/// `--request-min-duration` after it started.
pub async fn submit(
    site: &Site<'_>,
    purpose: &str,
    fields: &Map<String, Value>,
    headers: &HeaderMap,
    ip: IpAddr,
    ctx: &ClientContext,
) -> Answer {
    let started = Instant::now();
    budget(site.cfg).failed(ip, started);
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
