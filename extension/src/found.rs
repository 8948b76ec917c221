//! What both kinds of token share: how a caller's token and browser binding arrive
//! ([`Presented`], [`Bind`]), what a lookup and a redemption produce ([`Found`], [`Redeemed`]),
//! and the argument checks of issuing either kind. The stored kind is `stored.rs`, the sealed
//! kind `sealed_tokens.rs`, the SQL entry points that dispatch between them `tokens.rs`.

use crate::errors::OrRaise;
use crate::purpose;
use crate::types::RawJsonb;
use linktoken_core::sealed::Claims;
use linktoken_core::{input, token, Status};
use pgrx::prelude::*;

/// A token as presented by a caller.
pub enum Presented {
    /// Malformed, unknown key, tampered: the status `invalid`.
    Malformed,
    /// A stored token (`ltk_`), by hash.
    Stored(token::TokenHash),
    /// A sealed token (`lts_`) that opened, with its hash (for the spent list).
    Sealed(token::TokenHash, Claims),
}

/// What a lookup of a token's hash found.
pub struct Found {
    pub status: Status,
    /// The stored token's hash (for the audit log); None for sealed tokens and unknown ones.
    pub token_hash: Option<token::TokenHash>,
    pub subject: Option<String>,
    pub payload: Option<RawJsonb>,
    pub expires_at: Option<TimestampWithTimeZone>,
    pub uses_left: Option<i32>,
}

impl Found {
    pub fn invalid() -> Found {
        Found {
            status: Status::Invalid,
            token_hash: None,
            subject: None,
            payload: None,
            expires_at: None,
            uses_left: None,
        }
    }
}

/// The browser binding a caller presents: the browser's bind value (peek, redeem, the gateway),
/// or none needed (a typed code is the way across devices).
#[derive(Clone, Copy)]
pub enum Bind<'a> {
    Presented(Option<&'a str>),
    NotNeeded,
}

impl<'a> Bind<'a> {
    /// (check it?, the value): the two SQL parameters of the binding check.
    pub fn params(self) -> (bool, Option<&'a str>) {
        match self {
            Bind::Presented(value) => (true, value),
            Bind::NotNeeded => (false, None),
        }
    }
}

/// What a redemption produced: status, and for `ok` the subject, payload and action result.
pub type Redeemed = (Status, Option<String>, Option<RawJsonb>, Option<RawJsonb>);

/// The argument checks shared by issue(), issue_with_code() and seal(): the subject is
/// required and well-formed, the payload at most 64 KiB, a TTL override positive.
pub fn check_issue_args(
    subject: Option<&str>,
    payload: Option<RawJsonb>,
    ttl: Option<Interval>,
) -> &str {
    let subject = input::required("subject", subject).or_raise();
    input::subject("subject", subject).or_raise();
    if let Some(p) = payload {
        input::payload_size("payload", p.size()).or_raise();
    }
    if let Some(t) = ttl {
        purpose::check_ttl("ttl", t);
    }
    subject
}
