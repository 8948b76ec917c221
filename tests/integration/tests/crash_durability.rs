//! The database server crashes (`pg_ctl stop -m immediate`) while clients redeem distinct tokens
//! through the gateway. After recovery every acknowledged redemption is there with its action's
//! row, nothing is redeemed twice, nothing is half done, and retries of the failed requests give
//! `ok` or `used` as the database says, never a second success. The negative control runs the
//! same with `synchronous_commit = off` for the gateway's role and shows that the checker catches
//! the acknowledged redemptions this loses.
//!
//! Its own test binary, and one test, because it crashes the shared test cluster
//! (LINKTOKEN_TEST_CLUSTER_DIR).

use linktoken_integration::cluster::{cluster, wait_until_accepting};
use linktoken_integration::crash_check::{self, CrashReport, RedeemLoad, Sent};
use linktoken_integration::gateway::{login_role, Gateway};
use linktoken_integration::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

const TOKENS: i32 = 1500;
const WORKERS: usize = 4;

/// A purpose whose action writes one row per redemption into `{schema}.done`, deliberately
/// without a unique constraint, so a double redemption would show as two rows.
async fn purpose_writing_rows(c: &Client) -> (String, String) {
    let (purpose, schema) = purpose_with_action(
        c,
        "crash",
        "CREATE TABLE {schema}.done (subject text NOT NULL, at timestamptz DEFAULT now());",
        "INSERT INTO {schema}.done (subject) VALUES (subject); RETURN NULL;",
    )
    .await;
    (purpose, format!("{schema}.done"))
}

/// Waits (bounded) until the gateway answers /healthz with 200 again.
fn wait_healthy(gw: &Gateway) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if http::try_request(gw.addr, "GET", "/healthz", &[], b"").is_ok_and(|r| r.status == 200) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

struct Run {
    report: CrashReport,
    /// What went wrong on retrying the failed requests (empty when not retried).
    retry_errors: Vec<String>,
    /// Tokens that were sent but are not done exactly once after the retries.
    not_done_after_retry: Vec<usize>,
}

/// One crash under load: issue, redeem through the gateway with WORKERS clients, crash the
/// server once `acks_before_crash` were acknowledged, restart, check; retry the failed ones if
/// `retry`.
async fn crash_under_load(gateway_url: &str, acks_before_crash: usize, retry: bool) -> Run {
    let admin = connect().await;
    let (purpose, effects) = purpose_writing_rows(&admin).await;
    let tokens = Arc::new(crash_check::issue_numbered(&admin, &purpose, TOKENS).await);
    drop(admin);
    let gw = Gateway::start(
        gateway_url,
        &[
            "--pool-size",
            "8",
            "--pool-wait-ms",
            "1000",
            "--request-timeout-ms",
            "5000",
            "--failed-lookups-per-minute",
            "1000000",
        ],
    );
    let load = RedeemLoad::start(gw.addr, tokens.clone(), WORKERS);
    let enough = load.wait_for_acks(acks_before_crash, Duration::from_secs(60));
    cluster("crash");
    let seen = load.finish();
    assert!(
        enough,
        "the load never reached {acks_before_crash} acknowledged redemptions"
    );
    cluster("start");
    assert!(
        wait_until_accepting(Duration::from_secs(60)).await,
        "the server did not come back after the crash"
    );
    let admin = connect().await;
    let found = crash_check::observe(&admin, &purpose, &effects, &tokens).await;
    let history: Vec<_> = seen.into_iter().zip(found).collect();
    let report = crash_check::check(&history);
    let mut run = Run {
        report,
        retry_errors: Vec::new(),
        not_done_after_retry: Vec::new(),
    };
    if retry {
        assert!(
            wait_healthy(&gw),
            "the gateway did not reconnect after the crash"
        );
        run.retry_errors = crash_check::retry_failed(gw.addr, &tokens, &history);
        let after = crash_check::observe(&admin, &purpose, &effects, &tokens).await;
        run.not_done_after_retry = history
            .iter()
            .zip(&after)
            .enumerate()
            .filter(|(_, ((sent, _), now))| {
                *sent != Sent::NotSent && !(now.consumed && now.effects == 1)
            })
            .map(|(i, _)| i)
            .collect();
    }
    run
}

/// Puts `wal_writer_delay` back to its default when dropped, even if the test failed.
struct RestoreWalWriterDelay;

impl Drop for RestoreWalWriterDelay {
    fn drop(&mut self) {
        let p = ConnParams::from_env();
        let _ = std::process::Command::new("/usr/lib/postgresql/15/bin/psql")
            .args(["-X", "-q", "-h", &p.host, "-p", &p.port.to_string()])
            .args(["-U", &p.user, "-d", &p.dbname])
            .args(["-c", "ALTER SYSTEM RESET wal_writer_delay"])
            .args(["-c", "SELECT pg_reload_conf()"])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_redemptions_survive_a_server_crash() {
    let admin = connect().await;
    let (_, url) = login_role(&admin, "crash").await;
    drop(admin);

    // synchronous_commit = on (the default): nothing acknowledged may be lost.
    let run = crash_under_load(&url, 150, true).await;
    let r = &run.report;
    assert!(r.valid(), "after the crash: {r:?}");
    assert!(
        r.acked >= 150 && r.failed >= 1,
        "the crash hit the load: {r:?}"
    );
    assert!(
        run.retry_errors.is_empty(),
        "retries of the failed requests: {:?}",
        run.retry_errors
    );
    assert!(
        run.not_done_after_retry.is_empty(),
        "sent but not done exactly once after the retries: {:?}",
        run.not_done_after_retry
    );
    eprintln!(
        "synchronous_commit=on: {} acked, {} failed ({} of them done), nothing lost",
        r.acked,
        r.failed,
        r.recovered.len()
    );

    // Negative control: asynchronous commit for the gateway's role, and a WAL writer that
    // waits 10 s, so the last acknowledged commits are still in memory when the server dies.
    let admin = connect().await;
    let (role, url) = login_role(&admin, "crashasync").await;
    for sql in [
        format!("ALTER ROLE {role} SET synchronous_commit = off"),
        "ALTER SYSTEM SET wal_writer_delay = '10s'".to_owned(),
        "SELECT pg_reload_conf()".to_owned(),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    drop(admin);
    let restore = RestoreWalWriterDelay;
    let mut attempts = Vec::new();
    for _ in 0..3 {
        let run = crash_under_load(&url, 150, false).await;
        let r = run.report;
        assert!(
            r.unexpected.is_empty() && r.half_done.is_empty(),
            "asynchronous commit loses whole transactions, never parts of one: {r:?}"
        );
        let lost = r.lost.len();
        attempts.push(format!("{} acked, {lost} lost", r.acked));
        if lost > 0 {
            break;
        }
    }
    drop(restore);
    eprintln!("synchronous_commit=off: {attempts:?}");
    assert!(
        attempts.last().is_some_and(|a| !a.ends_with(" 0 lost")),
        "the checker saw no lost redemption with synchronous_commit=off in any attempt: {attempts:?}"
    );
    let admin = connect().await;
    let delay: String = admin
        .query_one("SHOW wal_writer_delay", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(delay, "200ms", "wal_writer_delay is back to its default");
}
