//! Typed-code attempts that no ROLLBACK undoes.
//!
//! A caller of `redeem_code` controls its own transaction: if the attempt counter were written in
//! that transaction, `BEGIN; SELECT * FROM linktoken.redeem_code(...); ROLLBACK;` would guess
//! codes without limit (and erase the audit rows of the guesses). So every attempt is counted
//! in a transaction of its own, **before** redeem_code reveals anything: a short-lived dynamic
//! background worker (connected to the same database as the extension owner) upserts
//! `linktoken.code_attempts`, writes the 'rejected' event of a wrong code, commits and exits,
//! while the caller waits. The request and the counts travel through a dynamic shared memory
//! segment. If the attempt cannot be counted (no free worker slot within two seconds, the
//! worker failed, or it waited too long for a lock) redeem_code raises 53000 whatever the code
//! was, so a failed count never tells a guess apart.
//!
//! One worker start per typed code (a few milliseconds) is the price; codes are typed by
//! people. The workers come from `max_worker_processes` (shared with parallel query).

use crate::errors::{raise_with_hint, OrRaise};
use crate::gucs;
use crate::plans;
use linktoken_core::code::MAX_CONSECUTIVE_FAILURES;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::sync::atomic::{AtomicU32, Ordering};

const PURPOSE_MAX: usize = linktoken_core::input::MAX_PURPOSE_LEN;
const SUBJECT_MAX: usize = linktoken_core::input::MAX_SUBJECT_LEN;
const IP_MAX: usize = 64;
const UA_MAX: usize = 512;
/// How long to keep asking for a worker slot before refusing (in steps of 20 ms).
const SLOT_TRIES: u32 = 100;
/// The worker's lock_timeout: it waits at most this long for a caller's row lock on the counter
/// (held only by a transaction that redeemed a code or link of the subject and has not ended).
const WORKER_LOCK_TIMEOUT: &str = "2s";

/// What the caller hands the worker, and what the worker answers, in the shared segment.
#[repr(C)]
struct Slot {
    database: pg_sys::Oid,
    role: pg_sys::Oid,
    ttl_months: i32,
    ttl_days: i32,
    ttl_micros: i64,
    max_attempts: i32,
    /// The token whose code was typed, if the subject has a code outstanding.
    has_token: bool,
    token_hash: [u8; 32],
    /// The code matched: counted like the others (the caller's successful redemption resets the
    /// counter in its own transaction); no 'rejected' event unless the subject was locked.
    matched: bool,
    key: [u8; 32],
    purpose_len: u32,
    purpose: [u8; PURPOSE_MAX],
    subject_len: u32,
    subject: [u8; SUBJECT_MAX],
    ip_len: u32,
    ip: [u8; IP_MAX],
    ua_len: u32,
    ua: [u8; UA_MAX],
    // Written by the worker: the counts after this attempt, then `done` = 1.
    failures: i32,
    consecutive: i32,
    done: AtomicU32,
}

/// The counter after this attempt.
pub struct Counted {
    /// Attempts within the current window (this one included).
    pub failures: i32,
    /// Attempts since the last successful redemption, across windows (this one included).
    pub consecutive: i32,
}

impl Counted {
    /// Is the subject locked out after this attempt?
    pub fn locked(&self, max_attempts: i32) -> bool {
        self.failures >= max_attempts || self.consecutive >= MAX_CONSECUTIVE_FAILURES
    }
}

/// What is counted: one typed code for (purpose, subject).
pub struct Attempt<'a> {
    pub purpose: &'a str,
    pub subject: &'a str,
    pub key: [u8; 32],
    pub ttl: Interval,
    pub max_attempts: i32,
    pub token_hash: Option<linktoken_core::token::TokenHash>,
    pub matched: bool,
}

fn copy_in(dst: &mut [u8], len: &mut u32, text: &str) {
    let n = text.len().min(dst.len());
    dst[..n].copy_from_slice(&text.as_bytes()[..n]);
    *len = n as u32;
}

fn text_of(bytes: &[u8], len: u32) -> String {
    String::from_utf8_lossy(&bytes[..(len as usize).min(bytes.len())]).into_owned()
}

fn uncounted(why: &str) -> ! {
    raise_with_hint(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_RESOURCES,
        format!("could not count this typed code ({why}); no code was checked"),
        "Try again in a moment. Each typed code is counted in a transaction of its own by a short-lived \
         background worker (max_worker_processes), before the code is checked; two code checks for one \
         subject inside one transaction cannot both be counted.",
    )
}

