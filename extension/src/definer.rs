//! Checks on the application's own SECURITY DEFINER functions that linktoken calls (actions).
//!
//! linktoken runs an action with the action owner's privileges. The action pins its
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
use std::ffi::{c_char, CStr, CString};

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
