//! Prepared SPI plans kept for the life of the backend.
//!
//! `SpiClient::select("...")` parses, analyses and plans its statement on every call. The hot
//! statements (purpose lookup, issue's INSERT, redeem's UPDATE, the audit INSERT) go through
//! [`select`] and [`update`] instead: prepared once per session with `SPI_prepare` +
//! `SPI_keepplan` and then executed with `SPI_execute_plan`, as PL/pgSQL does with its
//! statements. PostgreSQL's plan cache re-plans them by itself when a table they use changes
//! (ALTER, DROP/CREATE EXTENSION), and privileges are still checked at every execution.
//!
//! Plans are never freed (a handful per backend), so a `&'static` to one stays valid while
//! the statement runs, even if that statement re-enters the extension (an action calling
//! linktoken functions) and prepares further plans.

use crate::errors::OrRaise;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::PgOid;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiTupleTable};
use std::cell::RefCell;
use std::collections::HashMap;

/// Kept plans by statement text and whether they may modify data.
type Cache = HashMap<(&'static str, bool), &'static OwnedPreparedStatement>;

thread_local! {
    static PLANS: RefCell<Cache> = RefCell::new(HashMap::new());
}

/// The kept plan for `sql`, prepared with the argument types of `args` on first use.
fn plan(
    client: &SpiClient<'_>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
    mutating: bool,
) -> &'static OwnedPreparedStatement {
    if let Some(found) = PLANS.with(|p| p.borrow().get(&(sql, mutating)).copied()) {
        return found;
    }
    let types: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
    let prepared = if mutating {
        client.prepare_mut(sql, &types)
    } else {
        client.prepare(sql, &types)
    };
    let kept: &'static OwnedPreparedStatement = Box::leak(Box::new(prepared.or_raise().keep()));
    PLANS.with(|p| p.borrow_mut().insert((sql, mutating), kept));
    kept
}

/// Runs a read-only statement through its kept plan (like `SpiClient::select`).
pub fn select<'conn>(
    client: &SpiClient<'conn>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
) -> SpiTupleTable<'conn> {
    let stmt = plan(client, sql, args, false);
    client.select(stmt, None, args).or_raise()
}

/// Runs a data-modifying statement through its kept plan (like `SpiClient::update`).
pub fn update<'conn>(
    client: &mut SpiClient<'conn>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
) -> SpiTupleTable<'conn> {
    let stmt = plan(client, sql, args, true);
    client.update(stmt, None, args).or_raise()
}
