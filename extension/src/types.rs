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

/// Builds the function's one-row result of a composite type declared in the extension's SQL
/// (e.g. `linktoken.redemption`), from the column values in order. Returning one composite
/// instead of a one-row set spares a second call of the function (and its SECURITY DEFINER
/// search_path switch) per statement; `SELECT * FROM linktoken.redeem(...)` still expands it.
/// The row type is the function's declared result type, taken from the call itself once per
/// call site: its descriptor is kept in the call's `fn_extra`, in the call's own memory
/// context, and reused by the following calls of that site (a statement calling the function
/// for each of many rows reads the type's definition once).
///
/// # Safety
/// `fcinfo` is the current call's, and the function returns a composite type with as many
/// columns as `values`, of the datums' types.
unsafe fn composite_result(
    fcinfo: pg_sys::FunctionCallInfo,
    values: &[Option<pg_sys::Datum>],
) -> pg_sys::Datum {
    // SAFETY: the caller's promise; get_call_result_type reads the call's own result type, and
    // the copy it returns is made in fn_mcxt, which lives as long as the call site (fn_extra is
    // ours: these functions are not set-returning, so nothing else keeps state there).
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        let mut tupdesc = (*flinfo).fn_extra as pg_sys::TupleDesc;
        if tupdesc.is_null() {
            let caller = pg_sys::MemoryContextSwitchTo((*flinfo).fn_mcxt);
            let kind =
                pg_sys::get_call_result_type(fcinfo, std::ptr::null_mut(), &mut tupdesc as *mut _);
            pg_sys::MemoryContextSwitchTo(caller);
            assert_eq!(
                kind,
                pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE,
                "a composite result type"
            );
            tupdesc = pg_sys::BlessTupleDesc(tupdesc);
            (*flinfo).fn_extra = tupdesc.cast();
        }
        let mut datums: Vec<pg_sys::Datum> = values
            .iter()
            .map(|v| v.unwrap_or(pg_sys::Datum::from(0)))
            .collect();
        let mut nulls: Vec<bool> = values.iter().map(Option::is_none).collect();
        let tuple = pg_sys::heap_form_tuple(tupdesc, datums.as_mut_ptr(), nulls.as_mut_ptr());
        pg_sys::heap_copy_tuple_as_datum(tuple, tupdesc)
    }
}

/// Declares a Rust type for one of the extension's composite result types (created in
/// bootstrap.sql) that a `#[pg_extern]` function can return: its columns' values in order.
macro_rules! composite_result_type {
    ($(#[$doc:meta])* $name:ident, $sql:literal) => {
        $(#[$doc])*
        pub struct $name(pub Vec<Option<pgrx::pg_sys::Datum>>);

        impl pgrx::datum::IntoDatum for $name {
            fn into_datum(self) -> Option<pgrx::pg_sys::Datum> {
                unreachable!("returned through BoxRet, which knows the call")
            }
            fn type_oid() -> pgrx::pg_sys::Oid {
                pgrx::pg_sys::RECORDOID
            }
        }

        unsafe impl pgrx::callconv::BoxRet for $name {
            unsafe fn box_into<'fcx>(
                self,
                fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
            ) -> pgrx::datum::Datum<'fcx> {
                // SAFETY: this is the current call, whose declared result type is $sql.
                unsafe {
                    let datum = composite_result(fcinfo.as_mut_ptr(), &self.0);
                    fcinfo.return_raw_datum(datum)
                }
            }
        }

        pgrx::pgrx_sql_entity_graph::impl_sql_translatable!($name, $sql);
    };
}

composite_result_type!(
    /// `linktoken.peek_result`: status, subject, payload, expires_at, uses_left.
    PeekRow,
    "@extschema@.peek_result"
);
composite_result_type!(
    /// `linktoken.redemption`: status, subject, payload, result.
    RedeemRow,
    "@extschema@.redemption"
);
composite_result_type!(
    /// `linktoken.code_redemption`: status, subject, payload, result, attempts_left.
    CodeRedeemRow,
    "@extschema@.code_redemption"
);
composite_result_type!(
    /// `linktoken.landing`: status, purpose, page, uses_left (gateway_peek).
    LandingRow,
    "@extschema@.landing"
);
composite_result_type!(
    /// `linktoken.gateway_redemption`: status, purpose, result, page (gateway_redeem).
    GatewayRedeemRow,
    "@extschema@.gateway_redemption"
);
composite_result_type!(
    /// `linktoken.token_and_code`: token, code (issue_with_code).
    TokenAndCodeRow,
    "@extschema@.token_and_code"
);
