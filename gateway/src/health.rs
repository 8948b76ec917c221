//! `/healthz` without a pool connection. A background probe runs `SELECT 1` about once a
//! second on a connection of its own, made like the pool's connections but outside the pool;
//! `/healthz` answers from its last result. So a flood of health checks never takes, or waits
//! for, a connection that a link click needs, and a busy pool does not read as a dead database.
//!
//! Still prompt: when the database shuts down it closes the probe's connection, and `/healthz`
//! sees that at once. A database that stops answering fails the probe's query after
//! [`QUERY_TIMEOUT`]. A result older than [`STALE`] counts as down. An unhealthy answer wakes
//! the probe early (at most every [`MIN_GAP`]), so recovery shows as soon as a check asks.

use crate::db::Db;
use deadpool_postgres::ClientWrapper;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often the probe runs while nobody asks.
const INTERVAL: Duration = Duration::from_secs(1);
/// Least time between two probes, however often unhealthy answers wake it.
const MIN_GAP: Duration = Duration::from_millis(200);
/// How long the probe's `SELECT 1` may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long making the probe's connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A successful probe older than this no longer counts (the probe would be stuck).
const STALE: Duration = Duration::from_secs(4);

#[derive(Default)]
struct State {
    /// When the last successful probe finished; None after a failed one.
    last_ok: Option<Instant>,
    conn: Option<Arc<ClientWrapper>>,
}

#[derive(Default)]
pub struct Health {
    state: Mutex<State>,
    wake: Notify,
}

/// The answer from the probe's last result: up when it succeeded less than [`STALE`] ago and
/// its connection is still open.
fn up(last_ok: Option<Instant>, connected: bool, now: Instant) -> bool {
    connected && last_ok.is_some_and(|at| now.saturating_duration_since(at) < STALE)
}

impl Health {
    /// `/healthz`: answers from the probe, never touches the database.
    pub fn healthy(&self) -> bool {
        let state = self.state.lock().unwrap();
        let connected = state.conn.as_ref().is_some_and(|c| !c.is_closed());
        let healthy = up(state.last_ok, connected, Instant::now());
        if !healthy {
            self.wake.notify_one();
        }
        healthy
    }

    /// Runs the probe forever (spawned once at startup, after a first [`Health::probe`]).
    pub async fn run(&self, db: &Db) {
        loop {
            tokio::time::sleep(MIN_GAP).await;
            tokio::select! {
                _ = tokio::time::sleep(INTERVAL - MIN_GAP) => {}
                _ = self.wake.notified() => {}
            }
            self.probe(db).await;
        }
    }

    /// One probe: (re)connects when needed, runs `SELECT 1`, records the result.
    pub async fn probe(&self, db: &Db) {
        let open = self
            .state
            .lock()
            .unwrap()
            .conn
            .clone()
            .filter(|c| !c.is_closed());
        let conn = match open {
            Some(c) => c,
            None => match tokio::time::timeout(CONNECT_TIMEOUT, db.dedicated_connection()).await {
                Ok(Ok(c)) => Arc::new(c),
                Ok(Err(e)) => return self.record(db, None, &e.to_string()),
                Err(_) => return self.record(db, None, "connecting timed out"),
            },
        };
        let why = match tokio::time::timeout(QUERY_TIMEOUT, conn.simple_query("SELECT 1")).await {
            Ok(Ok(_)) => return self.record(db, Some(conn), ""),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "SELECT 1 timed out".to_owned(),
        };
        // Ours dropped first, so that record() holds the last reference and can release it.
        drop(conn);
        self.record(db, None, &why);
    }

    /// Stores a probe's result; a failed probe drops its connection (the next one reconnects).
    /// Logs only the changes between up and down.
    fn record(&self, db: &Db, conn: Option<Arc<ClientWrapper>>, why: &str) {
        let mut state = self.state.lock().unwrap();
        let was_up = state.last_ok.is_some();
        state.last_ok = conn.as_ref().map(|_| Instant::now());
        let old = std::mem::replace(&mut state.conn, conn);
        let is_up = state.last_ok.is_some();
        drop(state);
        if let Some(old) = old.and_then(|c| Arc::try_unwrap(c).ok()) {
            db.release_dedicated(old);
        }
        match (was_up, is_up) {
            (true, false) => eprintln!("warn: health probe: database unavailable: {why}"),
            (false, true) => eprintln!("health probe: database answers"),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_from_a_fresh_result_on_an_open_connection() {
        let now = Instant::now();
        let ago = |ms: u64| Some(now - Duration::from_millis(ms));
        assert!(up(ago(0), true, now));
        assert!(up(ago(3900), true, now));
        assert!(!up(ago(4000), true, now), "stale");
        assert!(
            !up(ago(0), false, now),
            "the database closed the probe's connection"
        );
        assert!(!up(None, true, now), "the last probe failed");
        assert!(!up(None, false, now), "no probe yet");
    }
}
