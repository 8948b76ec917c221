//! A Jepsen-style checker for redemptions across a crash (reference: reliability-tests.md §4,
//! Jepsen's total-queue vocabulary).
//!
//! Each token is one operation. The client records what it saw ([`Sent`]); after recovery the
//! database says what happened ([`Found`]: is the token consumed, and how many rows did the
//! purpose's action write for it). Requests that failed or got no answer are indeterminate:
//! either outcome is allowed, but only as a whole.
//!
//! Tokens never appear here: operations are known by their index.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// What the client saw for one token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Never sent.
    NotSent,
    /// HTTP 2xx: the redemption was acknowledged.
    Acked,
    /// Anything else, or no answer at all: outcome unknown.
    Failed,
}

/// What the database holds for one token after recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub consumed: bool,
    /// Rows the purpose's action wrote for it.
    pub effects: i64,
}

/// The verdict. Each list holds operation indices.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CrashReport {
    pub acked: usize,
    pub failed: usize,
    /// Acknowledged, but after recovery neither consumed nor its action's row present.
    pub lost: Vec<usize>,
    /// Done without ever being sent, or the action's row written more than once.
    pub unexpected: Vec<usize>,
    /// Outcome unknown to the client, and done (allowed).
    pub recovered: Vec<usize>,
    /// Consumed without the action's row, or the row without the token consumed.
    pub half_done: Vec<usize>,
}

impl CrashReport {
    /// Nothing lost, nothing unexpected, nothing half done.
    pub fn valid(&self) -> bool {
        self.lost.is_empty() && self.unexpected.is_empty() && self.half_done.is_empty()
    }
}

/// Compares what the clients saw with what the database holds.
pub fn check(history: &[(Sent, Found)]) -> CrashReport {
    let mut r = CrashReport::default();
    for (i, (sent, found)) in history.iter().enumerate() {
        let done = found.consumed && found.effects == 1;
        let untouched = !found.consumed && found.effects == 0;
        match sent {
            Sent::Acked => r.acked += 1,
            Sent::Failed => r.failed += 1,
            Sent::NotSent => {}
        }
        if found.effects > 1 || (*sent == Sent::NotSent && !untouched) {
            r.unexpected.push(i);
        } else if !done && !untouched {
            r.half_done.push(i);
        } else if *sent == Sent::Acked && untouched {
            r.lost.push(i);
        } else if *sent == Sent::Failed && done {
            r.recovered.push(i);
        }
    }
    r
}

/// For each token: is it consumed (peek says `used`), and how many rows does `effects_table`
/// (a table with a `subject` column the action fills) hold for the token's subject. Token i
/// must have been issued for subject `i` (as text). Tokens travel as one bind parameter.
pub async fn observe(
    c: &Client,
    purpose: &str,
    effects_table: &str,
    tokens: &[String],
) -> Vec<Found> {
    let rows = c
        .query(
            &format!(
                "SELECT t.i, (SELECT status FROM linktoken.peek(t.token, $2)) = 'used',
                        (SELECT count(*) FROM {effects_table} d WHERE d.subject = (t.i - 1)::text)
                 FROM unnest($1::text[]) WITH ORDINALITY AS t(token, i) ORDER BY t.i"
            ),
            &[&tokens, &purpose],
        )
        .await
        .unwrap_or_else(|e| panic!("observe: {}", crate::describe(&e)));
    rows.iter()
        .map(|r| Found {
            consumed: r.get(1),
            effects: r.get(2),
        })
        .collect()
}

/// Issues `n` tokens of `purpose`, token i for subject `i`, in one statement.
pub async fn issue_numbered(c: &Client, purpose: &str, n: i32) -> Vec<String> {
    let tokens: Vec<String> = c
        .query(
            "SELECT linktoken.issue($1, (g - 1)::text) FROM generate_series(1, $2) g ORDER BY g",
            &[&purpose, &n],
        )
        .await
        .unwrap_or_else(|e| panic!("issue: {}", crate::describe(&e)))
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tokens.len(), n as usize);
    tokens
}

