//! The application's own SECURITY DEFINER functions that linktoken calls (actions): the checks
//! on them, and the call itself.
//!
//! **The call** runs the function in a subtransaction under an error handler of linktoken's own,
//! so that an error it raises reaches linktoken's caller exactly as PostgreSQL raised it: the
//! same SQLSTATE (custom ones such as `AB123` included), message, detail, hint, context and the
//! schema/table/column/constraint fields. (Through pgrx's own handler only the standard
//! SQLSTATEs, message, detail and hint would survive.) The error is copied, the subtransaction
//! rolled back, the Rust stack unwound normally, and the copy re-thrown at the SQL entry point
//! ([`crate::errors::passing_app_errors`]).
//!
//! **The checks:** linktoken runs an action with the action owner's privileges. The action pins its
//! search_path; a schema on that path where some other role may CREATE would let that role
//! plant a function, operator or table the action then uses by its unqualified name, and run
//! code as the action's owner. So every schema the path names must exist, and only the action's
//! owner (or a superuser, who can do anything anyway) may create objects in it.

use crate::errors::OrRaise;
use crate::plans;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::PgList;
use std::ffi::{c_char, c_int, CStr, CString};

/// PostgreSQL functions called without pgrx's error guard, inside linktoken's own handler
/// (pgrx's guard would catch the app's error first and keep only some of its fields).
mod unguarded {
    use pgrx::pg_sys;
    unsafe extern "C-unwind" {
        pub fn fmgr_info(function: pg_sys::Oid, finfo: *mut pg_sys::FmgrInfo);
    }
}

/// The schemas of a function's pinned search_path, in order, as PostgreSQL parses the setting
/// (its own SplitIdentifierString: quotes, case folding). None when it does not parse.
fn split_search_path(path: &str) -> Option<Vec<String>> {
    let raw = CString::new(path).ok()?.into_raw();
    let mut list: *mut pg_sys::List = std::ptr::null_mut();
    // SAFETY: `raw` is a writable NUL-terminated buffer that outlives the list, whose elements
    // point into it; the list is palloc'd in the current memory context.
    let (ok, names) = unsafe {
        let ok = pg_sys::SplitIdentifierString(raw, b',' as c_char, &mut list);
        let names: Vec<String> = PgList::<c_char>::from_pg(list)
            .iter_ptr()
            .map(|p| CStr::from_ptr(p).to_string_lossy().into_owned())
            .collect();
        drop(CString::from_raw(raw));
        (ok, names)
    };
    ok.then_some(names)
}

/// Names of the schemas on `function`'s pinned search_path where a role other than its owner
/// (and other than a superuser) may CREATE, or that do not exist (anyone with CREATE on the
/// database could make them). `$user` stands for the owner; `pg_temp` is the session's own and
/// is skipped (functions and operators are never looked up there). Empty: the path is safe.
pub fn unsafe_schemas(client: &SpiClient<'_>, function: pg_sys::Oid) -> Vec<String> {
    let Some(row) = plans::select(
        client,
        "SELECT pg_catalog.pg_get_userbyid(p.proowner)::pg_catalog.text, \
                (SELECT pg_catalog.substr(c, 13) FROM pg_catalog.unnest(p.proconfig) AS c \
                 WHERE c LIKE 'search_path=%' LIMIT 1) \
         FROM pg_catalog.pg_proc p WHERE p.oid = $1",
        &[DatumWithOid::from(function)],
    )
    .into_iter()
    .next() else {
        return vec!["(the function does not exist)".into()];
    };
    let owner: String = row.get(1).or_raise().unwrap_or_default();
    let Some(path) = row.get::<String>(2).or_raise() else {
        return vec!["(no pinned search_path)".into()];
    };
    let Some(names) = split_search_path(&path) else {
        return vec![format!("(search_path {path:?} does not parse)")];
    };
    let names: Vec<String> = names
        .into_iter()
        .filter(|n| n != "pg_temp")
        .map(|n| if n == "$user" { owner.clone() } else { n })
        .collect();
    plans::select(
        client,
        "WITH s AS (SELECT name, i FROM pg_catalog.unnest($2::pg_catalog.text[]) WITH ORDINALITY AS s(name, i)), \
              c AS (SELECT s.name, s.i, n.oid AS nsp, \
                           CASE WHEN x.role = 'pg_database_owner'::pg_catalog.regrole \
                                THEN (SELECT d.datdba FROM pg_catalog.pg_database d \
                                      WHERE d.datname = pg_catalog.current_database()) \
                                ELSE x.role END AS role \
                    FROM s LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = s.name \
                    LEFT JOIN LATERAL (SELECT n.nspowner \
                                       UNION ALL SELECT a.grantee FROM pg_catalog.aclexplode(n.nspacl) a \
                                                 WHERE a.privilege_type = 'CREATE') AS x(role) ON true) \
         SELECT name FROM c \
         WHERE nsp IS NULL \
            OR (role <> (SELECT p.proowner FROM pg_catalog.pg_proc p WHERE p.oid = $1) \
                AND NOT COALESCE((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = c.role), false)) \
         GROUP BY name, i ORDER BY i",
        &[DatumWithOid::from(function), names.into()],
    )
    .into_iter()
    .filter_map(|r| r.get::<String>(1).or_raise())
    .collect()
}

