//! Prepared SPI plans kept for the life of the backend.
//!
//! `SpiClient::select("...")` parses, analyses and plans its statement on every call. The hot
//! statements (purpose lookup, issue's INSERT, redeem's UPDATE, the audit INSERT) go through
//! [`select`] and [`update`] instead: prepared once per session with `SPI_prepare_cursor` +
//! `SPI_keepplan` and then executed with `SPI_execute_plan`, as PL/pgSQL does with its
//! statements. PostgreSQL's plan cache re-plans them by itself when a table they use changes
//! (ALTER, DROP/CREATE EXTENSION), and privileges are still checked at every execution.
//!
//! They are prepared with `CURSOR_OPT_GENERIC_PLAN` (`SPI_prepare_cursor`): they are key
//! lookups whose best plan does not depend on the parameter values, and without the option the
//! plan cache kept choosing a custom plan, that is planning the statement again at every call
//! (measured: redeem's backend CPU per call fell by about a fifth with generic plans). Earlier
//! builds got the same by setting `plan_cache_mode = force_generic_plan` at a GUC nest level
//! around every statement, which cost a walk over all settings per statement (AtEOXact_GUC); the
//! cursor option is the plan's own, so nothing is set or undone per statement. (A session that
//! sets `plan_cache_mode = force_custom_plan` overrides it, as PostgreSQL documents.)
//!
//! pgrx's prepared statements cannot take cursor options, so the plans are SPI's own and their
//! rows come back as [`Rows`], which reads them like pgrx's `SpiTupleTable`. Plans are never
//! freed (a handful per backend), so a kept plan stays valid while the statement runs, even if
//! that statement re-enters the extension (an action calling linktoken functions) and prepares
//! further plans.

use crate::errors::OrRaise;
use pgrx::datum::{DatumWithOid, FromDatum, IntoDatum};
use pgrx::memcxt::PgMemoryContexts;
use pgrx::pg_sys;
use pgrx::spi::{SpiError, SpiErrorCodes, SpiHeapTupleData, SpiResult};
use pgrx::PgSqlErrorCode;
use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::marker::PhantomData;

/// Kept plans by the address of their statement text (a `&'static str`, so one address per
/// statement). A few dozen at most: a linear scan comparing addresses costs less than hashing
/// the text of a statement on every call.
type Cache = Vec<(usize, Plan)>;

/// A kept SPI plan (never freed; see the module comment).
#[derive(Clone, Copy)]
struct Plan(pg_sys::SPIPlanPtr);

thread_local! {
    static PLANS: RefCell<Cache> = const { RefCell::new(Vec::new()) };
}

/// The kept plan for `sql`, prepared with the argument types of `args` on first use.
fn plan(sql: &'static str, args: &[DatumWithOid<'_>]) -> Plan {
    let key = sql.as_ptr() as usize;
    let cached = PLANS.with(|p| {
        p.borrow()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, plan)| *plan)
    });
    if let Some(found) = cached {
        return found;
    }
    let text = CString::new(sql).expect("statement texts have no NUL");
    let mut types: Vec<pg_sys::Oid> = args.iter().map(DatumWithOid::oid).collect();
    let nargs = i32::try_from(types.len()).expect("a handful of arguments");
    // SAFETY: SPI is connected (callers hold an SpiClient); the text and the types outlive the
    // call. A statement that does not parse or analyse raises an ERROR from inside.
    let ptr = unsafe {
        let ptr = pg_sys::SPI_prepare_cursor(
            text.as_ptr(),
            nargs,
            types.as_mut_ptr(),
            pg_sys::CURSOR_OPT_GENERIC_PLAN as i32,
        );
        if ptr.is_null() || pg_sys::SPI_keepplan(ptr) != 0 {
            let code = pg_sys::SPI_result;
            crate::errors::raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("could not prepare a statement of linktoken: SPI code {code}"),
            );
        }
        ptr
    };
    let kept = Plan(ptr);
    PLANS.with(|p| p.borrow_mut().push((key, kept)));
    kept
}

/// Runs the kept plan of `sql`. `read_only` as in SPI: no new snapshot and no command counter
/// increment; allowed (as in pgrx) only while the transaction has changed nothing.
fn execute<'conn>(sql: &'static str, args: &[DatumWithOid<'_>], read_only: bool) -> Rows<'conn> {
    let plan = plan(sql, args);
    let (mut values, nulls): (Vec<pg_sys::Datum>, Vec<c_char>) = args
        .iter()
        .map(|a| match a.datum() {
            Some(d) => (d.sans_lifetime(), b' ' as c_char),
            None => (pg_sys::Datum::from(0usize), b'n' as c_char),
        })
        .unzip();
    // SAFETY: the plan is kept and was prepared with these arguments' types; the arrays outlive
    // the call. An ERROR inside (an action's, a constraint's) propagates as PostgreSQL's.
    unsafe {
        pg_sys::SPI_tuptable = std::ptr::null_mut();
        let rc =
            pg_sys::SPI_execute_plan(plan.0, values.as_mut_ptr(), nulls.as_ptr(), read_only, 0);
        if rc < 0 {
            crate::errors::raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("a statement of linktoken failed: SPI code {rc}"),
            );
        }
        let table = pg_sys::SPI_tuptable;
        let size = if table.is_null() {
            0
        } else {
            (*table).numvals as usize
        };
        Rows {
            table,
            size,
            current: -1,
            _conn: PhantomData,
        }
    }
}

