//! Typed codes: issue_with_code() gives one token row that is reachable by its link or by a
//! short code; redeem_code() checks a typed code for (purpose, subject). Every attempt is
//! counted in a transaction of its own before anything is revealed (attempts.rs), per subject
//! across re-issued codes: max_attempts within a window of the purpose's ttl, or
//! MAX_CONSECUTIVE_FAILURES in a row, lock the subject's *codes* (never its links) until a
//! successful redemption or unlock_codes().

use crate::attempts::{self, Counted};
use crate::audit;
use crate::errors::{self, OrRaise};
use crate::found::{Bind, Presented};
use crate::keys;
use crate::plans;
use crate::purpose::{self, Purpose};
use crate::stored;
use crate::tokens;
use crate::types::{CodeRedeemRow, RawJsonb, TokenAndCodeRow};
use linktoken_core::code::{self, MAX_CONSECUTIVE_FAILURES};
use linktoken_core::token::TokenHash;
use linktoken_core::{input, Status};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn issue_with_code(
    purpose: Option<&str>,
    subject: Option<&str>,
    payload: default!(Option<RawJsonb>, "'{}'"),
    ttl: default!(Option<Interval>, "NULL"),
    bind: default!(Option<&str>, "NULL"),
) -> TokenAndCodeRow {
    let (token, code) = tokens::issue_token(purpose, subject, payload, ttl, bind, true);
    TokenAndCodeRow(vec![
        token.into_datum(),
        code.expect("a code was made").into_datum(),
    ])
}

/// The subject's outstanding code token: (token hash, code hash, key id).
fn outstanding(
    client: &SpiClient<'_>,
    purpose: &Purpose,
    subject: &str,
) -> Option<(TokenHash, Vec<u8>, i32)> {
    let row = plans::select(
        client,
        "SELECT token_hash, code_hash, code_kid FROM linktoken.tokens \
             WHERE subject = $1 AND purpose = $2 AND code_hash IS NOT NULL \
               AND consumed_at IS NULL AND revoked_at IS NULL \
               AND expires_at > pg_catalog.clock_timestamp() \
             ORDER BY created_at DESC LIMIT 1",
        &[subject.into(), purpose.name.as_str().into()],
    )
    .next()?;
    let hash: Vec<u8> = row.get(1).or_raise()?;
    Some((
        hash.try_into().expect("a 32-byte token hash"),
        row.get(2).or_raise()?,
        row.get(3).or_raise()?,
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
    // One subject's checks run one at a time. Whether the subject is locked is decided from
    // the counts the worker returns, never from this transaction's snapshot (which, under
    // REPEATABLE READ or SERIALIZABLE, may predate other attempts); the first look only spares
    // a worker when the lock is already visible.
    stored::lock_subject(client, purpose, subject);
    let max = purpose.max_attempts;
    let key = code::attempt_key(&purpose.name, subject);
    if attempts::current(client, &key).is_some_and(|c| c.locked(max)) {
        // Nothing is compared while locked, so nothing needs counting.
        audit::record(
            client,
            "rejected",
            Some(Status::Locked),
            Some(&purpose.name),
            None,
            None,
        );
        return (Status::Locked, None, None, None, Some(0));
    }
    let found = outstanding(client, purpose, subject);
    let matched = found.as_ref().is_some_and(|(_, code_hash, kid)| {
        let key = u32::try_from(*kid).ok().and_then(|k| keys::key(client, k));
        match (typed.and_then(code::normalize), key) {
            (Some(typed), Some(key)) => {
                code::verify(&key, &purpose.name, subject, &typed, code_hash)
            }
            _ => false,
        }
    });
    let token_hash = found.as_ref().map(|f| f.0);
    // Counted and committed before anything about the code is revealed (see attempts.rs).
    let counted = attempts::record(&attempts::Attempt {
        purpose: &purpose.name,
        subject,
        key,
        ttl: purpose.ttl,
        max_attempts: max,
        token_hash,
        matched,
    });
    // Locked before this attempt (seen by the worker, whatever this snapshot showed)?
    let locked_before = Counted {
        failures: counted.failures - 1,
        consecutive: counted.consecutive - 1,
    }
    .locked(max);
    let Some((hash, _, _)) = found.filter(|_| matched && !locked_before) else {
        let status = if counted.locked(max) {
            Status::Locked
        } else if token_hash.is_some() {
            Status::WrongCode
        } else {
            Status::Invalid
        };
        let left = (max - counted.failures)
            .min(MAX_CONSECUTIVE_FAILURES - counted.consecutive)
            .max(0);
        return (status, None, None, None, Some(left));
    };
    // An 'ok' resets the counter in this transaction (stored::consumed).
    let (status, subject_out, payload, result) = tokens::consume(
        client,
        purpose,
        Presented::Stored(hash),
        form,
        Bind::NotNeeded,
    );
    (status, subject_out, payload, result, None)
}

#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn redeem_code(
    purpose: Option<&str>,
    subject: Option<&str>,
    code: Option<&str>,
    form: default!(Option<RawJsonb>, "NULL"),
) -> CodeRedeemRow {
    let subject = input::required("subject", subject).or_raise();
    input::subject("subject", subject).or_raise();
    let row = errors::passing_app_errors(|| {
        Spi::connect_mut(|client| {
            let purpose = purpose::load(client, purpose);
            purpose.require_codes();
            check(client, &purpose, subject, code, form)
        })
    });
    CodeRedeemRow(vec![
        row.0.as_str().into_datum(),
        row.1.into_datum(),
        row.2.into_datum(),
        row.3.into_datum(),
        row.4.into_datum(),
    ])
}

#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn unlock_codes(purpose: Option<&str>, subject: Option<&str>) -> bool {
    let subject = input::required("subject", subject).or_raise();
    input::subject("subject", subject).or_raise();
    Spi::connect_mut(|client| {
        let purpose = purpose::load(client, purpose);
        purpose.require_codes();
        let had = attempts::reset(client, &purpose.name, subject);
        if had {
            audit::record(
                client,
                "unlocked",
                None,
                Some(&purpose.name),
                Some(subject),
                None,
            );
        }
        had
    })
}
