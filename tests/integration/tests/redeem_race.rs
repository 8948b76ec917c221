//! Exactly once under real concurrency: many connections redeem one token at the same moment.

use futures::future::join_all;
use linktoken_integration::*;
use std::sync::Arc;
use tokio::sync::Barrier;

/// `n` connections redeem `token` at once (released together by a barrier); returns each
/// connection's status, or its error.
async fn redeem_concurrently(n: usize, token: &str, purpose: &str) -> Vec<Result<String, String>> {
    let barrier = Arc::new(Barrier::new(n));
    let tasks = (0..n).map(|_| {
        let barrier = barrier.clone();
        let (token, purpose) = (token.to_owned(), purpose.to_owned());
        tokio::spawn(async move {
            let client = connect().await;
            barrier.wait().await;
            client
                .query_one(
                    "SELECT status FROM linktoken.redeem($1, $2)",
                    &[&token, &purpose],
                )
                .await
                .map(|row| row.get::<_, String>(0))
                .map_err(|e| e.to_string())
        })
    });
    join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

fn count(results: &[Result<String, String>], status: &str) -> usize {
    results
        .iter()
        .filter(|r| r.as_deref() == Ok(status))
        .count()
}

fn errors(results: &[Result<String, String>]) -> Vec<&String> {
    results.iter().filter_map(|r| r.as_ref().err()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_redeems_of_one_token_give_one_ok() {
    let c = connect().await;
    let p = purpose(&c, "race", "1 hour", Some(1)).await;
    let token = issue(&c, &p, "race-subject").await;
    let results = redeem_concurrently(50, &token, &p).await;
    assert_eq!(errors(&results), Vec::<&String>::new());
    assert_eq!(count(&results, "ok"), 1, "{results:?}");
    assert_eq!(count(&results, "used"), 49, "{results:?}");
    let use_count: i32 = c
        .query_one(
            "SELECT use_count FROM linktoken.tokens WHERE purpose = $1",
            &[&p],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(use_count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_redeems_of_a_three_use_token_give_three_ok() {
    let c = connect().await;
    let p = purpose(&c, "race3", "1 hour", Some(3)).await;
    let token = issue(&c, &p, "race3-subject").await;
    let results = redeem_concurrently(20, &token, &p).await;
    assert_eq!(errors(&results), Vec::<&String>::new());
    assert_eq!(count(&results, "ok"), 3, "{results:?}");
    assert_eq!(count(&results, "used"), 17, "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_action_runs_exactly_once_under_concurrency() {
    let c = connect().await;
    let schema = format!("it_{}", tag());
    c.batch_execute(&format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.effects (subject text);
         CREATE FUNCTION {schema}.act(subject text, payload jsonb, form jsonb) RETURNS jsonb
         LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_catalog, pg_temp AS $$
         BEGIN INSERT INTO {schema}.effects VALUES (subject); RETURN NULL; END $$;"
    ))
    .await
    .unwrap();
    let p = purpose(&c, "raceact", "1 hour", Some(1)).await;
    let action = format!("{schema}.act(text,jsonb,jsonb)");
    c.execute(
        "SELECT linktoken.define_purpose($1, '1 hour', 1, false, $2::text::regprocedure)",
        &[&p, &action],
    )
    .await
    .unwrap();
    let token = issue(&c, &p, "act-subject").await;
    let results = redeem_concurrently(50, &token, &p).await;
    assert_eq!(errors(&results), Vec::<&String>::new());
    assert_eq!(count(&results, "ok"), 1, "{results:?}");
    let effects: i64 = c
        .query_one(&format!("SELECT count(*) FROM {schema}.effects"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(effects, 1);
    c.batch_execute(&format!(
        "SELECT linktoken.define_purpose('{p}', '1 hour'); DROP SCHEMA {schema} CASCADE"
    ))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reissues_leave_one_outstanding_token() {
    let c = connect().await;
    let p = format!("reissue_{}", tag());
    c.execute("SELECT linktoken.define_purpose($1, '1 hour')", &[&p])
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(20));
    let tasks = (0..20).map(|_| {
        let (barrier, p) = (barrier.clone(), p.clone());
        tokio::spawn(async move {
            let client = connect().await;
            barrier.wait().await;
            issue(&client, &p, "same-subject").await
        })
    });
    let tokens: Vec<String> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let mut ok = 0;
    for t in &tokens {
        if peek_status(&c, t, &p).await == "ok" {
            ok += 1;
        }
    }
    assert_eq!(
        ok, 1,
        "exactly one of 20 concurrently issued tokens stays valid"
    );
}
