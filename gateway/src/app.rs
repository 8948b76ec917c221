//! The gateway's state, shared by every handler: configuration, the database pool, templates,
//! limiters, health and metrics (built by main.rs), and what each handler needs of a request.

use crate::browser::Origin;
use crate::config::Config;
use crate::db::{ClientContext, Db};
use crate::health::Health;
use crate::html::Templates;
use crate::limits::{FailureLimiter, InFlight};
use crate::metrics::Metrics;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap};
use hyper::Response;
use std::net::IpAddr;
use std::sync::Arc;

/// Largest request body (forms are small; anything bigger is refused with 413).
pub const MAX_BODY: usize = 64 * 1024;
/// Longest user agent recorded in the audit log.
pub const MAX_USER_AGENT: usize = 512;

pub struct App {
    pub cfg: Config,
    /// `--public-url`'s origin: where state-changing POSTs must come from.
    pub origin: Origin,
    pub db: Db,
    pub templates: Templates,
    /// Failed lookups per client (`--failed-lookups-per-minute`).
    pub limiter: FailureLimiter,
    /// Link requests per client (`--requests-per-minute`): the request form's budget.
    pub request_budget: FailureLimiter,
    pub in_flight: InFlight,
    pub health: Health,
    pub metrics: Arc<Metrics>,
}

/// Every response.
pub type Resp = Response<Full<Bytes>>;

/// The client's address and user agent, for the audit log.
pub fn context(req_headers: &HeaderMap, ip: IpAddr) -> ClientContext {
    let ua = req_headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ua: String = ua
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT)
        .collect();
    ClientContext {
        ip: ip.to_string(),
        user_agent: ua,
    }
}