/// Whether the transaction has changed nothing yet (no transaction id): read-only statements
/// may then run with SPI's read_only, as pgrx's `SpiClient::select` does.
fn xact_unchanged() -> bool {
    // SAFETY: reads the backend's current transaction id, assigning none.
    unsafe { pg_sys::GetCurrentTransactionIdIfAny() == pg_sys::InvalidTransactionId }
}

/// Runs a read-only statement through its kept plan (like `SpiClient::select`).
pub fn select<'conn>(
    _client: &pgrx::spi::SpiClient<'conn>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
) -> Rows<'conn> {
    execute(sql, args, xact_unchanged())
}

/// Runs a data-modifying statement through its kept plan (like `SpiClient::update`). As there,
/// the transaction gets its id first, so that every later statement of it, `select`s included,
/// runs with a new snapshot: after `pg_advisory_xact_lock` (which writes nothing), the statements
/// that follow must see what a transaction that held the lock before committed.
pub fn update<'conn>(
    _client: &mut pgrx::spi::SpiClient<'conn>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
) -> Rows<'conn> {
    // SAFETY: assigns the transaction an id if it has none, or raises.
    unsafe { pg_sys::GetCurrentTransactionId() };
    execute(sql, args, false)
}

/// The rows a kept plan returned (SPI's tuple table, valid until the SPI connection ends):
/// iterate them, or position on the first and read its columns, as with pgrx's `SpiTupleTable`.
pub struct Rows<'conn> {
    table: *mut pg_sys::SPITupleTable,
    size: usize,
    current: isize,
    _conn: PhantomData<&'conn ()>,
}

impl<'conn> Rows<'conn> {
    /// Positioned on the first row (if any).
    pub fn first(mut self) -> Self {
        self.current = 0;
        self
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.size
    }

    /// No rows?
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The first column of the current row.
    pub fn get_one<A: FromDatum + IntoDatum>(&self) -> SpiResult<Option<A>> {
        self.get(1)
    }

    /// Column `ordinal` (from 1) of the current row, read alone (as pgrx's
    /// `SpiTupleTable::get`): an error when there is no current row or no such column.
    pub fn get<A: FromDatum + IntoDatum>(&self, ordinal: usize) -> SpiResult<Option<A>> {
        let index = self
            .position(self.current)
            .ok_or(SpiError::InvalidPosition)?;
        // SAFETY: the table is SPI's result of this statement (position() found a row in it),
        // the column is checked against its descriptor, and the value is copied out of SPI's
        // memory as pgrx does.
        unsafe {
            let table = &*self.table;
            let column = i32::try_from(ordinal)
                .ok()
                .filter(|c| (1..=(*table.tupdesc).natts).contains(c))
                .ok_or(SpiError::SpiError(SpiErrorCodes::NoAttribute))?;
            let mut is_null = false;
            let datum =
                pg_sys::SPI_getbinval(*table.vals.add(index), table.tupdesc, column, &mut is_null);
            A::try_from_datum_in_memory_context(
                PgMemoryContexts::CurrentMemoryContext
                    .parent()
                    .expect("SPI's memory context has a parent"),
                datum,
                is_null,
                pg_sys::SPI_gettypeid(table.tupdesc, column),
            )
            .map_err(SpiError::DatumError)
        }
    }

    /// The index of row `index` if the table has it.
    fn position(&self, index: isize) -> Option<usize> {
        usize::try_from(index).ok().filter(|i| *i < self.size)
    }

    /// Row `index` with all its columns, for iteration.
    fn row(&self, index: isize) -> Option<SpiHeapTupleData<'conn>> {
        let index = self.position(index)?;
        // SAFETY: the table is SPI's result of this statement (non-null when size > 0) and
        // index < numvals.
        unsafe {
            let table = &*self.table;
            SpiHeapTupleData::new(table.tupdesc, *table.vals.add(index)).or_raise()
        }
    }
}

impl<'conn> Iterator for Rows<'conn> {
    type Item = SpiHeapTupleData<'conn>;

    fn next(&mut self) -> Option<Self::Item> {
        self.current += 1;
        self.row(self.current)
    }
}
