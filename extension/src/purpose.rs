//! Purposes: what a token is for, how long it lives, how often it may be used, and the app's
//! action that redeem runs.

use crate::definer;
use crate::errors::{raise, raise_with_hint, unknown_purpose, OrRaise};
use crate::plans;
use crate::types::RegProcedure;
use linktoken_core::input;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiHeapTupleData};
use pgrx::PgSqlErrorCode;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// A purpose as stored.
#[derive(Clone)]
pub struct Purpose {
    pub name: String,
    pub ttl: Interval,
    pub max_uses: Option<i32>,
    pub revoke_previous: bool,
    /// Least time between two tokens for one subject (None: no throttle).
    pub min_interval: Option<Interval>,
    /// Digits of typed codes (None: this purpose has no codes).
    pub code_digits: Option<i32>,
    /// Wrong codes allowed before the subject is locked out.
    pub max_attempts: i32,
    /// Links work only in the browser that asked for them (its bind value).
    pub bind_browser: bool,
    pub action: Option<pg_sys::Oid>,
    /// The app's function that maps what a person typed to (subject, address): request().
    pub resolver: Option<pg_sys::Oid>,
}

/// Validates a purpose argument and loads the purpose, raising 22004/22023 with a clear
/// message when it is NULL, malformed or not defined. A malformed name is never echoed back:
/// a caller that swapped its arguments must not see a token copied into an error message.
pub fn load(client: &SpiClient<'_>, name: Option<&str>) -> Purpose {
    let name = checked_name(name);
    try_load(client, name).unwrap_or_else(|| unknown_purpose("purpose", name))
}

/// The purposes columns that [`from_row`] reads, in its order (for statements that fetch a
/// purpose together with something else).
macro_rules! purpose_columns {
    () => {
        "ttl, max_uses, revoke_previous, action::pg_catalog.oid, min_interval, \
         code_digits, max_attempts, bind_browser, resolver::pg_catalog.oid"
    };
}

thread_local! {
    /// Purposes as last read, by name: issue and redeem need theirs on every call, and a lookup
    /// in a statement of its own (or folded into theirs) cost more than the rest of the work.
    /// Emptied whenever linktoken.purposes may have changed (see [`purposes_changed`]).
    static CACHE: RefCell<HashMap<String, Purpose>> = RefCell::new(HashMap::new());
    /// The oid of linktoken.purposes, whose relcache invalidations empty the cache.
    static PURPOSES_OID: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
}

/// PostgreSQL calls this when a relation's cached definition must be dropped: for
/// linktoken.purposes (after any write, through the trigger below) or for all relations.
unsafe extern "C-unwind" fn purposes_invalidated(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let ours = PURPOSES_OID.with(Cell::get);
    if relid == pg_sys::InvalidOid || relid == ours {
        // try_borrow: never panic inside PostgreSQL's invalidation processing; the cache is
        // only borrowed for a copy, never across a call into PostgreSQL.
        CACHE.with(|c| {
            if let Ok(mut c) = c.try_borrow_mut() {
                c.clear();
            }
        });
        PURPOSES_OID.with(|o| o.set(pg_sys::InvalidOid));
    }
}

/// Registers the cache's invalidation callback; called once per backend from _PG_init.
pub fn register_cache_invalidation() {
    // SAFETY: PostgreSQL's API for relcache callbacks, called while the library loads; the
    // callback lives as long as the library.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(purposes_invalidated), pg_sys::Datum::from(0))
    };
}

/// Trigger on linktoken.purposes (every statement that writes it, define_purpose and set_page
/// included): invalidates the table's relcache entry, so every backend's purpose cache is
/// emptied when this transaction commits (and this backend's at once).
#[pg_trigger]
fn purposes_changed<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, pgrx::PgTriggerError> {
    // SAFETY: queues an invalidation message for an existing relation.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(trigger.relid()?) };
    Ok(None)
}

/// The purpose of that name, if defined (from the cache when it is there).
pub fn try_load(client: &SpiClient<'_>, name: &str) -> Option<Purpose> {
    if let Some(found) = CACHE.with(|c| c.borrow().get(name).cloned()) {
        return Some(found);
    }
    let purpose = read(client, name)?;
    if PURPOSES_OID.with(Cell::get) == pg_sys::InvalidOid {
        let oid = plans::select(
            client,
            "SELECT 'linktoken.purposes'::pg_catalog.regclass::pg_catalog.oid",
            &[],
        )
        .first()
        .get_one::<pg_sys::Oid>()
        .or_raise();
        PURPOSES_OID.with(|o| o.set(oid.unwrap_or(pg_sys::InvalidOid)));
    }
    CACHE.with(|c| c.borrow_mut().insert(name.to_owned(), purpose.clone()));
    Some(purpose)
}

/// The purpose of that name as stored now.
fn read(client: &SpiClient<'_>, name: &str) -> Option<Purpose> {
    let rows = plans::select(
        client,
        concat!(
            "SELECT ",
            purpose_columns!(),
            " FROM linktoken.purposes WHERE name = $1"
        ),
        &[name.into()],
    );
    let row = rows.into_iter().next()?;
    Some(from_row(name, &row))
}

