//! purge(): deletes tokens that ended (expired, used up, revoked) longer ago than
//! `linktoken.retention`, walking the table in bounded batches by id, then spent-list entries of
//! expired sealed tokens and idle typed-code counters.

use crate::errors::OrRaise;
use crate::gucs;
use pgrx::prelude::*;

const BATCH: i64 = 5000;

#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn purge() -> i64 {
    let retention = gucs::RETENTION_SECONDS.get();
    Spi::connect_mut(|client| {
        let mut after: i64 = 0;
        let mut deleted: i64 = 0;
        loop {
            let row = client
                .update(
                    "WITH batch AS ( \
                       SELECT id, expires_at, consumed_at, revoked_at FROM linktoken.tokens \
                       WHERE id > $1 ORDER BY id LIMIT $2), \
                     cutoff AS (SELECT pg_catalog.now() - pg_catalog.make_interval(secs => $3) AS t), \
                     gone AS ( \
                       DELETE FROM linktoken.tokens tok USING batch b, cutoff c \
                       WHERE tok.id = b.id \
                         AND (b.expires_at < c.t OR b.consumed_at < c.t OR b.revoked_at < c.t) \
                       RETURNING tok.id) \
                     SELECT (SELECT pg_catalog.max(id) FROM batch), (SELECT pg_catalog.count(*) FROM gone)",
                    None,
                    &[after.into(), BATCH.into(), f64::from(retention).into()],
                )
                .or_raise();
            let row = row.first();
            let last: Option<i64> = row.get(1).or_raise();
            deleted += row.get::<i64>(2).or_raise().unwrap_or(0);
            match last {
                Some(id) => after = id,
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
        if deleted > 0 || counters > 0 {
            client
                .update(
                    "INSERT INTO linktoken.events (event, detail) \
                     VALUES ('purged', pg_catalog.jsonb_build_object('tokens', $1, 'retention_seconds', $2, \
                                                                      'code_attempt_counters', $3))",
                    None,
                    &[deleted.into(), retention.into(), counters.into()],
                )
                .or_raise();
        }
        deleted
    })
}
