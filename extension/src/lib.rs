//! linktoken: one-time link tokens inside PostgreSQL.
//!
//! The SQL API (schema `linktoken`) is documented in docs/sql-api.md. Pure token logic lives in
//! the `linktoken-core` crate; this crate is the PostgreSQL glue:
//!
//! * [`purpose`] holds define_purpose and runs the actions redeem calls
//! * [`tokens`] holds the SQL entry points issue, seal, peek, redeem, revoke, revoke_subject,
//!   which hand a token to its kind: [`stored`] (hashed rows in linktoken.tokens: issue with
//!   throttle and revoke_previous, lookup, the consuming UPDATE) or [`sealed_tokens`] (stateless,
//!   with a spent list); [`found`] holds what both return and their argument checks
//! * [`keys`] holds the sealing keys (rotate_key, retire_key), also the key of code hashes
//! * [`definer`] checks the app's SECURITY DEFINER functions linktoken runs (their search_path)
//! * [`batch`] holds issue_batch (many tokens in one statement)
//! * [`plans`] keeps the prepared plans of the hot SPI statements
//! * [`gateway_api`] holds set_page, gateway_peek and gateway_redeem (the gateway's entry points)
//! * [`codes`] holds issue_with_code, redeem_code and unlock_codes (typed codes and their lock)
//! * [`attempts`] counts typed-code attempts in transactions of their own (a dynamic worker)
//! * [`request`] holds request(), set_mailer_key() and gateway_request_page() (the request form)
//! * [`purge`] holds purge()
//! * [`audit`] writes the append-only events log
//! * [`gucs`] registers the `linktoken.*` settings
//! * [`worker`] is the purge background worker (with shared_preload_libraries)
//! * [`types`] and [`errors`] hold the jsonb/regprocedure pass-through types and SQLSTATE helpers

//!
//! PostgreSQL majors: features `pg15` (default), `pg16` and `pg18`, one at a time. The same code
//! builds for all three (pgrx's bindings hide the differences that matter here); code that must
//! differ between majors goes into one module, `compat`, behind `#[cfg(feature = "pgNN")]`.

use pgrx::prelude::*;

mod attempts;
mod audit;
mod batch;
mod codes;
mod definer;
mod errors;
mod found;
mod gateway_api;
mod gucs;
mod keys;
mod plans;
mod purge;
mod purpose;
mod request;
mod sealed_tokens;
mod stored;
mod tokens;
mod types;
mod worker;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/bootstrap.sql", bootstrap);
extension_sql_file!(
    "../sql/throttle_and_triggers.sql",
    requires = ["bootstrap", tokens::revoke_subject]
);
extension_sql_file!("../sql/requests.sql", requires = ["bootstrap"]);
extension_sql_file!("../sql/finalize.sql", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // pgrx attaches a Rust backtrace to the DETAIL of every error that passes through it (an
    // action's RAISE included) whenever backtraces are enabled, e.g. by RUST_BACKTRACE=1 in the
    // server's environment. Errors must reach callers unchanged, so backtraces stay off unless
    // the operator asks for them explicitly with RUST_LIB_BACKTRACE.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: a PostgreSQL backend (or the postmaster, when preloaded) is single-threaded here.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    gucs::register();
    purpose::register_cache_invalidation();
    // SAFETY: reading a flag PostgreSQL sets while it loads shared_preload_libraries.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        worker::register();
    }
}

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
