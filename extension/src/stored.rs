//! Stored tokens (`ltk_`): only their SHA-256 is kept, in linktoken.tokens. Issue (with the
//! throttle, the per-subject lock and revoke_previous), lookup, the consuming UPDATE and revoke.

use crate::attempts;
use crate::audit;
use crate::errors::OrRaise;
use crate::found::{Bind, Found, Redeemed};
use crate::gucs;
use crate::keys;
use crate::plans;
use crate::purpose::{self, Purpose};
use crate::types::RawJsonb;
use linktoken_core::{token, Status};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::PgSqlErrorCode;

/// Why [`issue_for`] issued nothing: the subject's last token of this purpose is younger than
/// the purpose's min_interval; the seconds to wait. issue() raises 53400 with them, request()
/// sends nothing, silently.
pub struct Throttled(pub i32);

/// Issues a token of a loaded purpose (arguments checked): throttles, revokes earlier tokens,
/// stores the hash (and, with `with_code`, the keyed hash of a fresh typed code). Returns the
/// token and the code. Shared by issue(), issue_with_code() and request().
pub fn issue_for(
    client: &mut SpiClient<'_>,
    purpose: &Purpose,
    subject: &str,
    payload: Option<RawJsonb>,
    ttl: Option<Interval>,
    bind: Option<&str>,
    with_code: bool,
) -> Result<(String, Option<String>), Throttled> {
    let secret_bytes =
        usize::try_from(gucs::TOKEN_BYTES.get()).unwrap_or(token::DEFAULT_SECRET_BYTES);
    let random_failed = |e: token::RandomUnavailable| {
        crate::errors::raise(PgSqlErrorCode::ERRCODE_SYSTEM_ERROR, e.to_string())
    };
    let token = token::generate(secret_bytes).unwrap_or_else(random_failed);
    let hash = token::hash(&token);
    let code_digits = with_code.then(|| purpose.require_codes());
    if purpose.bind_browser && bind.is_none() {
        crate::errors::raise_with_hint(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                format!("bind must not be NULL: purpose \"{}\" binds links to the browser that asked for them", purpose.name),
                "Set a random cookie (e.g. linktoken_bind) in the browser that asks for the link and pass its value as bind.",
            );
    }
    // Only bound purposes keep the hash of the browser's value.
    let bind_hash = bind
        .filter(|_| purpose.bind_browser)
        .map(|b| token::hash(b).to_vec());
    if purpose.revoke_previous || purpose.min_interval.is_some() {
        serialize_issues(client, purpose, subject);
    }
    if let Some(seconds) = throttle_wait(client, purpose, subject) {
        return Err(Throttled(seconds));
    }
    if purpose.revoke_previous {
        revoke_previous(client, purpose, subject);
    }
    let (code, code_hash, code_kid) = match code_digits {
        None => (None, None, None),
        Some(digits) => {
            let code = linktoken_core::code::generate(digits as u32).unwrap_or_else(random_failed);
            let (kid, key) = keys::current_key(client);
            let keyed = linktoken_core::code::hash(&key, &purpose.name, subject, &code);
            (Some(code), Some(keyed.to_vec()), Some(kid as i32))
        }
    };
    let (issued_ip, issued_ua) = audit::client();
    plans::update(
            client,
            // The row is the record of the issue (0.5.0: no 'issued' event; see linktoken.audit).
            "INSERT INTO linktoken.tokens (token_hash, purpose, subject, payload, expires_at, max_uses, code_hash, code_kid, bind_hash, issued_ip, issued_ua) \
             VALUES ($1, $2, $3, COALESCE($4, '{}'::pg_catalog.jsonb), pg_catalog.now() + $5, $6, $7, $8, $9, $10, $11)",
            &[
                    hash.as_slice().into(),
                    purpose.name.as_str().into(),
                    subject.into(),
                    payload.into(),
                    ttl.unwrap_or(purpose.ttl).into(),
                    purpose.max_uses.into(),
                    code_hash.into(),
                    code_kid.into(),
                    bind_hash.into(),
                    issued_ip.into(),
                    issued_ua.into(),
                ],
        );
    Ok((token, code))
}

