//! The purge worker: with `shared_preload_libraries = 'linktoken'`, a background worker runs
//! `linktoken.purge()` every `linktoken.purge_interval` in the database `linktoken.database`.
//! It re-reads its settings on SIGHUP (pg_ctl reload) and stops at once on SIGTERM. Without
//! preloading nothing is registered and nothing breaks: schedule purge() with cron or pg_cron.

use crate::gucs;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use std::time::Duration;

/// Registers the worker; called from _PG_init while shared_preload_libraries is processed.
pub fn register() {
    BackgroundWorkerBuilder::new("linktoken purge")
        .set_type("linktoken purge")
        .set_library("linktoken")
        .set_function("linktoken_purge_worker_main")
        .enable_spi_access()
        .set_restart_time(Some(Duration::from_secs(30)))
        .load();
}

fn interval() -> Duration {
    Duration::from_secs(
        u64::try_from(gucs::PURGE_INTERVAL_SECONDS.get())
            .unwrap_or(3600)
            .max(1),
    )
}

/// One purge in its own transaction; skipped (with a log line) where the extension is absent.
fn purge_once() {
    BackgroundWorker::transaction(|| {
        let installed = Spi::get_one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'linktoken')",
        )
        .ok()
        .flatten()
        .unwrap_or(false);
        if !installed {
            pgrx::log!("linktoken purge worker: the extension is not installed in this database; nothing to purge");
            return;
        }
        match Spi::get_one::<i64>("SELECT linktoken.purge()") {
            Ok(Some(n)) if n > 0 => pgrx::log!("linktoken purge worker: purged {n} tokens"),
            Ok(_) => {}
            Err(e) => pgrx::warning!("linktoken purge worker: {e}"),
        }
    });
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn linktoken_purge_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = gucs::database_name();
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    pgrx::log!(
        "linktoken purge worker started in database \"{database}\", every {} s",
        interval().as_secs()
    );
    purge_once();
    while BackgroundWorker::wait_latch(Some(interval())) {
        if BackgroundWorker::sighup_received() {
            // SAFETY: the documented way for a background worker to re-read its configuration.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            pgrx::log!(
                "linktoken purge worker: configuration reloaded, every {} s",
                interval().as_secs()
            );
            continue;
        }
        purge_once();
    }
    pgrx::log!("linktoken purge worker stopping");
}
