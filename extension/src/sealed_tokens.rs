//! Sealed tokens (`lts_`): made by seal() without writing anything, and their lookup, consume
//! and revoke. The format itself is `linktoken_core::sealed`; the keys are `keys.rs`.
//!
//! Sealing writes nothing. Redeeming a sealed token of a purpose with a finite use limit records
//! it in `linktoken.spent` (one conditional upsert, so exactly once under concurrency); for
//! unlimited purposes nothing is written but the action's effect.

use crate::audit;
use crate::errors::{raise, raise_with_hint, OrRaise};
use crate::found::{self, Found, Redeemed};
use crate::keys;
use crate::plans;
use crate::purpose::{self, Purpose};
use crate::types::RawJsonb;
use linktoken_core::sealed::{self, Claims};
use linktoken_core::{token, Status};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::PgSqlErrorCode;

fn jsonb(client: &SpiClient<'_>, text: &str) -> Option<RawJsonb> {
    plans::select(client, "SELECT $1::pg_catalog.jsonb", &[text.into()])
        .first()
        .get_one::<RawJsonb>()
        .or_raise()
}

/// The claims' expiry as a timestamp, and whether it has passed (one query for both).
fn expiry(client: &SpiClient<'_>, claims: &Claims) -> (Option<TimestampWithTimeZone>, bool) {
    let row = plans::select(
            client,
            "SELECT pg_catalog.to_timestamp($1), pg_catalog.to_timestamp($1) <= pg_catalog.clock_timestamp()",
            &[(claims.expires_at as f64).into()],
        )
        .first();
    (
        row.get::<TimestampWithTimeZone>(1).or_raise(),
        row.get::<bool>(2).or_raise().unwrap_or(true),
    )
}

/// (uses, revoked) recorded for a sealed token.
fn spent(client: &SpiClient<'_>, hash: &token::TokenHash) -> (i32, bool) {
    let rows = plans::select(
        client,
        "SELECT uses, revoked_at IS NOT NULL FROM linktoken.spent WHERE token_hash = $1",
        &[hash.as_slice().into()],
    );
    match rows.into_iter().next() {
        Some(r) => (
            r.get::<i32>(1).or_raise().unwrap_or(0),
            r.get::<bool>(2).or_raise().unwrap_or(false),
        ),
        None => (0, false),
    }
}

/// Status of a sealed token for `purpose`, changing nothing.
pub fn lookup(
    client: &SpiClient<'_>,
    hash: &token::TokenHash,
    claims: &Claims,
    purpose: &Purpose,
) -> Found {
    if claims.purpose != purpose.name {
        return Found::invalid();
    }
    let (uses, revoked) = spent(client, hash);
    let used_up = purpose.max_uses.is_some_and(|m| uses >= m);
    let (expires_at, expired) = expiry(client, claims);
    let status = Status::of_unusable(revoked, used_up, expired);
    let ok = status == Status::Ok;
    let expires_at = expires_at.filter(|_| ok);
    Found {
        status,
        token_hash: None,
        subject: Some(claims.subject.clone()),
        payload: if ok {
            jsonb(client, &claims.payload)
        } else {
            None
        },
        expires_at,
        uses_left: if ok {
            purpose.max_uses.map(|m| m - uses)
        } else {
            None
        },
    }
}

/// Redeems a sealed token: checks purpose and expiry, records the use (finite purposes only,
/// exactly once through a conditional upsert), runs the action.
pub fn consume(
    client: &mut SpiClient<'_>,
    purpose: &Purpose,
    hash: &token::TokenHash,
    claims: &Claims,
    form: Option<RawJsonb>,
) -> Redeemed {
    let reject = |client: &mut SpiClient<'_>, status: Status| -> Redeemed {
        let subject = (status != Status::Invalid).then_some(claims.subject.as_str());
        audit::record(
            client,
            "rejected",
            Some(status),
            Some(&purpose.name),
            subject,
            None,
        );
        (status, None, None, None)
    };
    if claims.purpose != purpose.name {
        return reject(client, Status::Invalid);
    }
    if expiry(client, claims).1 {
        return reject(client, Status::Expired);
    }
    if let Some(max_uses) = purpose.max_uses {
        let recorded = plans::update(
            client,
            "INSERT INTO linktoken.spent AS s (token_hash, purpose, uses, expires_at) \
                 VALUES ($1, $2, 1, pg_catalog.to_timestamp($3)) \
                 ON CONFLICT (token_hash) DO UPDATE SET uses = s.uses + 1 \
                 WHERE s.uses < $4 AND s.revoked_at IS NULL \
                 RETURNING uses",
            &[
                hash.as_slice().into(),
                purpose.name.as_str().into(),
                (claims.expires_at as f64).into(),
                max_uses.into(),
            ],
        )
        .len();
        if recorded == 0 {
            let (_, revoked) = spent(client, hash);
            return reject(
                client,
                if revoked {
                    Status::Revoked
                } else {
                    Status::Used
                },
            );
        }
    } else if spent(client, hash).1 {
        return reject(client, Status::Revoked);
    }
    let payload = jsonb(client, &claims.payload).expect("a sealed payload is jsonb text");
    let result = purpose.action.and_then(|action| {
        purpose::run_action(client, purpose, action, &claims.subject, payload, form)
    });
    if purpose.max_uses.is_some() {
        audit::record(
            client,
            "redeemed",
            Some(Status::Ok),
            Some(&purpose.name),
            Some(&claims.subject),
            None,
        );
    }
    (
        Status::Ok,
        Some(claims.subject.clone()),
        Some(payload),
        result,
    )
}

