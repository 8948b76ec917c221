//! Typed codes: `GET|HEAD /code/{purpose}` shows the code form (the subject, the code, the
//! purpose's own fields); `POST /code/{purpose}` redeems through linktoken.redeem_code. A wrong
//! code and a subject with no code waiting get the same answer.

use crate::app::{context, App, Resp};
use crate::db::DbError;
use crate::post::{read_post, OneClick};
use crate::respond::{db_error, html, not_found, rate_limited, status_page, success};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use linktoken_core::page;
use std::net::IpAddr;
use std::time::Instant;

/// Shown by the typed-code form for a wrong code and for a subject with no code waiting
/// alike, with the same status: a different answer would tell anyone who has a code waiting.
pub const CODE_DID_NOT_WORK: &str = "That code did not work. Check it, or ask for a new one.";

/// GET|HEAD /code/{purpose}: the typed-code form.
/// GET /code/{purpose}: the typed-code form (subject, code, and the purpose's own fields).
pub async fn form(app: &App, req: &Request<Incoming>, purpose: &str, ip: IpAddr) -> Resp {
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
pub async fn submit(app: &App, req: Request<Incoming>, purpose: &str, ip: IpAddr) -> Resp {
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