/// A purpose from the first columns of a row, as listed by [`purpose_columns`].
pub fn from_row(name: &str, row: &SpiHeapTupleData<'_>) -> Purpose {
    Purpose {
        name: name.to_owned(),
        ttl: row.get::<Interval>(1).or_raise().expect("ttl is NOT NULL"),
        max_uses: row.get::<i32>(2).or_raise(),
        revoke_previous: row.get::<bool>(3).or_raise().unwrap_or(true),
        action: row.get::<pg_sys::Oid>(4).or_raise(),
        min_interval: row.get::<Interval>(5).or_raise(),
        code_digits: row.get::<i32>(6).or_raise(),
        max_attempts: row.get::<i32>(7).or_raise().unwrap_or(5),
        bind_browser: row.get::<bool>(8).or_raise().unwrap_or(false),
        resolver: row.get::<pg_sys::Oid>(9).or_raise(),
    }
}

/// Checks a purpose argument (NULL, malformed: 22004/22023) without looking it up.
pub fn checked_name(name: Option<&str>) -> &str {
    let name = input::required("purpose", name).or_raise();
    input::purpose_name("purpose", name).or_raise();
    name
}

impl Purpose {
    /// Typed codes need a purpose defined with code_digits; anything else is a clear 22023.
    pub fn require_codes(&self) -> i32 {
        self.code_digits.unwrap_or_else(|| {
            raise_with_hint(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("purpose \"{}\" has no typed codes", self.name),
                "Define it with code_digits (6 to 10): linktoken.define_purpose(name, ttl, ..., code_digits => 6).",
            )
        })
    }
}

/// A TTL (or min_interval) must be a positive interval. (Compared as PostgreSQL compares intervals, a month being
/// 30 days; `Interval::is_positive` alone would let a zero interval through.)
pub fn check_ttl(arg: &'static str, ttl: Interval) {
    if ttl.as_micros() <= 0 {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{arg} must be a positive interval, not {ttl}"),
        );
    }
}

// One SQL argument per purpose option: the SQL signature is the contract.
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn define_purpose(
    name: Option<&str>,
    ttl: Option<Interval>,
    max_uses: default!(Option<i32>, 1),
    revoke_previous: default!(Option<bool>, true),
    action: default!(Option<RegProcedure>, "NULL"),
    min_interval: default!(Option<Interval>, "NULL"),
    code_digits: default!(Option<i32>, "NULL"),
    max_attempts: default!(Option<i32>, 5),
    bind_browser: default!(Option<bool>, false),
    resolver: default!(Option<RegProcedure>, "NULL"),
) {
    let name = input::required("name", name).or_raise();
    input::purpose_name("name", name).or_raise();
    let ttl = input::required("ttl", ttl).or_raise();
    check_ttl("ttl", ttl);
    input::max_uses("max_uses", max_uses).or_raise();
    let revoke_previous = input::required("revoke_previous", revoke_previous).or_raise();
    if let Some(m) = min_interval {
        check_ttl("min_interval", m);
    }
    if let Some(d) = code_digits {
        if !(6..=10).contains(&d) {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("code_digits must be between 6 and 10 or NULL for no codes, not {d}"),
            );
        }
    }
    let max_attempts = input::required("max_attempts", max_attempts).or_raise();
    let bind_browser = input::required("bind_browser", bind_browser).or_raise();
    if max_attempts <= 0 {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("max_attempts must be positive, not {max_attempts}"),
        );
    }
    Spi::connect_mut(|client| {
        if let Some(action) = action {
            definer::check(client, action.0, &definer::ACTION);
        }
        if let Some(resolver) = resolver {
            definer::check(client, resolver.0, &definer::RESOLVER);
        }
        plans::update(
            client,
            "INSERT INTO linktoken.purposes (name, ttl, max_uses, revoke_previous, action, min_interval, \
                                                 code_digits, max_attempts, bind_browser, resolver) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (name) DO UPDATE SET ttl = EXCLUDED.ttl, max_uses = EXCLUDED.max_uses, \
                   revoke_previous = EXCLUDED.revoke_previous, action = EXCLUDED.action, \
                   min_interval = EXCLUDED.min_interval, code_digits = EXCLUDED.code_digits, \
                   max_attempts = EXCLUDED.max_attempts, bind_browser = EXCLUDED.bind_browser, \
                   resolver = EXCLUDED.resolver, updated_at = pg_catalog.now()",
            &[
                    name.into(),
                    ttl.into(),
                    max_uses.into(),
                    revoke_previous.into(),
                    action.into(),
                    min_interval.into(),
                    code_digits.into(),
                    max_attempts.into(),
                    bind_browser.into(),
                    resolver.into(),
                ],
        );
    });
}

/// Runs a purpose's action with (subject, payload, form) and returns its result. The action's
/// errors reach the caller exactly as raised (definer::call and errors::passing_app_errors) and
/// abort the redeem, so the token stays unconsumed.
pub fn run_action(
    client: &mut SpiClient<'_>,
    purpose: &Purpose,
    action: pg_sys::Oid,
    subject: &str,
    payload: crate::types::RawJsonb,
    form: Option<crate::types::RawJsonb>,
) -> Option<crate::types::RawJsonb> {
    definer::recheck(client, action, &definer::ACTION, &purpose.name);
    let args = [
        subject.into_datum(),
        payload.into_datum(),
        form.and_then(IntoDatum::into_datum),
    ];
    definer::call(action, &args).and_then(|datum| {
        // SAFETY: the action returns jsonb; the copy goes to the context SPI returns into, as
        // pgrx's own SPI getters do, so it outlives this SPI connection.
        unsafe {
            crate::types::RawJsonb::from_datum_in_memory_context(
                pgrx::PgMemoryContexts::CurrentMemoryContext
                    .parent()
                    .expect("SPI's parent memory context"),
                datum,
                false,
                pg_sys::JSONBOID,
            )
        }
    })
}
