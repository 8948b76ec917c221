//! Settings (`linktoken.*`).

use linktoken_core::token;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

/// How long ended tokens (expired, used up, revoked) are kept before purge() deletes them.
pub static RETENTION_SECONDS: GucSetting<i32> = GucSetting::<i32>::new(7 * 24 * 3600);
/// How long purge() keeps audit events (0: for ever).
pub static EVENT_RETENTION_SECONDS: GucSetting<i32> = GucSetting::<i32>::new(400 * 24 * 3600);
/// Set by purge() for its own transaction while it deletes old events (the append-only trigger
/// lets those deletes through); superusers only.
pub static PURGING_EVENTS: GucSetting<bool> = GucSetting::<bool>::new(false);
/// Requests request() takes for one identifier (and purpose) per window before it ignores them.
pub static REQUESTS_PER_IDENTIFIER: GucSetting<i32> = GucSetting::<i32>::new(5);
/// The window of that count, in seconds.
pub static REQUEST_WINDOW_SECONDS: GucSetting<i32> = GucSetting::<i32>::new(3600);
/// Secret bytes in newly issued tokens (16 to 32).
pub static TOKEN_BYTES: GucSetting<i32> =
    GucSetting::<i32>::new(token::DEFAULT_SECRET_BYTES as i32);
/// Seconds between two runs of the purge worker.
pub static PURGE_INTERVAL_SECONDS: GucSetting<i32> = GucSetting::<i32>::new(3600);
/// Database the purge worker connects to.
pub static DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));
/// Client address for the audit log, set per transaction by the gateway.
pub static CLIENT_IP: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// Client user agent for the audit log, set per transaction by the gateway.
pub static USER_AGENT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

pub fn register() {
    GucRegistry::define_int_guc(
        c"linktoken.retention",
        c"How long linktoken.purge() keeps expired, used-up and revoked tokens.",
        c"Tokens whose expiry, last use or revocation is older than this are deleted by purge(). Accepts units: '7d', '12h'.",
        &RETENTION_SECONDS,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"linktoken.event_retention",
        c"How long linktoken.purge() keeps audit events (0 keeps them for ever).",
        c"Events in linktoken.events older than this are deleted by purge(). Accepts units: '400d'.",
        &EVENT_RETENTION_SECONDS,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"linktoken.requests_per_identifier",
        c"How many requests linktoken.request() takes for one identifier within linktoken.request_window.",
        c"Further requests for it are ignored silently (recorded as 'requested'/'capped'), known identifiers or not.",
        &REQUESTS_PER_IDENTIFIER,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"linktoken.request_window",
        c"The window of linktoken.requests_per_identifier.",
        c"Accepts units: '1h', '15min'.",
        &REQUEST_WINDOW_SECONDS,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"linktoken.purging_events",
        c"Internal: set by purge() while it deletes events older than linktoken.event_retention.",
        c"The append-only trigger on linktoken.events lets deletes through only while it is on.",
        &PURGING_EVENTS,
        GucContext::Suset,
        GucFlags::NO_SHOW_ALL,
    );
    GucRegistry::define_int_guc(
        c"linktoken.token_bytes",
        c"Random bytes in each new link token (16 = 128 bits to 32 = 256 bits).",
        c"Tokens always carry at least 128 bits from the operating system's CSPRNG.",
        &TOKEN_BYTES,
        token::MIN_SECRET_BYTES as i32,
        token::MAX_SECRET_BYTES as i32,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"linktoken.client_ip",
        c"Client address recorded in linktoken.events (set with set_config(..., true)).",
        c"The gateway sets it per transaction; applications calling the SQL functions directly may too.",
        &CLIENT_IP,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"linktoken.user_agent",
        c"Client user agent recorded in linktoken.events (set with set_config(..., true)).",
        c"The gateway sets it per transaction; applications calling the SQL functions directly may too.",
        &USER_AGENT,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"linktoken.purge_interval",
        c"How often the purge worker runs linktoken.purge() (needs shared_preload_libraries = 'linktoken').",
        c"Accepts units: '1h', '10min'. Takes effect on reload (pg_ctl reload).",
        &PURGE_INTERVAL_SECONDS,
        1,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_string_guc(
        c"linktoken.database",
        c"The database in which the purge worker runs linktoken.purge().",
        c"Read when the worker starts; after changing it, restart the server (or the worker).",
        &DATABASE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    // SAFETY: called from _PG_init, as PostgreSQL expects; the name is a static C string.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"linktoken".as_ptr()) };
}

/// A string setting's current value ('' when unset).
pub fn setting(guc: &GucSetting<Option<CString>>) -> String {
    guc.get()
        .and_then(|c| c.into_string().ok())
        .unwrap_or_default()
}

/// The purge worker's database name.
pub fn database_name() -> String {
    DATABASE
        .get()
        .and_then(|c| c.into_string().ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "postgres".to_owned())
}
