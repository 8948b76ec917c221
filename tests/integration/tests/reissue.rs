//! revoke_previous: issuing a new token for a subject revokes the subject's outstanding tokens
//! of that purpose, also when many issues for one subject race.

use linktoken_integration::*;
use std::time::Duration;
use tokio_postgres::Client;

#[tokio::test]
async fn reissue_revokes_the_previous_token() {
    let c = connect().await;
    let p = format!("reissue_{}", tag());
    // revoke_previous defaults to true.
    c.execute("SELECT linktoken.define_purpose($1, '1 hour')", &[&p])
        .await
        .unwrap();
    let first = issue(&c, &p, "reissue-subject").await;
    let other = issue(&c, &p, "reissue-other").await;
    let second = issue(&c, &p, "reissue-subject").await;
    assert_eq!(peek_status(&c, &first, &p).await, "revoked");
    assert_eq!(redeem_status(&c, &first, &p).await, "revoked");
    assert_eq!(peek_status(&c, &second, &p).await, "ok");
    assert_eq!(
        peek_status(&c, &other, &p).await,
        "ok",
        "another subject's token stays"
    );
    assert_eq!(redeem_status(&c, &second, &p).await, "ok");

    // Without revoke_previous both stay usable.
    let keep = purpose(&c, "keep", "1 hour", Some(1)).await;
    let a = issue(&c, &keep, "keep-subject").await;
    let b = issue(&c, &keep, "keep-subject").await;
    assert_eq!(peek_status(&c, &a, &keep).await, "ok");
    assert_eq!(peek_status(&c, &b, &keep).await, "ok");
}

/// Issues in autocommit mode (even i) or in an explicit transaction of the given isolation
/// level that waits a little before COMMIT (odd i), so that other issues queue up behind it.
async fn issue_once(
    i: usize,
    client: Client,
    p: String,
    isolation: &str,
) -> Result<String, String> {
    let sql = "SELECT linktoken.issue($1, 'race-subject')";
    let autocommit = i % 2 != 1;
    if autocommit {
        return client
            .query_one(sql, &[&p])
            .await
            .map(|r| r.get(0))
            .map_err(|e| describe(&e));
    }
    client
        .batch_execute(&format!("BEGIN ISOLATION LEVEL {isolation}"))
        .await
        .map_err(|e| describe(&e))?;
    let token: String = match client.query_one(sql, &[&p]).await {
        Ok(r) => r.get(0),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(describe(&e));
        }
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| format!("COMMIT: {}", describe(&e)))?;
    Ok(token)
}

/// 20 connections issue a token for one subject at once; afterwards exactly one of the issued
/// tokens may be outstanding. Under READ COMMITTED no issue may fail; under the stricter levels
/// PostgreSQL may abort some with 40001 (the caller retries), but none may leave a second
/// outstanding token behind.
async fn concurrent_issues(isolation: &'static str) {
    let c = connect().await;
    let p = format!("reissue_race_{}", tag());
    c.execute("SELECT linktoken.define_purpose($1, '1 hour')", &[&p])
        .await
        .unwrap();
    let results = concurrently(20, |i, client| issue_once(i, client, p.clone(), isolation)).await;
    let errors: Vec<&String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|e| isolation == "READ COMMITTED" || !e.starts_with("40001:"))
        .collect();
    assert_eq!(errors, Vec::<&String>::new(), "no issue may fail");
    let tokens: Vec<&String> = results.iter().flatten().collect();
    assert!(!tokens.is_empty());
    let mut statuses = Vec::new();
    for t in &tokens {
        assert_token_shape(t);
        statuses.push(peek_status(&c, t, &p).await);
    }
    let ok = statuses.iter().filter(|s| *s == "ok").count();
    let revoked = statuses.iter().filter(|s| *s == "revoked").count();
    assert_eq!(
        (ok, revoked),
        (1, tokens.len() - 1),
        "exactly one of {} concurrently issued tokens stays outstanding ({isolation}): {statuses:?}",
        tokens.len()
    );
    let outstanding: i64 = c
        .query_one(
            "SELECT count(*) FROM linktoken.tokens WHERE purpose = $1 AND revoked_at IS NULL",
            &[&p],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(outstanding, 1, "rows not revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_issues_leave_one_outstanding_token() {
    concurrent_issues("READ COMMITTED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_issues_in_serializable_transactions_leave_one_outstanding_token() {
    concurrent_issues("SERIALIZABLE").await;
}

/// In a REPEATABLE READ transaction the snapshot predates issue's lock, so revoke_previous
/// could not see a concurrently issued token: issue refuses with 0A000 there (and says what to
/// do), and the autocommit issues still leave exactly one token outstanding.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeatable_read_issues_are_refused_and_one_token_stays_outstanding() {
    let c = connect().await;
    let p = format!("reissue_rr_{}", tag());
    c.execute("SELECT linktoken.define_purpose($1, '1 hour')", &[&p])
        .await
        .unwrap();
    let results = concurrently(20, |i, client| {
        issue_once(i, client, p.clone(), "REPEATABLE READ")
    })
    .await;
    for (i, r) in results.iter().enumerate() {
        if i % 2 == 1 {
            let e = r
                .as_ref()
                .expect_err("an issue inside REPEATABLE READ is refused");
            assert!(
                e.starts_with("0A000:") && e.contains("REPEATABLE READ"),
                "{e}"
            );
        } else {
            assert!(r.is_ok(), "autocommit issues succeed: {r:?}");
        }
    }
    let outstanding: i64 = c
        .query_one(
            "SELECT count(*) FROM linktoken.tokens WHERE purpose = $1 AND revoked_at IS NULL",
            &[&p],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(outstanding, 1);
}

/// min_interval as an application sees it: SQLSTATE 53400 with the seconds to wait in DETAIL,
/// and no second token.
#[tokio::test]
async fn min_interval_throttles_with_53400_and_the_wait_in_detail() {
    let c = connect().await;
    let p = format!("throttle_{}", tag());
    c.execute(
        "SELECT linktoken.define_purpose($1, '1 hour', min_interval => interval '90 seconds')",
        &[&p],
    )
    .await
    .unwrap();
    let first = issue(&c, &p, "user:1").await;
    let err = c
        .query_one("SELECT linktoken.issue($1, 'user:1')", &[&p])
        .await
        .unwrap_err();
    let db = err.as_db_error().expect("a database error");
    assert_eq!(db.code().code(), "53400");
    let wait: i32 = db.detail().expect("DETAIL holds the wait").parse().unwrap();
    assert!((1..=90).contains(&wait), "wait {wait}");
    assert_eq!(peek_status(&c, &first, &p).await, "ok");
    let rows: i64 = c
        .query_one(
            "SELECT count(*) FROM linktoken.tokens WHERE purpose = $1",
            &[&p],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
}
