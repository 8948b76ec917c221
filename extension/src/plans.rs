//! Prepared SPI plans kept for the life of the backend.
//!
//! `SpiClient::select("...")` parses, analyses and plans its statement on every call. The hot
//! statements (purpose lookup, issue's INSERT, redeem's UPDATE, the audit INSERT) go through
//! [`select`] and [`update`] instead: prepared once per session with `SPI_prepare` +
//! `SPI_keepplan` and then executed with `SPI_execute_plan`, as PL/pgSQL does with its
//! statements. PostgreSQL's plan cache re-plans them by itself when a table they use changes
//! (ALTER, DROP/CREATE EXTENSION), and privileges are still checked at every execution.
//!
//! They run with `plan_cache_mode = force_generic_plan`: they are key lookups whose best plan
//! does not depend on the parameter values, and under the default mode the plan cache kept
//! choosing a custom plan, that is planning the statement again at every call (measured:
//! redeem's backend CPU per call fell by about a fifth). The setting is made at a GUC nest
//! level of its own and undone right after the statement (or by the abort of an error).
//!
//! Plans are never freed (a handful per backend), so a `&'static` to one stays valid while
//! the statement runs, even if that statement re-enters the extension (an action calling
//! linktoken functions) and prepares further plans.

use crate::errors::OrRaise;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::{self, PgOid};
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiTupleTable};
use std::cell::RefCell;

/// Kept plans by the address of their statement text (a `&'static str`, so one address per
/// statement) and whether they may modify data. A few dozen at most: a linear scan comparing
/// addresses costs less than hashing the text of a statement on every call.
type Cache = Vec<(usize, bool, &'static OwnedPreparedStatement)>;

thread_local! {
    static PLANS: RefCell<Cache> = const { RefCell::new(Vec::new()) };
}

/// The kept plan for `sql`, prepared with the argument types of `args` on first use.
fn plan(
    client: &SpiClient<'_>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
    mutating: bool,
) -> &'static OwnedPreparedStatement {
    let key = sql.as_ptr() as usize;
    let cached = PLANS.with(|p| {
        p.borrow()
            .iter()
            .find(|(k, m, _)| *k == key && *m == mutating)
            .map(|(_, _, stmt)| *stmt)
    });
    if let Some(found) = cached {
        return found;
    }
    let types: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
    let prepared = if mutating {
        client.prepare_mut(sql, &types)
    } else {
        client.prepare(sql, &types)
    };
    let kept: &'static OwnedPreparedStatement = Box::leak(Box::new(prepared.or_raise().keep()));
    PLANS.with(|p| p.borrow_mut().push((key, mutating, kept)));
    kept
}

/// Runs `f` with plan_cache_mode = force_generic_plan, restored afterwards (on error, the
/// (sub)transaction abort restores it, as for a function's SET clause).
fn generic_plans<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: PostgreSQL's GUC API, called in a backend inside a transaction; the name and value
    // are static C strings; elevel ERROR makes a failure raise instead of returning.
    let nest = unsafe {
        let nest = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"plan_cache_mode".as_ptr(),
            c"force_generic_plan".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            pgrx::PgLogLevel::ERROR as i32,
            false,
        );
        nest
    };
    let result = f();
    // SAFETY: pops exactly the nest level pushed above.
    unsafe { pg_sys::AtEOXact_GUC(true, nest) };
    result
}

/// Runs a read-only statement through its kept plan (like `SpiClient::select`).
pub fn select<'conn>(
    client: &SpiClient<'conn>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
) -> SpiTupleTable<'conn> {
    let stmt = plan(client, sql, args, false);
    generic_plans(|| client.select(stmt, None, args)).or_raise()
}

/// Runs a data-modifying statement through its kept plan (like `SpiClient::update`).
pub fn update<'conn>(
    client: &mut SpiClient<'conn>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
) -> SpiTupleTable<'conn> {
    let stmt = plan(client, sql, args, true);
    generic_plans(|| client.update(stmt, None, args)).or_raise()
}
