//! Links: `GET|HEAD /t/{token}` shows the landing page (READ ONLY, never changes a token);
//! `POST /t/{token}` redeems with the submitted form, RFC 8058 one-click included.

use crate::app::{context, App, Resp};
use crate::browser;
use crate::db::{ClientContext, DbError};
use crate::post::{read_post, OneClick};
use crate::respond::{db_error, html, rate_limited, status_page, success};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode};
use linktoken_core::page::Page;
use linktoken_core::submission;
use std::net::IpAddr;
use std::time::Instant;

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

/// GET|HEAD /t/{token}: the landing page.
pub async fn landing(app: &App, req: &Request<Incoming>, tok: &str, ip: IpAddr) -> Resp {
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

/// POST /t/{token}: redeems.
pub async fn submit(app: &App, req: Request<Incoming>, tok: &str, ip: IpAddr) -> Resp {
    if let Some(resp) = precheck(app, tok, ip) {
        return resp;
    }
    let ctx = context(req.headers(), ip);
    let bind = bind_cookie(app, req.headers());
    let fields = match read_post(app, req, OneClick::Exempt).await {
        Ok(form) => form.fields,
        Err(resp) => return resp,
    };
    let one_click = submission::is_one_click(&fields);
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