/// Revokes a sealed token by recording it in the spent list until it expires.
pub fn revoke(client: &mut SpiClient<'_>, hash: &token::TokenHash, claims: &Claims) -> bool {
    let revoked = plans::update(
        client,
        "INSERT INTO linktoken.spent AS s (token_hash, purpose, expires_at, revoked_at) \
             VALUES ($1, $2, pg_catalog.to_timestamp($3), pg_catalog.now()) \
             ON CONFLICT (token_hash) DO UPDATE SET revoked_at = pg_catalog.now() \
             WHERE s.revoked_at IS NULL \
             RETURNING 1",
        &[
            hash.as_slice().into(),
            claims.purpose.as_str().into(),
            (claims.expires_at as f64).into(),
        ],
    );
    !revoked.is_empty()
}

/// A sealed token is stateless: nothing is written when it is made, so the purpose options that
/// need the issue on record cannot be honoured. seal() refuses them (22023) instead of ignoring
/// them silently.
fn refuse_unsealable(purpose: &Purpose) {
    let options = [
        (purpose.revoke_previous, "revoke_previous"),
        (purpose.min_interval.is_some(), "min_interval"),
        (purpose.bind_browser, "bind_browser"),
        (purpose.code_digits.is_some(), "code_digits"),
    ];
    let set: Vec<&str> = options.iter().filter(|o| o.0).map(|o| o.1).collect();
    if !set.is_empty() {
        raise_with_hint(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "purpose \"{}\" cannot be sealed: sealed tokens are not stored, so {} cannot apply",
                purpose.name,
                set.join(", ")
            ),
            "Use linktoken.issue() for this purpose, or define a purpose for sealed tokens with \
             revoke_previous => false (and without min_interval, bind_browser and code_digits).",
        );
    }
}

/// seal(): a sealed token of a purpose for a subject (arguments as issue()).
pub fn seal(
    purpose: Option<&str>,
    subject: Option<&str>,
    payload: Option<RawJsonb>,
    ttl: Option<Interval>,
) -> String {
    let subject = found::check_issue_args(subject, payload, ttl);
    Spi::connect_mut(|client| {
        let purpose = purpose::load(client, purpose);
        refuse_unsealable(&purpose);
        // The jsonb's own text form, so numbers keep every digit.
        let payload_text: String = plans::select(
            client,
            "SELECT COALESCE($1::pg_catalog.text, '{}')",
            &[payload.into()],
        )
        .first()
        .get_one::<String>()
        .or_raise()
        .expect("text");
        let expires_at: i64 = plans::select(
            client,
            "SELECT EXTRACT(epoch FROM pg_catalog.now() + $1)::bigint",
            &[ttl.unwrap_or(purpose.ttl).into()],
        )
        .first()
        .get_one::<i64>()
        .or_raise()
        .expect("an expiry");
        let claims = Claims {
            purpose: purpose.name.clone(),
            subject: subject.to_owned(),
            payload: payload_text,
            expires_at,
        };
        let (kid, key) = keys::current_key(client);
        let token = sealed::seal(&key, kid, &claims).unwrap_or_else(|| {
            raise(
                PgSqlErrorCode::ERRCODE_SYSTEM_ERROR,
                "could not seal the token",
            )
        });
        if token.len() > sealed::MAX_LEN {
            raise_with_hint(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("payload makes the sealed token {} characters long, more than {}", token.len(), sealed::MAX_LEN),
                "Keep sealed payloads small (a few KB at most), or use linktoken.issue(), which stores the payload.",
            );
        }
        token
    })
}