/// Counts one attempt durably (committed whatever the caller's transaction does later) and
/// returns the counter after it. Raises 53000 if it cannot.
pub fn record(attempt: &Attempt<'_>) -> Counted {
    let size = std::mem::size_of::<Slot>();
    // SAFETY: PostgreSQL's DSM API in a backend inside a transaction; the segment belongs to the
    // current resource owner until detached below (or by the abort of an error), and `Slot` is
    // plain data that fits the segment we asked for.
    unsafe {
        let seg = pg_sys::dsm_create(size, 0);
        let slot = pg_sys::dsm_segment_address(seg).cast::<Slot>();
        std::ptr::write_bytes(slot.cast::<u8>(), 0, size);
        let s = &mut *slot;
        s.database = pg_sys::MyDatabaseId;
        s.role = pg_sys::GetUserId();
        s.ttl_months = attempt.ttl.months();
        s.ttl_days = attempt.ttl.days();
        s.ttl_micros = attempt.ttl.micros();
        s.max_attempts = attempt.max_attempts;
        s.has_token = attempt.token_hash.is_some();
        s.token_hash = attempt.token_hash.unwrap_or([0; 32]);
        s.matched = attempt.matched;
        s.key = attempt.key;
        copy_in(&mut s.purpose, &mut s.purpose_len, attempt.purpose);
        copy_in(&mut s.subject, &mut s.subject_len, attempt.subject);
        let ip = gucs::setting(&gucs::CLIENT_IP);
        copy_in(&mut s.ip, &mut s.ip_len, &ip);
        let ua = gucs::setting(&gucs::USER_AGENT);
        copy_in(&mut s.ua, &mut s.ua_len, &ua);
        let handle = pg_sys::dsm_segment_handle(seg);
        run_worker(handle);
        if s.done.load(Ordering::Acquire) != 1 {
            pg_sys::dsm_detach(seg);
            uncounted("the counting worker did not finish");
        }
        let counted = Counted {
            failures: s.failures,
            consecutive: s.consecutive,
        };
        pg_sys::dsm_detach(seg);
        counted
    }
}

/// The subject's current counter, read with a fresh snapshot (so it sees the workers' commits):
/// None when it has none.
pub fn current(client: &mut pgrx::spi::SpiClient<'_>, key: &[u8; 32]) -> Option<Counted> {
    let row = plans::update(
        client,
        "SELECT CASE WHEN window_until > pg_catalog.clock_timestamp() THEN failures ELSE 0 END, consecutive \
         FROM linktoken.code_attempts WHERE attempt_key = $1",
        &[key.as_slice().into()],
    )
    .next()?;
    Some(Counted {
        failures: row.get::<i32>(1).or_raise().unwrap_or(0),
        consecutive: row.get::<i32>(2).or_raise().unwrap_or(0),
    })
}

/// Ends a subject's run of wrong codes, in the caller's transaction (so only a redemption that
/// commits resets it). Returns whether there was one.
pub fn reset(client: &mut pgrx::spi::SpiClient<'_>, purpose: &str, subject: &str) -> bool {
    let key = linktoken_core::code::attempt_key(purpose, subject);
    !plans::update(
        client,
        "DELETE FROM linktoken.code_attempts WHERE attempt_key = $1 RETURNING 1",
        &[key.as_slice().into()],
    )
    .is_empty()
}

/// Starts the counting worker for the segment and waits until it has exited.
fn run_worker(handle: pg_sys::dsm_handle) {
    for _ in 0..SLOT_TRIES {
        let builder = BackgroundWorkerBuilder::new("linktoken code attempt")
            .set_type("linktoken code attempt")
            .set_library("linktoken")
            .set_function("linktoken_code_attempt_main")
            .enable_spi_access()
            .set_start_time(BgWorkerStartTime::RecoveryFinished)
            .set_restart_time(None)
            .set_argument(Some(pg_sys::Datum::from(handle)))
            // SAFETY: reading this backend's own pid.
            .set_notify_pid(unsafe { pg_sys::MyProcPid });
        if let Ok(worker) = builder.load_dynamic() {
            // Ok when it has exited; the segment says whether it counted.
            let _ = worker.wait_for_shutdown();
            return;
        }
        // No free slot: wait a little (interruptible) and ask again.
        // SAFETY: plain PostgreSQL calls in a backend.
        unsafe {
            pg_sys::pg_usleep(20_000);
            pg_sys::check_for_interrupts!();
        }
    }
    uncounted("no background worker slot was free (max_worker_processes)")
}

