//! The mailer's statements on linktoken.outbox. It needs only what linktoken_mailer has:
//! SELECT on the table and UPDATE of sent_at, attempts, last_error and next_attempt_at.
//!
//! A claim is one statement (its own short transaction): it locks due messages with
//! `FOR UPDATE SKIP LOCKED`, so concurrent mailers never take the same one, counts the attempt
//! and moves next_attempt_at a lease ahead, so no other mailer takes it while it is sent. After
//! the send the message is marked sent, or rescheduled, or given up (next_attempt_at =
//! 'infinity', sent_at NULL). A mailer killed in between leaves the message to reappear when
//! the lease ends.

use std::time::Duration;
use tokio_postgres::Client;

/// A claimed message.
pub struct Claimed {
    pub id: i64,
    pub purpose: String,
    pub address: String,
    /// The token's expiry has passed.
    pub expired: bool,
    /// The expiry in UTC, e.g. `2030-01-01 12:00 UTC`.
    pub expires: String,
    /// Seconds until the expiry.
    pub expires_in: i64,
    pub one_click: bool,
    pub subject: String,
    pub fingerprint: Vec<u8>,
    pub sealed: Vec<u8>,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// Which messages a mailer may take.
pub struct Scope {
    /// The fingerprints of the keys it holds.
    pub fingerprints: Vec<Vec<u8>>,
    /// Only these purposes (None: all).
    pub purposes: Option<Vec<String>>,
}

const CLAIM: &str = "\
WITH due AS (
    SELECT id FROM linktoken.outbox
    WHERE sent_at IS NULL AND next_attempt_at <= pg_catalog.now()
      AND key_fingerprint = ANY($1::bytea[])
      AND ($2::text[] IS NULL OR purpose = ANY($2::text[]))
    ORDER BY next_attempt_at, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED)
UPDATE linktoken.outbox o
SET attempts = o.attempts + 1,
    next_attempt_at = pg_catalog.now() + pg_catalog.make_interval(secs => $4::float8)
FROM due WHERE o.id = due.id
RETURNING o.id, o.purpose, o.address, o.expires_at <= pg_catalog.now(),
          pg_catalog.to_char(o.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI \"UTC\"'),
          pg_catalog.date_part('epoch', o.expires_at - pg_catalog.now())::bigint,
          o.one_click, o.mail_subject, o.key_fingerprint, o.sealed, o.attempts";

const MARK_SENT: &str =
    "UPDATE linktoken.outbox SET sent_at = pg_catalog.now(), last_error = NULL \
                         WHERE id = $1 AND sent_at IS NULL";

const RETRY_LATER: &str = "UPDATE linktoken.outbox SET last_error = $2, \
                           next_attempt_at = pg_catalog.now() + pg_catalog.make_interval(secs => $3::float8) \
                           WHERE id = $1 AND sent_at IS NULL";

const GIVE_UP: &str = "UPDATE linktoken.outbox SET last_error = $2, next_attempt_at = 'infinity' \
                       WHERE id = $1 AND sent_at IS NULL";

/// Claimed but not tried (a stop): as if never claimed.
const RELEASE: &str =
    "UPDATE linktoken.outbox SET attempts = attempts - 1, next_attempt_at = pg_catalog.now() \
                       WHERE id = ANY($1::bigint[]) AND sent_at IS NULL";

const FOREIGN_KEYS: &str = "\
SELECT id, purpose, key_fingerprint FROM linktoken.outbox
WHERE sent_at IS NULL AND next_attempt_at <= pg_catalog.now()
  AND key_fingerprint <> ALL($1::bytea[])
  AND ($2::text[] IS NULL OR purpose = ANY($2::text[]))
ORDER BY id LIMIT 100";

pub async fn claim(
    db: &Client,
    scope: &Scope,
    batch: u32,
    lease: Duration,
) -> Result<Vec<Claimed>, tokio_postgres::Error> {
    let rows = db
        .query(
            CLAIM,
            &[
                &scope.fingerprints,
                &scope.purposes,
                &i64::from(batch),
                &lease.as_secs_f64(),
            ],
        )
        .await?;
    let mut claimed: Vec<Claimed> = rows
        .iter()
        .map(|r| Claimed {
            id: r.get(0),
            purpose: r.get(1),
            address: r.get(2),
            expired: r.get(3),
            expires: r.get(4),
            expires_in: r.get(5),
            one_click: r.get(6),
            subject: r.get(7),
            fingerprint: r.get(8),
            sealed: r.get(9),
            attempts: r.get(10),
        })
        .collect();
    // UPDATE … RETURNING gives no order; send in the order claimed.
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

pub async fn mark_sent(db: &Client, id: i64) -> Result<(), tokio_postgres::Error> {
    db.execute(MARK_SENT, &[&id]).await.map(drop)
}

pub async fn retry_later(
    db: &Client,
    id: i64,
    error: &str,
    wait: Duration,
) -> Result<(), tokio_postgres::Error> {
    db.execute(RETRY_LATER, &[&id, &error, &wait.as_secs_f64()])
        .await
        .map(drop)
}

pub async fn give_up(db: &Client, id: i64, error: &str) -> Result<(), tokio_postgres::Error> {
    db.execute(GIVE_UP, &[&id, &error]).await.map(drop)
}

pub async fn release(db: &Client, ids: &[i64]) -> Result<(), tokio_postgres::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    db.execute(RELEASE, &[&ids]).await.map(drop)
}

/// Due messages sealed to keys this mailer does not hold: (id, purpose, fingerprint).
pub async fn foreign_keys(
    db: &Client,
    scope: &Scope,
) -> Result<Vec<(i64, String, Vec<u8>)>, tokio_postgres::Error> {
    let rows = db
        .query(FOREIGN_KEYS, &[&scope.fingerprints, &scope.purposes])
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}
