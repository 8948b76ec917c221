//! Typed codes: issue_with_code() gives one token row that is reachable by its link or by a
//! short code; redeem_code() checks a typed code for (purpose, subject), counts wrong ones per
//! subject across re-issued codes, and locks the subject's codes and links at max_attempts.

use crate::audit;
use crate::errors::OrRaise;
use crate::plans;
use crate::purpose::{self, Purpose};
use crate::sealed_api::{self, Presented};
use crate::tokens;
use crate::types::RawJsonb;
use linktoken_core::{code, input, Status};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn issue_with_code(
    purpose: Option<&str>,
    subject: Option<&str>,
    payload: default!(Option<RawJsonb>, "'{}'"),
    ttl: default!(Option<Interval>, "NULL"),
    bind: default!(Option<&str>, "NULL"),
) -> TableIterator<'static, (name!(token, String), name!(code, String))> {
    let (token, code) = tokens::issue_token(purpose, subject, payload, ttl, bind, true);
    TableIterator::once((token, code.expect("a code was made")))
}

/// Wrong codes counted for the subject within the current window.
fn failures(client: &SpiClient<'_>, purpose: &Purpose, subject: &str) -> i32 {
    plans::select(
        client,
        "SELECT failures FROM linktoken.code_attempts \
             WHERE purpose = $1 AND subject = $2 AND window_until > pg_catalog.clock_timestamp()",
        &[purpose.name.as_str().into(), subject.into()],
    )
    .next()
    .and_then(|r| r.get::<i32>(1).or_raise())
    .unwrap_or(0)
}

/// Counts one wrong code; the window (the purpose's ttl) starts at the first failure.
fn record_failure(client: &mut SpiClient<'_>, purpose: &Purpose, subject: &str) -> i32 {
    plans::update(
            client,
            "INSERT INTO linktoken.code_attempts AS a (purpose, subject, failures, window_until) \
             VALUES ($1, $2, 1, pg_catalog.clock_timestamp() + $3) \
             ON CONFLICT (purpose, subject) DO UPDATE SET \
               failures = CASE WHEN a.window_until > pg_catalog.clock_timestamp() THEN a.failures + 1 ELSE 1 END, \
               window_until = CASE WHEN a.window_until > pg_catalog.clock_timestamp() THEN a.window_until \
                                   ELSE pg_catalog.clock_timestamp() + $3 END \
             RETURNING failures",
            &[purpose.name.as_str().into(), subject.into(), purpose.ttl.into()],
        )
        .first()
        .get_one::<i32>()
        .or_raise()
        .unwrap_or(1)
}

/// The subject's outstanding code token: (id, token hash, code hash, key id).
fn outstanding(
    client: &SpiClient<'_>,
    purpose: &Purpose,
    subject: &str,
) -> Option<(i64, Vec<u8>, Vec<u8>, i32)> {
    let row = plans::select(
        client,
        "SELECT id, token_hash, code_hash, code_kid FROM linktoken.tokens \
             WHERE subject = $1 AND purpose = $2 AND code_hash IS NOT NULL \
               AND consumed_at IS NULL AND revoked_at IS NULL \
               AND expires_at > pg_catalog.clock_timestamp() \
             ORDER BY id DESC LIMIT 1",
        &[subject.into(), purpose.name.as_str().into()],
    )
    .next()?;
    Some((
        row.get(1).or_raise()?,
        row.get(2).or_raise()?,
        row.get(3).or_raise()?,
        row.get(4).or_raise()?,
    ))
}

type CodeRow = (
    Status,
    Option<String>,
    Option<RawJsonb>,
    Option<RawJsonb>,
    Option<i32>,
);

fn check(
    client: &mut SpiClient<'_>,
    purpose: &Purpose,
    subject: &str,
    typed: Option<&str>,
    form: Option<RawJsonb>,
) -> CodeRow {
    // One subject's checks run one at a time, so every wrong code is counted.
    tokens::serialize_issues(client, purpose, subject);
    let max = purpose.max_attempts;
    let reject =
        |client: &mut SpiClient<'_>, status: Status, id: Option<i64>, left: Option<i32>| {
            audit::record(
                client,
                "rejected",
                Some(status),
                Some(&purpose.name),
                Some(subject),
                id,
            );
            (status, None, None, None, left)
        };
    if failures(client, purpose, subject) >= max {
        return reject(client, Status::Locked, None, Some(0));
    }
    let Some((id, token_hash, code_hash, kid)) = outstanding(client, purpose, subject) else {
        return reject(client, Status::Invalid, None, None);
    };
    let key = u32::try_from(kid)
        .ok()
        .and_then(|k| sealed_api::key(client, k));
    let matches = match (typed.and_then(code::normalize), key) {
        (Some(typed), Some(key)) => code::verify(&key, &purpose.name, subject, &typed, &code_hash),
        _ => false,
    };
    if !matches {
        let failed = record_failure(client, purpose, subject);
        let status = if failed >= max {
            Status::Locked
        } else {
            Status::WrongCode
        };
        return reject(client, status, Some(id), Some((max - failed).max(0)));
    }
    let hash: linktoken_core::token::TokenHash = token_hash.try_into().expect("32-byte hash");
    let (status, subject_out, payload, result) = tokens::consume(
        client,
        purpose,
        Presented::Stored(hash),
        form,
        tokens::Bind::NotNeeded,
    );
    if status == Status::Ok {
        plans::update(
            client,
            "DELETE FROM linktoken.code_attempts WHERE purpose = $1 AND subject = $2",
            &[purpose.name.as_str().into(), subject.into()],
        );
    }
    (status, subject_out, payload, result, None)
}

#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn redeem_code(
    purpose: Option<&str>,
    subject: Option<&str>,
    code: Option<&str>,
    form: default!(Option<RawJsonb>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(status, String),
        name!(subject, Option<String>),
        name!(payload, Option<RawJsonb>),
        name!(result, Option<RawJsonb>),
        name!(attempts_left, Option<i32>),
    ),
> {
    let subject = input::required("subject", subject).or_raise();
    input::subject("subject", subject).or_raise();
    let row = Spi::connect_mut(|client| {
        let purpose = purpose::load(client, purpose);
        purpose.require_codes();
        check(client, &purpose, subject, code, form)
    });
    TableIterator::once((row.0.as_str().to_owned(), row.1, row.2, row.3, row.4))
}
