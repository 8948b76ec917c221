//! The SQL entry points of both kinds of token: issue, seal, peek, redeem, revoke,
//! revoke_subject. They check arguments, classify the presented token ([`present`]) and hand it
//! to its kind: `stored.rs` (`ltk_`) or `sealed_tokens.rs` (`lts_`). What both return is
//! `found.rs`.

use crate::audit;
use crate::errors::{self, OrRaise};
use crate::found::{self, Bind, Found, Presented, Redeemed};
use crate::keys;
use crate::plans;
use crate::purpose::{self, Purpose};
use crate::sealed_tokens;
use crate::stored::{self, Throttled};
use crate::types::{PeekRow, RawJsonb, RedeemRow};
use linktoken_core::{input, sealed, token, Status};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

/// Classifies and, for sealed tokens, opens a token. Never raises for bad input.
pub fn present(client: &SpiClient<'_>, text: Option<&str>) -> Presented {
    let Some(text) = text else {
        return Presented::Malformed;
    };
    if let Ok(hash) = token::parse(text) {
        return Presented::Stored(hash);
    }
    let Ok(kid) = sealed::key_id(text) else {
        return Presented::Malformed;
    };
    match keys::key(client, kid).map(|k| sealed::open(&k, text)) {
        Some(Ok(claims)) => Presented::Sealed(token::hash(text), claims),
        _ => Presented::Malformed,
    }
}

/// Looks a presented token up for `purpose` without changing anything. A token of another
/// purpose is `invalid`, exactly like an unknown one.
pub fn lookup(
    client: &SpiClient<'_>,
    presented: &Presented,
    purpose: &Purpose,
    bind: Bind<'_>,
) -> Found {
    match presented {
        Presented::Malformed => Found::invalid(),
        Presented::Stored(hash) => stored::lookup(client, hash, &purpose.name, bind),
        Presented::Sealed(hash, claims) => sealed_tokens::lookup(client, hash, claims, purpose),
    }
}

/// Consumes one use of the presented token for `purpose` and runs the purpose's action,
/// recording the outcome in the audit log. Shared by redeem, gateway_redeem and redeem_code.
pub fn consume(
    client: &mut SpiClient<'_>,
    purpose: &Purpose,
    presented: Presented,
    form: Option<RawJsonb>,
    bind: Bind<'_>,
) -> Redeemed {
    match presented {
        Presented::Stored(hash) => stored::consume(client, purpose, hash, form, bind),
        Presented::Sealed(hash, claims) => {
            sealed_tokens::consume(client, purpose, &hash, &claims, form)
        }
        Presented::Malformed => {
            audit::record(
                client,
                "rejected",
                Some(Status::Invalid),
                Some(&purpose.name),
                None,
                None,
            );
            (Status::Invalid, None, None, None)
        }
    }
}

#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn issue(
    purpose: Option<&str>,
    subject: Option<&str>,
    payload: default!(Option<RawJsonb>, "'{}'"),
    ttl: default!(Option<Interval>, "NULL"),
    bind: default!(Option<&str>, "NULL"),
) -> String {
    issue_token(purpose, subject, payload, ttl, bind, false).0
}

/// issue() and issue_with_code(): validates, throttles, revokes earlier tokens, stores the hash
/// (and, with `with_code`, the keyed hash of a fresh typed code) and records the event.
pub fn issue_token(
    purpose: Option<&str>,
    subject: Option<&str>,
    payload: Option<RawJsonb>,
    ttl: Option<Interval>,
    bind: Option<&str>,
    with_code: bool,
) -> (String, Option<String>) {
    if let Some(b) = bind {
        input::bind_value("bind", b).or_raise();
    }
    let subject = found::check_issue_args(subject, payload, ttl);
    Spi::connect_mut(|client| {
        let purpose = purpose::load(client, purpose);
        match stored::issue_for(client, &purpose, subject, payload, ttl, bind, with_code) {
            Ok(issued) => issued,
            Err(Throttled(seconds)) => {
                // Raises 53400 with the seconds to wait in DETAIL (throttle_and_triggers.sql).
                plans::update(
                    client,
                    "SELECT linktoken.raise_throttled($1, $2)",
                    &[purpose.name.as_str().into(), seconds.into()],
                );
                unreachable!("linktoken.raise_throttled raises")
            }
        }
    })
}

#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn seal(
    purpose: Option<&str>,
    subject: Option<&str>,
    payload: default!(Option<RawJsonb>, "'{}'"),
    ttl: default!(Option<Interval>, "NULL"),
) -> String {
    sealed_tokens::seal(purpose, subject, payload, ttl)
}

// pg_extern needs the row type spelled out inline.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_safe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn peek(
    token: Option<&str>,
    purpose: Option<&str>,
    bind: default!(Option<&str>, "NULL"),
) -> PeekRow {
    let found = Spi::connect(|client| {
        let purpose = purpose::load(client, purpose);
        let presented = present(client, token);
        lookup(client, &presented, &purpose, Bind::Presented(bind))
    });
    let ok = found.status == Status::Ok;
    PeekRow(vec![
        found.status.as_str().into_datum(),
        found.subject.filter(|_| ok).into_datum(),
        found.payload.into_datum(),
        found.expires_at.into_datum(),
        found.uses_left.into_datum(),
    ])
}

#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn redeem(
    token: Option<&str>,
    purpose: Option<&str>,
    form: default!(Option<RawJsonb>, "NULL"),
    bind: default!(Option<&str>, "NULL"),
) -> RedeemRow {
    let row = errors::passing_app_errors(|| {
        Spi::connect_mut(|client| {
            let name = purpose::checked_name(purpose);
            let presented = present(client, token);
            let purpose = purpose::load(client, Some(name));
            consume(client, &purpose, presented, form, Bind::Presented(bind))
        })
    });
    RedeemRow(vec![
        row.0.as_str().into_datum(),
        row.1.into_datum(),
        row.2.into_datum(),
        row.3.into_datum(),
    ])
}

#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn revoke(token: Option<&str>) -> bool {
    Spi::connect_mut(|client| match present(client, token) {
        Presented::Malformed => false,
        Presented::Stored(hash) => stored::revoke(client, &hash),
        Presented::Sealed(hash, claims) => sealed_tokens::revoke(client, &hash, &claims),
    })
}

#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn revoke_subject(subject: Option<&str>, purpose: default!(Option<&str>, "NULL")) -> i64 {
    let subject = input::required("subject", subject).or_raise();
    input::subject("subject", subject).or_raise();
    Spi::connect_mut(|client| {
        let revoked = match purpose {
            Some(_) => {
                let purpose = purpose::load(client, purpose);
                audit::revoke_where(
                    client,
                    "subject = $1 AND purpose = $2",
                    vec![subject.into(), purpose.name.as_str().into()],
                    "revoke_subject",
                )
            }
            None => audit::revoke_where(
                client,
                "subject = $1",
                vec![subject.into()],
                "revoke_subject",
            ),
        };
        i64::try_from(revoked).unwrap_or(i64::MAX)
    })
}
