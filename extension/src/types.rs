//! SQL types passed through without conversion.
//!
//! `jsonb` values are kept as PostgreSQL datums instead of going through serde: a round trip
//! through `serde_json` would cost a parse per call and silently round large numbers.

use pgrx::callconv::{Arg, ArgAbi, BoxRet, FcInfo};
use pgrx::datum::{FromDatum, IntoDatum};
use pgrx::memcxt::PgMemoryContexts;
use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::impl_sql_translatable;

/// A `jsonb` value as PostgreSQL holds it (detoasted).
#[derive(Debug, Clone, Copy)]
pub struct RawJsonb(pg_sys::Datum);

impl RawJsonb {
    /// The value as serde JSON, for small documents whose numbers need no exactness (forms,
    /// page definitions).
    pub fn to_value(self) -> serde_json::Value {
        // SAFETY: the datum is a valid jsonb value.
        unsafe { pgrx::JsonB::from_polymorphic_datum(self.0, false, pg_sys::JSONBOID) }
            .map(|j| j.0)
            .unwrap_or(serde_json::Value::Null)
    }

    /// Size of the stored jsonb value in bytes, without its header.
    pub fn size(&self) -> usize {
        // SAFETY: the datum is a detoasted varlena (FromDatum below guarantees it).
        unsafe { pgrx::varlena::varsize_any_exhdr(self.0.cast_mut_ptr()) }
    }
}

impl FromDatum for RawJsonb {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _typoid: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null || datum.is_null() {
            return None;
        }
        // SAFETY: a non-null jsonb datum is a (possibly toasted) varlena pointer.
        let detoasted = unsafe { pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) };
        Some(RawJsonb(pg_sys::Datum::from(detoasted)))
    }

    unsafe fn from_datum_in_memory_context(
        mut memory_context: PgMemoryContexts,
        datum: pg_sys::Datum,
        is_null: bool,
        _typoid: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null || datum.is_null() {
            return None;
        }
        // Copy out of (for example) SPI's memory, which is freed when SPI finishes.
        memory_context.switch_to(|_| {
            // SAFETY: as above; the copy lives in the target context.
            let copy = unsafe { pg_sys::pg_detoast_datum_copy(datum.cast_mut_ptr()) };
            Some(RawJsonb(pg_sys::Datum::from(copy)))
        })
    }
}

impl IntoDatum for RawJsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for RawJsonb {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        // SAFETY: pgrx only calls this for a jsonb argument.
        unsafe { arg.unbox_arg_using_from_datum() }
            .unwrap_or_else(|| panic!("argument {index} must not be null"))
    }
}

unsafe impl BoxRet for RawJsonb {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        // SAFETY: the datum is a valid jsonb varlena allocated in a context that outlives the call.
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

impl_sql_translatable!(RawJsonb, "jsonb");

/// A `regprocedure` argument: a function identified by name and argument types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegProcedure(pub pg_sys::Oid);

impl FromDatum for RegProcedure {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        typoid: pg_sys::Oid,
    ) -> Option<Self> {
        // SAFETY: regprocedure is an oid by value.
        unsafe { pg_sys::Oid::from_polymorphic_datum(datum, is_null, typoid) }.map(RegProcedure)
    }
}

impl IntoDatum for RegProcedure {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        self.0.into_datum()
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::REGPROCEDUREOID
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for RegProcedure {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        // SAFETY: pgrx only calls this for a regprocedure argument.
        unsafe { arg.unbox_arg_using_from_datum() }
            .unwrap_or_else(|| panic!("argument {index} must not be null"))
    }
}

impl_sql_translatable!(RegProcedure, "regprocedure");
