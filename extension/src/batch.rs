//! issue_batch(): many tokens of one purpose in one set-based statement (0.3.0).
//!
//! Calling issue() once per row costs a function call and an SPI statement per token; a batch
//! (a newsletter's unsubscribe links, an invitation wave) is one INSERT of all token rows and
//! one of all their 'issued' events, with the tokens generated and hashed in Rust.

use crate::errors::{raise_with_hint, OrRaise};
use crate::found::check_issue_args;
use crate::gucs;
use crate::plans;
use crate::purpose;
use crate::types::RawJsonb;
use linktoken_core::{input, token};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn issue_batch(
    purpose: Option<&str>,
    subjects: Option<Array<'_, &str>>,
    payload: default!(Option<RawJsonb>, "'{}'"),
    ttl: default!(Option<Interval>, "NULL"),
) -> TableIterator<'static, (name!(subject, String), name!(token, String))> {
    let subjects = input::required("subjects", subjects).or_raise();
    let subjects: Vec<&str> = subjects
        .iter()
        .map(|s| {
            check_issue_args(
                Some(input::required("subjects", s).or_raise()),
                payload,
                ttl,
            )
        })
        .collect();
    let secret_bytes =
        usize::try_from(gucs::TOKEN_BYTES.get()).unwrap_or(token::DEFAULT_SECRET_BYTES);
    let tokens = Spi::connect_mut(|client| {
        let purpose = purpose::load(client, purpose);
        if purpose.revoke_previous || purpose.min_interval.is_some() || purpose.bind_browser {
            raise_with_hint(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!(
                    "issue_batch() cannot issue tokens of purpose \"{}\": it revokes previous tokens, throttles or binds links to a browser",
                    purpose.name
                ),
                "Use issue_batch for purposes defined with revoke_previous => false, min_interval => NULL and bind_browser => false; call issue() per subject for the others.",
            );
        }
        // One read from the OS CSPRNG for every secret of the batch, not one per token.
        let n = secret_bytes.clamp(token::MIN_SECRET_BYTES, token::MAX_SECRET_BYTES);
        let mut secrets = vec![0u8; n * subjects.len()];
        token::fill_random(&mut secrets).unwrap_or_else(|e| {
            crate::errors::raise(PgSqlErrorCode::ERRCODE_SYSTEM_ERROR, e.to_string())
        });
        let tokens: Vec<String> = secrets.chunks_exact(n).map(token::encode).collect();
        let hashes: Vec<Vec<u8>> = tokens.iter().map(|t| token::hash(t).to_vec()).collect();
        if !tokens.is_empty() {
            plans::update(
                client,
                // The token rows are the record of their issue (0.5.0: no 'issued' events).
                "INSERT INTO linktoken.tokens (token_hash, purpose, subject, payload, expires_at, max_uses) \
                 SELECT u.h, $3, u.s, COALESCE($4, '{}'::pg_catalog.jsonb), pg_catalog.now() + $5, $6 \
                 FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.bytea[]), pg_catalog.unnest($2::pg_catalog.text[])) AS u(h, s)",
                &[
                    hashes.into(),
                    subjects.clone().into(),
                    purpose.name.as_str().into(),
                    payload.into(),
                    ttl.unwrap_or(purpose.ttl).into(),
                    purpose.max_uses.into(),
                ],
            );
        }
        tokens
    });
    let subjects: Vec<String> = subjects.into_iter().map(str::to_owned).collect();
    TableIterator::new(subjects.into_iter().zip(tokens))
}
