//! The database is stopped and started again while clients keep clicking links (GET) and
//! redeeming them (POST) through the gateway: while it is down every answer is a 503, given
//! promptly rather than after the request deadline; once it is back, full service without
//! restarting the gateway; and no redemption is lost or half done across the outage.
//!
//! Its own test binary because it stops the shared test cluster (LINKTOKEN_TEST_CLUSTER_DIR).

use linktoken_integration::cluster::{cluster, wait_until_accepting};
use linktoken_integration::crash_check::{self, Found, Sent};
use linktoken_integration::gateway::{login_role, Gateway};
use linktoken_integration::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request a client made.
#[derive(Clone, Copy, Debug)]
struct Call {
    post: Option<usize>,
    sent: Instant,
    took: Duration,
    /// 0: no answer.
    status: u16,
}

struct Clients {
    stop: Arc<AtomicBool>,
    calls: Arc<Mutex<Vec<Call>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// `n` clients, each alternating a GET of `landing` and a POST redeeming the next fresh token.
fn clients(addr: SocketAddr, landing: String, fresh: Arc<Vec<String>>, n: usize) -> Clients {
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let threads = (0..n)
        .map(|_| {
            let (stop, calls, next, fresh) =
                (stop.clone(), calls.clone(), next.clone(), fresh.clone());
            let landing = format!("/t/{landing}");
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let sent = Instant::now();
                    let status =
                        http::try_request(addr, "GET", &landing, &[], b"").map_or(0, |r| r.status);
                    calls.lock().unwrap().push(Call {
                        post: None,
                        sent,
                        took: sent.elapsed(),
                        status,
                    });
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(token) = fresh.get(i) else { break };
                    let sent = Instant::now();
                    let status =
                        http::try_post_form(addr, &format!("/t/{token}"), &[("confirm", "yes")])
                            .map_or(0, |r| r.status);
                    calls.lock().unwrap().push(Call {
                        post: Some(i),
                        sent,
                        took: sent.elapsed(),
                        status,
                    });
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    Clients {
        stop,
        calls,
        threads,
    }
}

impl Clients {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    /// Waits (bounded) until a call sent after `after` got `status`; returns when it ended.
    fn wait_for(&self, status: u16, after: Instant, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let hit = self
                .calls()
                .iter()
                .filter(|c| c.sent >= after && c.status == status)
                .map(|c| c.sent + c.took)
                .min();
            if hit.is_some() {
                return hit;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
    fn finish(self) -> Vec<Call> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("a client panicked");
        }
        let calls = self.calls.lock().unwrap();
        calls.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_under_load_503_then_full_service() {
    let c = connect().await;
    let (_, url) = login_role(&c, "gwoutage").await;
    let (purpose, schema) = purpose_with_action(
        &c,
        "gwoutage",
        "CREATE TABLE {schema}.done (subject text NOT NULL);",
        "INSERT INTO {schema}.done (subject) VALUES (subject); RETURN NULL;",
    )
    .await;
    let table = format!("{schema}.done");
    let landing = issue(&c, &purpose, "landing").await;
    let fresh = Arc::new(crash_check::issue_numbered(&c, &purpose, 3000).await);
    drop(c);
    // A hang would last until the request deadline (30 s); a prompt 503 takes the pool wait.
    let gw = Gateway::start(
        &url,
        &[
            "--pool-wait-ms",
            "1000",
            "--request-timeout-ms",
            "30000",
            "--failed-lookups-per-minute",
            "1000000",
        ],
    );
    let load = clients(gw.addr, landing, fresh.clone(), 4);
    let started = Instant::now();
    assert!(
        load.wait_for(200, started, Duration::from_secs(20))
            .is_some(),
        "service before the outage"
    );
    std::thread::sleep(Duration::from_millis(500));

    cluster("stop");
    let down_from = Instant::now();
    assert!(
        load.wait_for(503, down_from, Duration::from_secs(20))
            .is_some(),
        "503 while the database is down"
    );
    std::thread::sleep(Duration::from_secs(2));
    let down_until = Instant::now();
    cluster("start");
    let up_from = Instant::now();
    let back = load.wait_for(200, up_from, Duration::from_secs(20));
    assert!(
        back.is_some(),
        "service came back without restarting the gateway"
    );
    let back = back.unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let calls = load.finish();

    let unexpected: Vec<_> = calls
        .iter()
        .filter(|c| ![200, 503].contains(&c.status))
        .collect();
    assert!(
        unexpected.is_empty(),
        "every answer is 200 or 503, and there is always an answer: {unexpected:?}"
    );
    let down: Vec<_> = calls
        .iter()
        .filter(|c| c.sent >= down_from && c.sent + c.took <= down_until)
        .collect();
    assert!(
        down.len() >= 8,
        "clients kept asking while it was down: {}",
        down.len()
    );
    assert!(
        down.iter().all(|c| c.status == 503),
        "only 503 while the database is down: {down:?}"
    );
    let slowest = down.iter().map(|c| c.took).max().unwrap();
    assert!(
        slowest < Duration::from_secs(10),
        "503s come promptly, not at the 30 s request deadline: {slowest:?}"
    );
    let after: Vec<_> = calls.iter().filter(|c| c.sent > back).collect();
    assert!(
        after.len() >= 8,
        "clients kept asking after: {}",
        after.len()
    );
    assert!(
        after.iter().all(|c| c.status == 200),
        "full service once it answered again: {:?}",
        after.iter().filter(|c| c.status != 200).collect::<Vec<_>>()
    );

    // Across the outage: every acknowledged redemption is there, none half done; the failed
    // ones redeem once on retry or say used.
    assert!(wait_until_accepting(Duration::from_secs(10)).await);
    let c = connect().await;
    let mut seen = vec![Sent::NotSent; fresh.len()];
    for call in &calls {
        if let Some(i) = call.post {
            seen[i] = if call.status == 200 {
                Sent::Acked
            } else {
                Sent::Failed
            };
        }
    }
    let found: Vec<Found> = crash_check::observe(&c, &purpose, &table, &fresh).await;
    let history: Vec<_> = seen.into_iter().zip(found).collect();
    let r = crash_check::check(&history);
    assert!(r.valid(), "{r:?}");
    assert!(r.failed >= 1, "some redemptions failed while down: {r:?}");
    let wrong = crash_check::retry_failed(gw.addr, &fresh, &history);
    assert!(wrong.is_empty(), "retries: {wrong:?}");
}