/// Worker threads that redeem distinct tokens through the gateway (POST with `confirm=yes`),
/// each token once, and record what they saw.
pub struct RedeemLoad {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Sent>>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl RedeemLoad {
    pub fn start(addr: SocketAddr, tokens: Arc<Vec<String>>, workers: usize) -> RedeemLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let next = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(vec![Sent::NotSent; tokens.len()]));
        let workers = (0..workers)
            .map(|_| {
                let (stop, acked, next, seen, tokens) = (
                    stop.clone(),
                    acked.clone(),
                    next.clone(),
                    seen.clone(),
                    tokens.clone(),
                );
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(token) = tokens.get(i) else { break };
                        let path = format!("/t/{token}");
                        let ok = crate::http::try_post_form(addr, &path, &[("confirm", "yes")])
                            .is_ok_and(|r| (200..300).contains(&r.status));
                        if ok {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        seen.lock().unwrap()[i] = if ok { Sent::Acked } else { Sent::Failed };
                    }
                })
            })
            .collect();
        RedeemLoad {
            stop,
            acked,
            seen,
            workers,
        }
    }

    /// Waits (up to `limit`) until `n` redemptions were acknowledged; returns whether they were.
    pub fn wait_for_acks(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.acked.load(Ordering::SeqCst) < n {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Stops the workers (each finishes its request in flight) and returns what they saw.
    pub fn finish(self) -> Vec<Sent> {
        self.stop.store(true, Ordering::SeqCst);
        for w in self.workers {
            w.join().expect("a load worker panicked");
        }
        let seen = self.seen.lock().unwrap();
        seen.clone()
    }
}

/// Sends every `Failed` redemption again. A retry must answer 200 (the first attempt did not
/// happen) or 410 (it did), and must agree with what the database said before the retry:
/// 200 for a token that was already done is a second success. Returns what went wrong, by index.
pub fn retry_failed(addr: SocketAddr, tokens: &[String], history: &[(Sent, Found)]) -> Vec<String> {
    let mut wrong = Vec::new();
    for (i, (sent, found)) in history.iter().enumerate() {
        if *sent != Sent::Failed {
            continue;
        }
        let path = format!("/t/{}", tokens[i]);
        let status = crate::http::try_post_form(addr, &path, &[("confirm", "yes")])
            .map(|r| r.status)
            .unwrap_or(0);
        let expected = if found.consumed { 410 } else { 200 };
        if status != expected {
            wrong.push(format!(
                "#{i}: retry answered {status}, expected {expected} (consumed before: {})",
                found.consumed
            ));
        }
    }
    wrong
}

#[cfg(test)]
mod tests {
    use super::*;

    const DONE: Found = Found {
        consumed: true,
        effects: 1,
    };
    const UNTOUCHED: Found = Found {
        consumed: false,
        effects: 0,
    };

    #[test]
    fn classifies_each_case() {
        let history = [
            (Sent::Acked, DONE),
            (Sent::Acked, UNTOUCHED),
            (Sent::Failed, DONE),
            (Sent::Failed, UNTOUCHED),
            (Sent::NotSent, UNTOUCHED),
            (Sent::NotSent, DONE),
            (
                Sent::Failed,
                Found {
                    consumed: true,
                    effects: 0,
                },
            ),
            (
                Sent::Acked,
                Found {
                    consumed: false,
                    effects: 1,
                },
            ),
            (
                Sent::Acked,
                Found {
                    consumed: true,
                    effects: 2,
                },
            ),
        ];
        let r = check(&history);
        assert_eq!(r.acked, 4);
        assert_eq!(r.failed, 3);
        assert_eq!(r.lost, vec![1]);
        assert_eq!(r.recovered, vec![2]);
        assert_eq!(r.unexpected, vec![5, 8]);
        assert_eq!(r.half_done, vec![6, 7]);
        assert!(!r.valid());
    }

    #[test]
    fn a_clean_history_is_valid() {
        let r = check(&[
            (Sent::Acked, DONE),
            (Sent::Failed, UNTOUCHED),
            (Sent::Failed, DONE),
            (Sent::NotSent, UNTOUCHED),
        ]);
        assert!(r.valid(), "{r:?}");
        assert_eq!(r.recovered, vec![2]);
    }
}
