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

/// What linktoken runs an app function for, and what that asks of it.
pub struct Role {
    /// "action", "resolver": in messages.
    pub what: &'static str,
    /// The signature it must have, as said in messages.
    pub signature: &'static str,
    /// Why it has that signature.
    pub signature_hint: &'static str,
    /// Whether a function has it: the index of the column of [`SHAPE`] that says so.
    shape_column: usize,
}

/// Actions: run by redeem with the token's subject and payload and the submitted form.
pub const ACTION: Role = Role {
    what: "action",
    signature: "(subject text, payload jsonb, form jsonb) RETURNS jsonb",
    signature_hint: "Actions receive the token's subject and payload and the submitted form, and return a jsonb result (or NULL).",
    shape_column: 3,
};

/// Resolvers: run by request() with what a person typed (an email address).
pub const RESOLVER: Role = Role {
    what: "resolver",
    signature: "(identifier text, OUT subject text, OUT address text)",
    signature_hint: "Resolvers receive what the person typed and return the subject and the mail address to send to, or NULLs when there is none.",
    shape_column: 4,
};

/// A function's name, kind and shape, whether it is SECURITY DEFINER and pins its search_path.
const SHAPE: &str = "\
SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text,
       p.prokind = 'f' AND NOT p.proretset,
       p.prorettype = 'pg_catalog.jsonb'::pg_catalog.regtype AND p.pronargs = 3
         AND p.proargtypes[0] = 'pg_catalog.text'::pg_catalog.regtype
         AND p.proargtypes[1] = 'pg_catalog.jsonb'::pg_catalog.regtype
         AND p.proargtypes[2] = 'pg_catalog.jsonb'::pg_catalog.regtype,
       p.prorettype = 'pg_catalog.record'::pg_catalog.regtype AND p.pronargs = 1
         AND p.proargtypes[0] = 'pg_catalog.text'::pg_catalog.regtype
         AND p.proallargtypes = ARRAY['pg_catalog.text'::pg_catalog.regtype, 'pg_catalog.text'::pg_catalog.regtype,
                                      'pg_catalog.text'::pg_catalog.regtype]::pg_catalog.oid[]
         AND p.proargmodes = ARRAY['i', 'o', 'o']::pg_catalog.\"char\"[],
       p.prosecdef,
       COALESCE((SELECT pg_catalog.bool_or(c LIKE 'search_path=%') FROM pg_catalog.unnest(p.proconfig) AS c), false)
FROM pg_catalog.pg_proc p WHERE p.oid = $1";

/// Checks, when a purpose is defined, that a function can serve in `role`: a plain function of
/// the role's signature, SECURITY DEFINER with a pinned search_path whose schemas only its
/// owner may create in, so that it runs with its own owner's privileges, never the extension
/// owner's, and nobody else's code. Raises 22023 (42883 for a function that does not exist).
pub fn check(client: &SpiClient<'_>, function: pg_sys::Oid, role: &Role) {
    let Some(row) = plans::select(client, SHAPE, &[DatumWithOid::from(function)]).next() else {
        crate::errors::raise(
            pgrx::PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION,
            format!("{} does not exist", role.what),
        )
    };
    let name: String = row.get(1).or_raise().unwrap_or_default();
    let flag = |column: usize| row.get::<bool>(column).or_raise().unwrap_or(false);
    let bad = |why: String, hint: &str| -> ! {
        crate::errors::raise_with_hint(
            pgrx::PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            why,
            hint,
        )
    };
    let what = role.what;
    if !flag(2) || !flag(role.shape_column) {
        bad(
            format!("{what} {name} must be a function {}", role.signature),
            role.signature_hint,
        );
    }
    if !flag(5) {
        bad(
            format!("{what} {name} must be SECURITY DEFINER"),
            "linktoken runs with the extension owner's privileges; a SECURITY DEFINER function runs with its own owner's instead. \
             ALTER FUNCTION ... SECURITY DEFINER SET search_path = <schemas>, pg_catalog, pg_temp.",
        );
    }
    if !flag(6) {
        bad(
            format!("{what} {name} must pin its search_path"),
            "ALTER FUNCTION ... SET search_path = <schemas>, pg_catalog, pg_temp.",
        );
    }
    let open = unsafe_schemas(client, function);
    if !open.is_empty() {
        bad(
            format!(
                "{what} {name} pins a search_path with schemas where other roles may create objects: {}",
                open.join(", ")
            ),
            OPEN_SCHEMA_HINT,
        );
    }
}

/// Checks again, before each call, what may have changed since the purpose was defined: the
/// function still exists (42883), is still SECURITY DEFINER with a pinned search_path, and
/// nobody else may create in the schemas of that path (42501). Nothing has been run then.
pub fn recheck(client: &SpiClient<'_>, function: pg_sys::Oid, role: &Role, purpose: &str) {
    let what = role.what;
    let Some(row) = plans::select(client, SHAPE, &[DatumWithOid::from(function)]).next() else {
        crate::errors::raise_with_hint(
            pgrx::PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION,
            format!("the {what} of purpose \"{purpose}\" no longer exists"),
            "Re-create the function and call linktoken.define_purpose again with it.",
        )
    };
    let safe = row.get::<bool>(5).or_raise().unwrap_or(false)
        && row.get::<bool>(6).or_raise().unwrap_or(false);
    if !safe {
        crate::errors::raise_with_hint(
            pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "the {what} of purpose \"{purpose}\" is no longer SECURITY DEFINER with a pinned search_path; refusing to run it"
            ),
            "ALTER FUNCTION ... SECURITY DEFINER SET search_path = <schemas>, pg_catalog, pg_temp.",
        );
    }
    let open = unsafe_schemas(client, function);
    if !open.is_empty() {
        crate::errors::raise_with_hint(
            pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "the {what} of purpose \"{purpose}\" pins a search_path with schemas where other roles may create objects ({}); refusing to run it",
                open.join(", ")
            ),
            OPEN_SCHEMA_HINT,
        );
    }
}

/// What to do about an app function whose search_path names a schema others may create in.
const OPEN_SCHEMA_HINT: &str =
    "Another role could plant a function or operator there that the function \
    would run with its owner's privileges. Put the function's objects in a schema only its owner may \
    create in (CREATE SCHEMA app AUTHORIZATION app_owner) and pin that: \
    ALTER FUNCTION ... SET search_path = app, pg_catalog, pg_temp. Every schema named must exist.";

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
