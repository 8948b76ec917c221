//! The gateway is killed (SIGKILL) with redemptions in flight: no token is consumed without its
//! action's row, and after a restart the retries answer `ok` or `used` as the database says,
//! never a second success.

use linktoken_integration::crash_check::{self, RedeemLoad, Sent};
use linktoken_integration::gateway::{login_role, Gateway};
use linktoken_integration::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// A purpose whose action writes a row for the subject, then sleeps for subjects starting with
/// `slow` (so the transaction stays open with the token consumed and the row written).
async fn purpose_writing_rows(c: &Client) -> (String, String) {
    let (purpose, schema) = purpose_with_action(
        c,
        "gwkill",
        "CREATE TABLE {schema}.done (subject text NOT NULL);",
        "INSERT INTO {schema}.done (subject) VALUES (subject);
         IF subject LIKE 'slow%' THEN PERFORM pg_sleep(2); END IF;
         RETURN NULL;",
    )
    .await;
    (purpose, format!("{schema}.done"))
}

const FLAGS: [&str; 4] = [
    "--failed-lookups-per-minute",
    "1000000",
    "--request-timeout-ms",
    "8000",
];

/// Server processes of `role`, and how many of them sleep in the action.
async fn backends(c: &Client, role: &str) -> (i64, i64) {
    let row = c
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE wait_event = 'PgSleep')
             FROM pg_stat_activity WHERE usename = $1",
            &[&role],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn wait_for<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Waits (bounded) until the server has ended every session of `role`: only then is the fate
/// of their transactions decided.
async fn assert_sessions_end(c: &Client, role: &str) {
    assert!(
        wait_for(Duration::from_secs(15), || async {
            backends(c, role).await.0 == 0
        })
        .await,
        "the killed gateway's sessions end"
    );
}

async fn rows_for(c: &Client, table: &str, subject: &str) -> i64 {
    c.query_one(
        &format!("SELECT count(*) FROM {table} WHERE subject = $1"),
        &[&subject],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_transactions_open_nothing_half_done() {
    let c = connect().await;
    let (role, url) = login_role(&c, "gwkill").await;
    let (purpose, table) = purpose_writing_rows(&c).await;
    let subjects = ["slow1", "slow2", "slow3"];
    let mut tokens = Vec::new();
    for s in subjects {
        tokens.push(issue(&c, &purpose, s).await);
    }
    let mut gw = Gateway::start(&url, &FLAGS);
    let addr = gw.addr;
    let in_flight: Vec<_> = tokens
        .iter()
        .map(|t| {
            let path = format!("/t/{t}");
            std::thread::spawn(move || {
                http::try_post_form(addr, &path, &[("confirm", "yes")]).map(|r| r.status)
            })
        })
        .collect();
    // All three are inside the action: token consumed and row written, not committed.
    assert!(
        wait_for(Duration::from_secs(10), || async {
            backends(&c, &role).await.1 == 3
        })
        .await,
        "three redemptions sleeping in the action: {:?}",
        backends(&c, &role).await
    );
    gw.kill();
    for t in in_flight {
        let answer = t.join().unwrap();
        assert!(
            answer.is_err(),
            "no answer from a killed gateway: {answer:?}"
        );
    }
    // The server notices the lost client once the action returns, and rolls back.
    assert_sessions_end(&c, &role).await;
    for (t, s) in tokens.iter().zip(subjects) {
        assert_eq!(
            peek_status(&c, t, &purpose).await,
            "ok",
            "{s}: not consumed"
        );
        assert_eq!(rows_for(&c, &table, s).await, 0, "{s}: no action row");
    }

    // A new gateway: the retry succeeds once, then says used.
    let gw = Gateway::start(&url, &FLAGS);
    for (t, s) in tokens.iter().zip(subjects) {
        let path = format!("/t/{t}");
        assert_eq!(
            http::post_form(gw.addr, &path, &[("confirm", "yes")]).status,
            200,
            "{s}: the retry redeems"
        );
        assert_eq!(
            http::post_form(gw.addr, &path, &[("confirm", "yes")]).status,
            410,
            "{s}: then it is used"
        );
        assert_eq!(rows_for(&c, &table, s).await, 1, "{s}: one action row");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_under_load_acknowledged_durable_retries_never_twice() {
    let c = connect().await;
    let (role, url) = login_role(&c, "gwkill").await;
    let (purpose, table) = purpose_writing_rows(&c).await;
    let tokens = Arc::new(crash_check::issue_numbered(&c, &purpose, 1000).await);
    let mut gw = Gateway::start(&url, &FLAGS);
    let load = RedeemLoad::start(gw.addr, tokens.clone(), 4);
    let enough = load.wait_for_acks(100, Duration::from_secs(60));
    gw.kill();
    let seen = load.finish();
    assert!(
        enough,
        "the load never reached 100 acknowledged redemptions"
    );
    // Decided by the database alone: wait (bounded) until the killed gateway's sessions ended.
    assert_sessions_end(&c, &role).await;
    let found = crash_check::observe(&c, &purpose, &table, &tokens).await;
    let history: Vec<_> = seen.into_iter().zip(found).collect();
    let r = crash_check::check(&history);
    assert!(r.valid(), "after the kill: {r:?}");
    assert!(r.failed >= 1, "the kill hit requests in flight: {r:?}");

    let gw = Gateway::start(&url, &FLAGS);
    let wrong = crash_check::retry_failed(gw.addr, &tokens, &history);
    assert!(wrong.is_empty(), "retries: {wrong:?}");
    let after = crash_check::observe(&c, &purpose, &table, &tokens).await;
    for (i, ((sent, _), now)) in history.iter().zip(&after).enumerate() {
        if *sent != Sent::NotSent {
            assert!(
                now.consumed && now.effects == 1,
                "#{i} is done exactly once after the retries: {now:?}"
            );
        }
    }
}