/// Serialises concurrent issues for one subject and purpose (an advisory lock), so that
/// revoke_previous and min_interval see every earlier token. Under READ COMMITTED the following
/// statements take a new snapshot after the lock and see the earlier issue's token. Under
/// SERIALIZABLE PostgreSQL aborts a conflict between two serializable issues with 40001, but
/// not one with a READ COMMITTED issue that committed while this one waited for the lock:
/// [`refuse_stale_snapshot`] does. Under REPEATABLE READ the snapshot predates the lock, so an
/// earlier token could go unseen: refuse instead.
fn serialize_issues(client: &mut SpiClient<'_>, purpose: &Purpose, subject: &str) {
    // SAFETY: reading a backend-local global that PostgreSQL sets at transaction start.
    let isolation = unsafe { pg_sys::XactIsoLevel };
    if isolation == pg_sys::XACT_REPEATABLE_READ as i32 {
        crate::errors::raise_with_hint(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!(
                "issue() cannot revoke earlier tokens of purpose \"{}\" reliably in a REPEATABLE READ transaction",
                purpose.name
            ),
            "Issue tokens in READ COMMITTED (the default) or SERIALIZABLE transactions, or define the purpose with revoke_previous => false and min_interval => NULL.",
        );
    }
    lock_subject(client, purpose, subject);
    if isolation == pg_sys::XACT_SERIALIZABLE as i32 {
        refuse_stale_snapshot(purpose, subject);
    }
}

/// Under SERIALIZABLE the transaction's snapshot may predate the advisory lock: a token that a
/// READ COMMITTED transaction issued for this subject and committed meanwhile is invisible to
/// it, so revoke_previous would leave it outstanding, and serializable snapshot isolation does
/// not see a conflict with a transaction that is not serializable. Counts the subject's tokens
/// in the latest snapshot and in this transaction's: when they differ, refuses with 40001
/// (serialization_failure), as PostgreSQL does for its own conflicts, so the caller retries
/// with a new snapshot. (A concurrent purge() can cause a needless retry; never a second
/// outstanding token.)
fn refuse_stale_snapshot(purpose: &Purpose, subject: &str) {
    const COUNT: &std::ffi::CStr =
        c"SELECT pg_catalog.count(*) FROM linktoken.tokens WHERE purpose = $1 AND subject = $2";
    // SAFETY: SPI is connected (the caller holds an SpiClient); the plan is prepared, run twice
    // with the two text arguments under the two snapshots and freed here; the result is read
    // right after each run, before anything else uses SPI_tuptable.
    let (latest, mine) = unsafe {
        let mut types = [pg_sys::TEXTOID, pg_sys::TEXTOID];
        let plan = pg_sys::SPI_prepare(COUNT.as_ptr(), 2, types.as_mut_ptr());
        if plan.is_null() {
            crate::errors::raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                "could not prepare the snapshot check of issue()",
            );
        }
        let mut values = [
            purpose.name.as_str().into_datum().expect("text"),
            subject.into_datum().expect("text"),
        ];
        let nulls = [b' ' as std::ffi::c_char; 2];
        let mut count = |snapshot: pg_sys::Snapshot| -> i64 {
            let rc = pg_sys::SPI_execute_snapshot(
                plan,
                values.as_mut_ptr(),
                nulls.as_ptr(),
                snapshot,
                std::ptr::null_mut(),
                true,
                false,
                1,
            );
            let table = pg_sys::SPI_tuptable;
            if rc != pg_sys::SPI_OK_SELECT as i32 || table.is_null() || (*table).numvals != 1 {
                crate::errors::raise(
                    PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                    "the snapshot check of issue() failed",
                );
            }
            let mut is_null = false;
            let datum = pg_sys::SPI_getbinval(*(*table).vals, (*table).tupdesc, 1, &mut is_null);
            i64::from_datum(datum, is_null).unwrap_or(0)
        };
        let latest = count(pg_sys::GetLatestSnapshot());
        let mine = count(pg_sys::GetTransactionSnapshot());
        pg_sys::SPI_freeplan(plan);
        (latest, mine)
    };
    if latest != mine {
        crate::errors::raise_with_hint(
            PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
            format!(
                "could not serialize access: a token of purpose \"{}\" was issued for this subject by a concurrent transaction",
                purpose.name
            ),
            "Retry the transaction.",
        );
    }
}