/// Calls the app's function `function(args...)` and returns its result (None for NULL). An
/// error it raises is handed on whole: see the module documentation.
pub fn call(function: pg_sys::Oid, args: &[Option<pg_sys::Datum>]) -> Option<pg_sys::Datum> {
    let nargs = args.len();
    // SAFETY: PostgreSQL's fmgr and subtransaction API, used as PL/pgSQL uses it for an
    // EXCEPTION block: the subtransaction is always released or rolled back before returning or
    // unwinding, and the previous memory context, resource owner and error-handler stack are
    // restored on both paths. Inside the sigsetjmp region only unguarded C calls run (no Rust
    // value with a destructor lives there), so a longjmp skips nothing that needed dropping.
    unsafe {
        let oldcontext = pg_sys::CurrentMemoryContext;
        let oldowner = pg_sys::CurrentResourceOwner;
        let flinfo =
            pg_sys::palloc0(std::mem::size_of::<pg_sys::FmgrInfo>()).cast::<pg_sys::FmgrInfo>();
        let fcinfo = pg_sys::palloc0(
            std::mem::size_of::<pg_sys::FunctionCallInfoBaseData>()
                + nargs * std::mem::size_of::<pg_sys::NullableDatum>(),
        )
        .cast::<pg_sys::FunctionCallInfoBaseData>();
        (*fcinfo).flinfo = flinfo;
        (*fcinfo).fncollation = pg_sys::DEFAULT_COLLATION_OID;
        (*fcinfo).nargs = nargs as i16;
        let slots = (*fcinfo).args.as_mut_slice(nargs);
        for (slot, arg) in slots.iter_mut().zip(args) {
            slot.value = arg.unwrap_or(pg_sys::Datum::from(0));
            slot.isnull = arg.is_none();
        }
        let any_null = args.iter().any(Option::is_none);

        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(oldcontext);
        let prev_exception_stack = pg_sys::PG_exception_stack;
        let prev_error_context_stack = pg_sys::error_context_stack;
        let mut result = pg_sys::Datum::from(0);
        let mut is_null = true;
        let jumped: c_int = cee_scape::call_with_sigsetjmp(false, |jump_buffer| {
            pg_sys::PG_exception_stack = std::ptr::from_ref(jump_buffer).cast_mut().cast();
            unguarded::fmgr_info(function, flinfo);
            // A STRICT function is not called with a NULL argument (as in SQL).
            if !((*flinfo).fn_strict && any_null) {
                if let Some(entry) = (*flinfo).fn_addr {
                    result = entry(fcinfo);
                    is_null = (*fcinfo).isnull;
                }
            }
            0
        });
        pg_sys::PG_exception_stack = prev_exception_stack;
        pg_sys::error_context_stack = prev_error_context_stack;
        if jumped != 0 {
            // The copy must outlive the SPI contexts that unwinding frees before the re-throw.
            pg_sys::MemoryContextSwitchTo(pg_sys::TopTransactionContext);
            let edata = pg_sys::CopyErrorData();
            pg_sys::FlushErrorState();
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
            pg_sys::MemoryContextSwitchTo(oldcontext);
            pg_sys::CurrentResourceOwner = oldowner;
            std::panic::panic_any(crate::errors::AppError(edata));
        }
        pg_sys::ReleaseCurrentSubTransaction();
        pg_sys::MemoryContextSwitchTo(oldcontext);
        pg_sys::CurrentResourceOwner = oldowner;
        (!is_null).then_some(result)
    }
}
