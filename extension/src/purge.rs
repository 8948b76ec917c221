//! purge(): deletes tokens that ended (expired, used up, revoked) longer ago than
//! `linktoken.retention`, walking the table in bounded batches by hash and writing each deleted
//! token's 'issued' event (and the 'redeemed' event of the use that consumed it, where its row
//! held that record), then spent-list entries of expired sealed tokens, idle typed-code
//! counters, and events older than `linktoken.event_retention`.

use crate::errors::OrRaise;
use crate::gucs;
use pgrx::prelude::*;

const BATCH: i64 = 5000;

#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn purge() -> i64 {
    let retention = gucs::RETENTION_SECONDS.get();
    Spi::connect_mut(|client| {
        // Walk the table in key order (the hash) in bounded batches. A deleted token's issue, and
        // the use that consumed it, are written to the audit log now, as they happened (its row
        // was their record until here).
        let mut after: Vec<u8> = Vec::new();
        let mut deleted: i64 = 0;
        loop {
            let row = client
                .update(
                    "WITH batch AS ( \
                       SELECT token_hash, expires_at, consumed_at, revoked_at FROM linktoken.tokens \
                       WHERE token_hash > $1 ORDER BY token_hash LIMIT $2), \
                     cutoff AS (SELECT pg_catalog.now() - pg_catalog.make_interval(secs => $3) AS t), \
                     gone AS ( \
                       DELETE FROM linktoken.tokens tok USING batch b, cutoff c \
                       WHERE tok.token_hash = b.token_hash \
                         AND (b.expires_at < c.t OR b.consumed_at < c.t OR b.revoked_at < c.t) \
                       RETURNING tok.token_hash, tok.purpose, tok.subject, tok.created_at, tok.issued_ip, tok.issued_ua, \
                                 tok.consumed_pending_event, tok.consumed_at, tok.consumed_ip, tok.consumed_ua), \
                     recorded AS ( \
                       INSERT INTO linktoken.events (at, event, status, purpose, subject, token_hash, client_ip, user_agent) \
                       SELECT created_at, 'issued', NULL, purpose, subject, token_hash, issued_ip, issued_ua FROM gone \
                       UNION ALL \
                       SELECT consumed_at, 'redeemed', 'ok', purpose, subject, token_hash, consumed_ip, consumed_ua \
                       FROM gone WHERE consumed_pending_event) \
                     SELECT (SELECT token_hash FROM batch ORDER BY token_hash DESC LIMIT 1), (SELECT pg_catalog.count(*) FROM gone)",
                    None,
                    &[after.as_slice().into(), BATCH.into(), f64::from(retention).into()],
                )
                .or_raise();
            let row = row.first();
            let last: Option<Vec<u8>> = row.get(1).or_raise();
            deleted += row.get::<i64>(2).or_raise().unwrap_or(0);
            match last {
                Some(hash) => after = hash,
                None => break,
            }
        }
        // Spent-list entries of sealed tokens are needed only until the token expires.
        let spent: i64 = client
            .update(
                "WITH gone AS (DELETE FROM linktoken.spent WHERE expires_at < pg_catalog.now() RETURNING 1) \
                 SELECT pg_catalog.count(*) FROM gone",
                None,
                &[],
            )
            .or_raise()
            .first()
            .get_one::<i64>()
            .or_raise()
            .unwrap_or(0);
        deleted += spent;
        // Typed-code counters whose window ended longer ago than the retention, unless they
        // hold a lock-out that only a redemption or unlock_codes() ends.
        let counters: i64 = client
            .update(
                "WITH gone AS (DELETE FROM linktoken.code_attempts \
                   WHERE window_until < pg_catalog.now() - pg_catalog.make_interval(secs => $1) \
                     AND last_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1) \
                     AND consecutive < $2 RETURNING 1) \
                 SELECT pg_catalog.count(*) FROM gone",
                None,
                &[
                    f64::from(retention).into(),
                    linktoken_core::code::MAX_CONSECUTIVE_FAILURES.into(),
                ],
            )
            .or_raise()
            .first()
            .get_one::<i64>()
            .or_raise()
            .unwrap_or(0);
        // Outbox messages sent, or whose token expired, longer ago than the retention (their
        // sealed part is of no use then), and request counters whose window ended as long ago.
        let messages: i64 = client
            .update(
                "WITH gone AS (DELETE FROM linktoken.outbox \
                   WHERE sent_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1) \
                      OR expires_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1) RETURNING 1), \
                 counts AS (DELETE FROM linktoken.request_counts \
                   WHERE window_until < pg_catalog.now() - pg_catalog.make_interval(secs => $1) RETURNING 1) \
                 SELECT (SELECT pg_catalog.count(*) FROM gone) + (SELECT pg_catalog.count(*) FROM counts)",
                None,
                &[f64::from(retention).into()],
            )
            .or_raise()
            .first()
            .get_one::<i64>()
            .or_raise()
            .unwrap_or(0);
        let events = purge_events(client);
        if deleted > 0 || counters > 0 || events > 0 || messages > 0 {
            client
                .update(
                    "INSERT INTO linktoken.events (event, detail) \
                     VALUES ('purged', pg_catalog.jsonb_build_object('tokens', $1, 'retention_seconds', $2, \
                                                                      'code_attempt_counters', $3, 'events', $4, \
                                                                      'outbox_and_request_counters', $5))",
                    None,
                    &[deleted.into(), retention.into(), counters.into(), events.into(), messages.into()],
                )
                .or_raise();
        }
        deleted
    })
}

/// Deletes events older than `linktoken.event_retention` (0: keep them all), in bounded
/// batches found by the BRIN index on `at`; returns how many. The append-only trigger lets
/// these deletes through because this transaction says it is purging.
fn purge_events(client: &mut pgrx::spi::SpiClient<'_>) -> i64 {
    let keep = gucs::EVENT_RETENTION_SECONDS.get();
    if keep <= 0 {
        return 0;
    }
    client
        .update(
            "SELECT pg_catalog.set_config('linktoken.purging_events', 'on', true)",
            None,
            &[],
        )
        .or_raise();
    let mut removed: i64 = 0;
    loop {
        let n = client
            .update(
                "WITH gone AS (DELETE FROM linktoken.events WHERE ctid = ANY (ARRAY( \
                   SELECT ctid FROM linktoken.events \
                   WHERE at < pg_catalog.now() - pg_catalog.make_interval(secs => $1) LIMIT $2)) \
                   RETURNING 1) \
                 SELECT pg_catalog.count(*) FROM gone",
                None,
                &[f64::from(keep).into(), BATCH.into()],
            )
            .or_raise()
            .first()
            .get_one::<i64>()
            .or_raise()
            .unwrap_or(0);
        removed += n;
        if n < BATCH {
            break;
        }
    }
    client
        .update(
            "SELECT pg_catalog.set_config('linktoken.purging_events', 'off', true)",
            None,
            &[],
        )
        .or_raise();
    removed
}