/// Takes the transaction-level advisory lock of (purpose, subject): issues and code checks of
/// one subject run one at a time.
pub fn lock_subject(client: &mut SpiClient<'_>, purpose: &Purpose, subject: &str) {
    plans::update(
        client,
        "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1), pg_catalog.hashtext($2))",
        &[purpose.name.as_str().into(), subject.into()],
    );
}

/// min_interval: the seconds to wait before the subject may have a new token of this purpose
/// (its last one is younger than min_interval), None when it may have one now. issue() refuses
/// with SQLSTATE 53400 (configuration_limit_exceeded) and the seconds to wait, so apps can
/// answer "we just sent you a link"; request() sends nothing, silently.
fn throttle_wait(client: &SpiClient<'_>, purpose: &Purpose, subject: &str) -> Option<i32> {
    let min_interval = purpose.min_interval?;
    let wait: Option<i32> = plans::select(
            client,
            "SELECT pg_catalog.ceil(EXTRACT(epoch FROM pg_catalog.max(created_at) + $3 - pg_catalog.clock_timestamp()))::int \
             FROM linktoken.tokens WHERE subject = $1 AND purpose = $2",
            &[subject.into(), purpose.name.as_str().into(), min_interval.into()],
        )
        .first()
        .get_one::<i32>()
        .or_raise();
    wait.filter(|s| *s > 0)
}

/// Revokes the subject's outstanding tokens of this purpose (after serialize_issues).
fn revoke_previous(client: &mut SpiClient<'_>, purpose: &Purpose, subject: &str) {
    audit::revoke_where(
        client,
        "subject = $1 AND purpose = $2",
        vec![subject.into(), purpose.name.as_str().into()],
        "reissued",
    );
}

/// Looks the stored token with this hash up for `purpose` without changing anything: its
/// status, and subject, payload, expiry and uses only for `ok` (the hash and subject of a known
/// token are kept for the audit log either way).
pub fn lookup(
    client: &SpiClient<'_>,
    hash: &token::TokenHash,
    purpose: &str,
    bind: Bind<'_>,
) -> Found {
    let (check_bind, bind_value) = bind.params();
    let rows = plans::select(
            client,
            "SELECT subject, payload, expires_at, max_uses - use_count, \
                    revoked_at IS NOT NULL, consumed_at IS NOT NULL, \
                    expires_at <= pg_catalog.clock_timestamp(), \
                    $3 AND bind_hash IS NOT NULL \
                      AND bind_hash IS DISTINCT FROM pg_catalog.sha256(pg_catalog.convert_to($4, 'UTF8')) \
             FROM linktoken.tokens WHERE token_hash = $1 AND purpose = $2",
            &[hash.as_slice().into(), purpose.into(), check_bind.into(), bind_value.into()],
        );
    let Some(row) = rows.into_iter().next() else {
        return Found::invalid();
    };
    let status = Status::of_unusable(
        row.get::<bool>(5).or_raise().unwrap_or(false),
        row.get::<bool>(6).or_raise().unwrap_or(false),
        row.get::<bool>(7).or_raise().unwrap_or(false),
    );
    // A usable token opened without its browser's bind value: say so, reveal nothing else.
    let status = match status {
        Status::Ok if row.get::<bool>(8).or_raise().unwrap_or(false) => Status::Unbound,
        s => s,
    };
    let ok = status == Status::Ok;
    Found {
        status,
        token_hash: Some(*hash),
        subject: row.get::<String>(1).or_raise(),
        payload: if ok {
            row.get::<RawJsonb>(2).or_raise()
        } else {
            None
        },
        expires_at: if ok { row.get(3).or_raise() } else { None },
        uses_left: if ok {
            row.get::<i32>(4).or_raise()
        } else {
            None
        },
    }
}

/// Revokes the stored token with this hash; false when there was nothing to revoke.
pub fn revoke(client: &mut SpiClient<'_>, hash: &token::TokenHash) -> bool {
    audit::revoke_where(
        client,
        "token_hash = $1",
        vec![hash.as_slice().into()],
        "revoke",
    ) > 0
}

