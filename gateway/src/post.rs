//! How every state-changing POST reads its form: the cross-site check before anything else
//! ([`read_post`]), then the body within the size and time limits, parsed by core::form.

use crate::app::{App, Resp, MAX_BODY};
use crate::browser::{self, CrossSite};
use crate::respond::{error, too_large};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use hyper::{Request, StatusCode};
use linktoken_core::{form, submission};

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
pub struct Form {
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The body was exactly RFC 8058's `List-Unsubscribe=One-Click`: that one field, sent once.
    pub one_click_body: bool,
}

/// Whether a route accepts the RFC 8058 one-click body from another origin.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OneClick {
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
pub async fn read_post(
    app: &App,
    req: Request<Incoming>,
    one_click: OneClick,
) -> Result<Form, Resp> {
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
            one_click_body: sent == 1 && submission::is_one_click(&fields),
            fields,
        }),
        Err(form::FormError::UnsupportedType) => Err(unsupported()),
        Err(_) => Err(unreadable()),
    }
}
