//! Routing and the request handlers.
//!
//! * `GET|HEAD /t/{token}`: the landing page. Only looks (READ ONLY transaction), never changes a token.
//! * `POST /t/{token}`: redeems with the submitted form; RFC 8058 one-click included.
//! * `GET|HEAD /code/{purpose}`, `POST /code/{purpose}`: the typed-code form and its redemption.
//! * `GET|HEAD /request/{purpose}`, `POST /request/{purpose}`: the request form (requests.rs).
//! * `GET /healthz`, `GET /metrics` (or on `--metrics-listen`), `GET /static/style.css`.
//!
//! Malformed tokens are answered without a database round trip; every state-changing POST
//! passes the cross-site check first ([`read_post`]); one client's requests in flight are
//! capped; every response carries the security headers; the access log names a token only by
//! a short hash prefix.

use crate::browser::{self, CrossSite, Origin};
use crate::config::Config;
use crate::db::{ClientContext, Db, DbError};
use crate::framing;
use crate::health::Health;
use crate::html::{Templates, STYLE_CSS};
use crate::limits::{Admitted, FailureLimiter, InFlight};
use crate::metrics::{Metrics, PoolStatus};
use crate::requests::{self, Answer};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use linktoken_core::form;
use linktoken_core::page::{self, Page};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// Largest request body (forms are small; anything bigger is refused with 413).
pub const MAX_BODY: usize = 64 * 1024;
/// Longest user agent recorded in the audit log.
const MAX_USER_AGENT: usize = 512;

pub struct App {
    pub cfg: Config,
    /// `--public-url`'s origin: where state-changing POSTs must come from.
    pub origin: Origin,
    pub db: Db,
    pub templates: Templates,
    pub limiter: FailureLimiter,
    pub in_flight: InFlight,
    pub health: Health,
    pub metrics: Arc<Metrics>,
}

type Resp = Response<Full<Bytes>>;

/// The listener a request came in on: the main one, or `--metrics-listen` (only /metrics).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Main,
    Metrics,
}

/// Shown by the typed-code form for a wrong code and for a subject with no code waiting
/// alike, with the same status: a different answer would tell anyone who has a code waiting.
pub const CODE_DID_NOT_WORK: &str = "That code did not work. Check it, or ask for a new one.";

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