/// One conditional UPDATE consumes a use: under READ COMMITTED a concurrent redeem of the same
/// token waits for this one, re-checks the conditions on the new row version and finds nothing.
/// The use that consumes the token (its last allowed one) is recorded in the row itself
/// (`consumed_pending_event`, the client's address and user agent), where purge() turns it into
/// the 'redeemed' event when it deletes the row; the view linktoken.audit shows it until then.
/// Writing no event row makes the common one-use redemption one heap update instead of an
/// update, an insert and a sequence step (about a tenth of its CPU).
/// $1 token hash, $2 purpose, $3 check the browser binding?, $4 the browser's bind value,
/// $5 and $6 the client's address and user agent (audit::client).
const CONSUME: &str = "UPDATE linktoken.tokens \
     SET use_count = use_count + 1, last_used_at = pg_catalog.clock_timestamp(), \
         consumed_at = CASE WHEN use_count + 1 >= max_uses THEN pg_catalog.clock_timestamp() END, \
         consumed_pending_event = (use_count + 1 >= max_uses) IS TRUE, \
         consumed_ip = CASE WHEN use_count + 1 >= max_uses THEN $5 END, \
         consumed_ua = CASE WHEN use_count + 1 >= max_uses THEN $6 END \
     WHERE token_hash = $1 AND purpose = $2 \
       AND consumed_at IS NULL AND revoked_at IS NULL \
       AND expires_at > pg_catalog.clock_timestamp() \
       AND (NOT $3 OR bind_hash IS NULL \
            OR bind_hash = pg_catalog.sha256(pg_catalog.convert_to($4, 'UTF8'))) \
     RETURNING subject, payload, consumed_pending_event";

/// Consumes one use of the stored token with this hash for `purpose` and runs the purpose's
/// action, recording the outcome in the audit log.
pub fn consume(
    client: &mut SpiClient<'_>,
    purpose: &Purpose,
    hash: token::TokenHash,
    form: Option<RawJsonb>,
    bind: Bind<'_>,
) -> Redeemed {
    let (check_bind, bind_value) = bind.params();
    let (ip, ua) = audit::client();
    let args = [
        hash.as_slice().into(),
        purpose.name.as_str().into(),
        check_bind.into(),
        bind_value.into(),
        ip.as_deref().into(),
        ua.as_deref().into(),
    ];
    let rows = plans::update(client, CONSUME, &args);
    if let Some(r) = rows.into_iter().next() {
        let subject: String = r.get(1).or_raise().expect("subject is NOT NULL");
        let payload: RawJsonb = r.get(2).or_raise().expect("payload is NOT NULL");
        let in_row: bool = r.get(3).or_raise().unwrap_or(false);
        return consumed(client, purpose, &hash, subject, payload, form, in_row);
    }
    not_consumed(client, purpose, &hash, bind)
}

/// After the UPDATE consumed a use: runs the action, then records the redemption as an event
/// unless the token row holds its record (`in_row`: the use that consumed the token).
fn consumed(
    client: &mut SpiClient<'_>,
    purpose: &Purpose,
    hash: &token::TokenHash,
    subject: String,
    payload: RawJsonb,
    form: Option<RawJsonb>,
    in_row: bool,
) -> Redeemed {
    if purpose.code_digits.is_some() {
        // A successful redemption, by link or by code, ends the subject's run of wrong codes.
        attempts::reset(client, &purpose.name, &subject);
    }
    let result = purpose
        .action
        .and_then(|action| purpose::run_action(client, purpose, action, &subject, payload, form));
    if !in_row {
        audit::record(
            client,
            "redeemed",
            Some(Status::Ok),
            Some(&purpose.name),
            Some(&subject),
            Some(hash.as_slice()),
        );
    }
    (Status::Ok, Some(subject), Some(payload), result)
}

/// The UPDATE found nothing usable: the status says why, and a 'rejected' event records it.
fn not_consumed(
    client: &mut SpiClient<'_>,
    purpose: &Purpose,
    hash: &token::TokenHash,
    bind: Bind<'_>,
) -> Redeemed {
    let found = lookup(client, hash, &purpose.name, bind);
    // The UPDATE found nothing usable, so a token that now looks usable was changed by a
    // concurrent transaction in between: report it as used, never as ok.
    let status = match found.status {
        Status::Ok => Status::Used,
        s => s,
    };
    audit::record(
        client,
        "rejected",
        Some(status),
        Some(&purpose.name),
        found.subject.as_deref(),
        found.token_hash.as_ref().map(|h| h.as_slice()),
    );
    (status, None, None, None)
}
