//! The append-only audit log, `linktoken.events`. Client address and user agent come from the
//! column defaults (the `linktoken.client_ip` / `linktoken.user_agent` settings); a token is
//! recorded by its SHA-256 (as in linktoken.tokens), never the token.

use crate::errors::OrRaise;
use crate::gucs;
use crate::plans;
use linktoken_core::Status;
use pgrx::datum::DatumWithOid;
use pgrx::spi::SpiClient;

/// The client's address and user agent for the audit log, from the `linktoken.client_ip` and
/// `linktoken.user_agent` settings (NULL when unset), cut as the events table's defaults cut
/// them: for the statements that pass them explicitly instead of evaluating the defaults.
pub fn client() -> (Option<String>, Option<String>) {
    let cut = |value: String, chars: usize| {
        (!value.is_empty()).then(|| value.chars().take(chars).collect::<String>())
    };
    (
        cut(gucs::setting(&gucs::CLIENT_IP), 64),
        cut(gucs::setting(&gucs::USER_AGENT), 512),
    )
}

/// Records one event about a token (or a token-shaped string that matched nothing).
pub fn record(
    spi: &mut SpiClient<'_>,
    event: &str,
    status: Option<Status>,
    purpose: Option<&str>,
    subject: Option<&str>,
    token_hash: Option<&[u8]>,
) {
    let (ip, ua) = client();
    plans::update(
        spi,
        "INSERT INTO linktoken.events (event, status, purpose, subject, token_hash, client_ip, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            event.into(),
            status.map(Status::as_str).into(),
            purpose.into(),
            subject.into(),
            token_hash.into(),
            ip.into(),
            ua.into(),
        ],
    );
}

/// Revokes the outstanding tokens matching `filter` (a WHERE condition over linktoken.tokens
/// over `args` as $1, $2, ...) and records one 'revoked' event per token with `reason`.
/// Returns the number revoked.
pub fn revoke_where<'a>(
    client: &mut SpiClient<'_>,
    filter: &str,
    mut args: Vec<DatumWithOid<'a>>,
    reason: &'a str,
) -> usize {
    args.push(reason.into());
    let reason_param = args.len();
    let sql = format!(
        "WITH r AS ( \
           UPDATE linktoken.tokens SET revoked_at = pg_catalog.now() \
           WHERE {filter} AND revoked_at IS NULL AND consumed_at IS NULL \
             AND expires_at > pg_catalog.clock_timestamp() \
           RETURNING token_hash, purpose, subject) \
         INSERT INTO linktoken.events (event, purpose, subject, token_hash, detail) \
         SELECT 'revoked', purpose, subject, token_hash, pg_catalog.jsonb_build_object('reason', ${reason_param}::pg_catalog.text) \
         FROM r"
    );
    client.update(&sql, None, &args).or_raise().len()
}