/// A place among the client's requests in flight, for the routes that use the database; the
/// 429 to send instead when the client has too many. Checked before anything else, so a
/// client over its cap costs no pool connection and no wait.
fn admit<'a>(app: &'a App, route: &Route<'_>, ip: IpAddr) -> Result<Option<Admitted<'a>>, Resp> {
    if !matches!(route, Route::Link(_) | Route::Code(_) | Route::Request(_)) {
        return Ok(None);
    }
    if let Some(admitted) = app.in_flight.admit(ip) {
        return Ok(Some(admitted));
    }
    app.metrics.refused("in_flight");
    let mut resp = error(
        app,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests at once",
        "Your address has several requests in progress already. Please wait a moment and try again.",
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    Err(resp)
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
        Err(resp) => resp,
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
        Route::Link(tok) if read_only => landing(app, &req, tok, ip).await,
        Route::Link(tok) if method == Method::POST => submit(app, req, tok, ip).await,
        Route::Link(_) => not_allowed(app, "GET, HEAD, POST"),
        Route::Code(purpose) if read_only => code_form(app, &req, purpose, ip).await,
        Route::Code(purpose) if method == Method::POST => code_submit(app, req, purpose, ip).await,
        Route::Code(_) => not_allowed(app, "GET, HEAD, POST"),
        Route::Request(purpose) if read_only => request_form(app, &req, purpose, ip).await,
        Route::Request(purpose) if method == Method::POST => {
            request_submit(app, req, purpose, ip).await
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

fn context(req_headers: &HeaderMap, ip: IpAddr) -> ClientContext {
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

/// Rate limit and shape check shared by GET and POST: Some(response) to send instead.
fn precheck(app: &App, token: &str, ip: IpAddr) -> Option<Resp> {
    if let Some(resp) = rate_limited(app, ip) {
        return Some(resp);
    }
    if !linktoken_core::is_well_formed(token) {
        app.limiter.failed(ip, Instant::now());
        return Some(status_page(app, "invalid"));
    }
    None
}

/// The browser's bind value (browser.rs: `__Host-linktoken_bind` behind https, else
/// `linktoken_bind`).
fn bind_cookie(app: &App, headers: &HeaderMap) -> Option<String> {
    browser::bind_cookie(headers, app.cfg.is_https())
}

/// A bound link opened in another browser: say where it works, and offer the code form when
/// the purpose has typed codes. Nothing was consumed.
async fn unbound_page(app: &App, purpose: Option<String>, ctx: &ClientContext) -> Resp {
    let mut code_url = None;
    if let Some(p) = purpose {
        if let Ok(Some(_)) = app.db.code_page(&p, ctx).await {
            code_url = Some(format!("/code/{p}"));
        }
    }
    html(
        StatusCode::FORBIDDEN,
        app.templates.status_page("unbound", code_url.as_deref()),
    )
}

async fn landing(app: &App, req: &Request<Incoming>, tok: &str, ip: IpAddr) -> Resp {
    if let Some(resp) = precheck(app, tok, ip) {
        return resp;
    }
    let ctx = context(req.headers(), ip);
    let bind = bind_cookie(app, req.headers());
    match app.db.peek(tok, bind.as_deref(), &ctx).await {
        Ok(found) if found.status == "ok" => html(
            StatusCode::OK,
            app.templates
                .landing(&found.page, &format!("/t/{tok}"), None, &Default::default()),
        ),
        Ok(found) if found.status == "unbound" => unbound_page(app, found.purpose, &ctx).await,
        Ok(found) => {
            app.limiter.failed(ip, Instant::now());
            status_page(app, &found.status)
        }
        Err(e) => db_error(app, e),
    }
}

fn content_type_ok(headers: &HeaderMap) -> bool {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/x-www-form-urlencoded" || essence == "multipart/form-data"
}

/// A submitted form.
struct Form {
    fields: serde_json::Map<String, serde_json::Value>,
    /// The body was exactly RFC 8058's `List-Unsubscribe=One-Click`: that one field, sent once.
    one_click_body: bool,
}

/// Whether a route accepts the RFC 8058 one-click body from another origin.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OneClick {
    Exempt,
    NotExempt,
}

/// How every state-changing POST gets its form: the cross-site check (browser.rs) before any
/// database call, so a refused request consumes nothing and sets no cookie. Refused: 403.
/// Without this, another site could make a visitor's browser post a form, e.g. the attacker's
/// own subject and code, and so sign the visitor in as the attacker (login CSRF).
///
/// Only the exact one-click body is exempt, and only on routes that pass `OneClick::Exempt`:
/// mail providers POST it from wherever they like, and it can do nothing but unsubscribe,
/// because pages accept it only with `"one_click": true`.
async fn read_post(app: &App, req: Request<Incoming>, one_click: OneClick) -> Result<Form, Resp> {
    let verdict = browser::same_origin(&app.origin, req.headers());
    if let Err(why) = verdict {
        if one_click == OneClick::NotExempt {
            return Err(cross_site(app, why));
        }
    }
    let form = read_form(app, req).await?;
    match verdict {
        Err(why) if !form.one_click_body => Err(cross_site(app, why)),
        _ => Ok(form),
    }
}

fn cross_site(app: &App, why: CrossSite) -> Resp {
    app.metrics.refused(why.name());
    eprintln!("warn: refused a cross-site POST ({})", why.name());
    error(
        app,
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form was sent from another website, so nothing was done. If you meant to do this, open the link from your email again and use the form there.",
    )
}

/// Reads and parses a form body: 415 for other content types, 413 over MAX_BODY (with or
/// without Content-Length), 408 when it arrives too slowly, 400 when it cannot be parsed.
async fn read_form(app: &App, req: Request<Incoming>) -> Result<Form, Resp> {
    let unsupported = || {
        error(
            app,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported form",
            "Please submit the form from the page.",
        )
    };
    let unreadable = || {
        error(
            app,
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The form could not be read.",
        )
    };
    if !content_type_ok(req.headers()) {
        return Err(unsupported());
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large(app));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match tokio::time::timeout(
        app.cfg.body_timeout(),
        Limited::new(req.into_body(), MAX_BODY).collect(),
    )
    .await
    {
        Err(_) => {
            return Err(error(
                app,
                StatusCode::REQUEST_TIMEOUT,
                "Too slow",
                "The form took too long to arrive. Please try again.",
            ))
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large(app)),
        Ok(Err(_)) => return Err(unreadable()),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    match form::parse_counted(content_type.as_deref(), &body) {
        Ok((fields, sent)) => Ok(Form {
            one_click_body: sent == 1 && page::is_one_click(&fields),
            fields,
        }),
        Err(form::FormError::UnsupportedType) => Err(unsupported()),
        Err(_) => Err(unreadable()),
    }
}

async fn submit(app: &App, req: Request<Incoming>, tok: &str, ip: IpAddr) -> Resp {
    if let Some(resp) = precheck(app, tok, ip) {
        return resp;
    }
    let ctx = context(req.headers(), ip);
    let bind = bind_cookie(app, req.headers());
    let fields = match read_post(app, req, OneClick::Exempt).await {
        Ok(form) => form.fields,
        Err(resp) => return resp,
    };
    let one_click = page::is_one_click(&fields);
    let form_json = serde_json::Value::Object(fields.clone()).to_string();
    match app.db.redeem(tok, &form_json, bind.as_deref(), &ctx).await {
        Ok(r) => {
            app.metrics.redemption(&r.status);
            if r.status == "unbound" {
                return unbound_page(app, r.purpose, &ctx).await;
            }
            if r.status != "ok" {
                app.limiter.failed(ip, Instant::now());
                return status_page(app, &r.status);
            }
            if one_click {
                // RFC 8058: answer the mail provider directly, no redirect.
                return html(StatusCode::OK, app.templates.success(&r.page));
            }
            success(app, &r.page, r.result.as_ref())
        }
        Err(DbError::Rejected(message)) => {
            app.metrics.redemption("rejected");
            // Show the form again with the message; nothing was consumed (the transaction rolled back).
            let page = match app.db.peek(tok, bind.as_deref(), &ctx).await {
                Ok(found) if found.status == "ok" => found.page,
                Ok(found) => return status_page(app, &found.status),
                Err(_) => Page::default(),
            };
            html(
                StatusCode::UNPROCESSABLE_ENTITY,
                app.templates
                    .landing(&page, &format!("/t/{tok}"), Some(&message), &fields),
            )
        }
        Err(e) => db_error(app, e),
    }
}

/// Too many failed lookups from this address: the 429 to send instead.
fn rate_limited(app: &App, ip: IpAddr) -> Option<Resp> {
    let wait = app.limiter.check(ip, Instant::now())?;
    Some(too_many(
        app,
        wait,
        "Too many attempts",
        "Too many links or codes that did not work came from your address. Please wait a minute and try again.",
    ))
}

/// 429 with Retry-After (whole seconds, at least 1).
fn too_many(app: &App, wait: std::time::Duration, title: &str, message: &str) -> Resp {
    let mut resp = error(app, StatusCode::TOO_MANY_REQUESTS, title, message);
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(wait.as_secs().max(1)),
    );
    resp
}

fn site(app: &App) -> requests::Site<'_> {
    requests::Site {
        cfg: &app.cfg,
        db: &app.db,
        templates: &app.templates,
    }
}

/// GET /request/{purpose}: the request form (requests.rs).
async fn request_form(app: &App, req: &Request<Incoming>, purpose: &str, ip: IpAddr) -> Resp {
    let answer = requests::form(&site(app), purpose, &context(req.headers(), ip)).await;
    request_answer(app, answer)
}

/// POST /request/{purpose}: the client's request budget, then the form as every POST reads it,
/// then requests.rs. The same answer for every identifier.
async fn request_submit(app: &App, req: Request<Incoming>, purpose: &str, ip: IpAddr) -> Resp {
    if let Some(wait) = requests::over_budget(&app.cfg, ip) {
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
    let answer = requests::submit(&site(app), purpose, &fields, &headers, ip, &ctx).await;
    request_answer(app, answer)
}

fn request_answer(app: &App, answer: Answer) -> Resp {
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

/// GET /code/{purpose}: the typed-code form (subject, code, and the purpose's own fields).
async fn code_form(app: &App, req: &Request<Incoming>, purpose: &str, ip: IpAddr) -> Resp {
    if let Some(resp) = rate_limited(app, ip) {
        return resp;
    }
    match app.db.code_page(purpose, &context(req.headers(), ip)).await {
        Ok(Some(page)) => html(
            StatusCode::OK,
            app.templates.landing(
                &page.code_form(),
                &format!("/code/{purpose}"),
                None,
                &Default::default(),
            ),
        ),
        Ok(None) => not_found(app),
        Err(e) => db_error(app, e),
    }
}

/// POST /code/{purpose}: redeems with a typed code through linktoken.redeem_code.
async fn code_submit(app: &App, req: Request<Incoming>, purpose: &str, ip: IpAddr) -> Resp {
    if let Some(resp) = rate_limited(app, ip) {
        return resp;
    }
    let ctx = context(req.headers(), ip);
    let mut fields = match read_post(app, req, OneClick::NotExempt).await {
        Ok(form) => form.fields,
        Err(resp) => return resp,
    };
    let page = match app.db.code_page(purpose, &ctx).await {
        Ok(Some(page)) => page,
        Ok(None) => return not_found(app),
        Err(e) => return db_error(app, e),
    };
    let code_form = page.code_form();
    let action = format!("/code/{purpose}");
    let again = |message: &str, fields: &serde_json::Map<String, serde_json::Value>| {
        let mut values = fields.clone();
        values.remove(page::CODE_FIELD);
        html(
            StatusCode::UNPROCESSABLE_ENTITY,
            app.templates
                .landing(&code_form, &action, Some(message), &values),
        )
    };
    if let Err(refused) = code_form.check_form(&fields) {
        return again(&refused.0, &fields);
    }
    let text = |v: Option<serde_json::Value>| {
        v.and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let subject = text(fields.remove(page::SUBJECT_FIELD));
    let code = text(fields.remove(page::CODE_FIELD));
    let form_json = serde_json::Value::Object(fields.clone()).to_string();
    match app
        .db
        .redeem_code(purpose, &subject, &code, &form_json, &ctx)
        .await
    {
        Ok(r) => {
            app.metrics.redemption(&r.status);
            let mut shown = fields.clone();
            shown.insert(
                page::SUBJECT_FIELD.to_owned(),
                serde_json::Value::String(subject),
            );
            match r.status.as_str() {
                "ok" => success(app, &page, r.result.as_ref()),
                // One answer for both, attempts left included: see CODE_DID_NOT_WORK.
                "wrong_code" | "invalid" => {
                    app.limiter.failed(ip, Instant::now());
                    again(CODE_DID_NOT_WORK, &shown)
                }
                "locked" => {
                    app.limiter.failed(ip, Instant::now());
                    html(
                        StatusCode::TOO_MANY_REQUESTS,
                        app.templates.status("locked"),
                    )
                }
                other => {
                    app.limiter.failed(ip, Instant::now());
                    status_page(app, other)
                }
            }
        }
        Err(DbError::Rejected(message)) => {
            app.metrics.redemption("rejected");
            let mut shown = fields.clone();
            shown.insert(
                page::SUBJECT_FIELD.to_owned(),
                serde_json::Value::String(subject),
            );
            again(&message, &shown)
        }
        Err(e) => db_error(app, e),
    }
}

/// After a successful redemption: a session cookie and redirect from the action's result, or the
/// purpose's success URL, or the success page.
fn success(app: &App, page: &Page, result: Option<&serde_json::Value>) -> Resp {
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

fn db_error(app: &App, e: DbError) -> Resp {
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

fn status_page(app: &App, status: &str) -> Resp {
    let code = if status == "invalid" {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::GONE
    };
    html(code, app.templates.status(status))
}

fn not_found(app: &App) -> Resp {
    error(
        app,
        StatusCode::NOT_FOUND,
        "Not found",
        "There is nothing here.",
    )
}

fn too_large(app: &App) -> Resp {
    error(
        app,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Too much data",
        "The form was larger than this page accepts.",
    )
}

fn not_allowed(app: &App, allow: &'static str) -> Resp {
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

fn error(app: &App, code: StatusCode, title: &str, message: &str) -> Resp {
    html(code, app.templates.error(title, message))
}

fn html(code: StatusCode, body: String) -> Resp {
    text(code, "text/html; charset=utf-8", body)
}

fn text(code: StatusCode, content_type: &'static str, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Headers on every response: nothing cached, no referrer (the URL holds a token), no scripts
/// or foreign resources, no framing, no indexing; HSTS behind https.
fn security_headers(cfg: &Config, h: &mut HeaderMap) {
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