/// The counting worker: one upsert of the counter and, for a wrong code, its 'rejected' event,
/// in one committed transaction.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn linktoken_code_attempt_main(arg: pg_sys::Datum) {
    let handle = arg.value() as pg_sys::dsm_handle;
    // SAFETY: attaching to the segment the requesting backend created and keeps until we exit
    // (it waits for us); without a resource owner the mapping lasts until dsm_detach.
    let seg = unsafe { pg_sys::dsm_attach(handle) };
    if seg.is_null() {
        // The requester is gone (its statement was cancelled): nothing was checked either.
        return;
    }
    // SAFETY: the segment holds a `Slot` written by the requester before it started us.
    let s = unsafe { &mut *pg_sys::dsm_segment_address(seg).cast::<Slot>() };
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(s.database), Some(s.role));
    let purpose = text_of(&s.purpose, s.purpose_len);
    let subject = text_of(&s.subject, s.subject_len);
    let ip = text_of(&s.ip, s.ip_len);
    let ua = text_of(&s.ua, s.ua_len);
    let ttl =
        Interval::new(s.ttl_months, s.ttl_days, s.ttl_micros).unwrap_or(Interval::from_minutes(10));
    let token_hash = s.has_token.then_some(s.token_hash);
    let (key, max_attempts, matched) = (s.key, s.max_attempts, s.matched);
    let (failures, consecutive) = BackgroundWorker::transaction(move || {
        Spi::connect_mut(|client| {
            client
                .update(
                    "SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true), \
                            pg_catalog.set_config('lock_timeout', $1, true), \
                            pg_catalog.set_config('statement_timeout', '5s', true)",
                    None,
                    &[WORKER_LOCK_TIMEOUT.into()],
                )
                .or_raise();
            let row = client
                .update(
                    COUNT,
                    None,
                    &[
                        key.as_slice().into(),
                        purpose.as_str().into(),
                        ttl.into(),
                        max_attempts.into(),
                        MAX_CONSECUTIVE_FAILURES.into(),
                        token_hash.as_ref().map(|h| h.as_slice()).into(),
                        subject.as_str().into(),
                        ip.as_str().into(),
                        ua.as_str().into(),
                        matched.into(),
                    ],
                )
                .or_raise()
                .first();
            (
                row.get::<i32>(1).or_raise().unwrap_or(i32::MAX),
                row.get::<i32>(2).or_raise().unwrap_or(i32::MAX),
            )
        })
    });
    s.failures = failures;
    s.consecutive = consecutive;
    s.done.store(1, Ordering::Release);
    // SAFETY: detaching the mapping attached above.
    unsafe { pg_sys::dsm_detach(seg) };
}

/// The worker's statement. $1 key, $2 purpose, $3 the purpose's ttl (the window), $4
/// max_attempts, $5 the consecutive cap, $6 token hash (NULL: no code outstanding), $7 subject,
/// $8 client address, $9 user agent, $10 the code matched. A 'rejected' event is written for a
/// wrong code, and for a right one typed while the subject was already locked (redeem_code then
/// answers locked; a right code otherwise gets its 'redeemed' event from the caller's
/// transaction). A subject with no code outstanding
/// may be anything someone typed: its event carries only the attempt key, not the subject.
const COUNT: &str = "\
WITH a AS (
  INSERT INTO linktoken.code_attempts AS a (attempt_key, purpose, failures, window_until, consecutive, last_at)
  VALUES ($1, $2, 1, pg_catalog.clock_timestamp() + $3, 1, pg_catalog.clock_timestamp())
  ON CONFLICT (attempt_key) DO UPDATE SET
    failures = CASE WHEN a.window_until > pg_catalog.clock_timestamp() THEN a.failures + 1 ELSE 1 END,
    window_until = CASE WHEN a.window_until > pg_catalog.clock_timestamp() THEN a.window_until
                        ELSE pg_catalog.clock_timestamp() + $3 END,
    consecutive = a.consecutive + 1,
    last_at = pg_catalog.clock_timestamp()
  RETURNING failures, consecutive),
e AS (
  INSERT INTO linktoken.events (event, status, purpose, subject, token_hash, client_ip, user_agent, detail)
  SELECT 'rejected',
         CASE WHEN $10 OR a.failures >= $4 OR a.consecutive >= $5 THEN 'locked'
              WHEN $6::pg_catalog.bytea IS NULL THEN 'invalid' ELSE 'wrong_code' END,
         $2, CASE WHEN $6::pg_catalog.bytea IS NULL THEN NULL ELSE $7 END, $6, NULLIF($8, ''), NULLIF($9, ''),
         pg_catalog.jsonb_build_object('attempt_key', pg_catalog.encode($1, 'hex'))
  FROM a WHERE NOT $10 OR a.failures - 1 >= $4 OR a.consecutive - 1 >= $5)
SELECT failures, consecutive FROM a";
