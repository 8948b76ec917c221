//! Exactly once under real concurrency: many connections redeem one token at the same moment.
//! Half of them call redeem in autocommit mode, the other half inside an explicit READ COMMITTED
//! transaction that keeps its row lock a little while before COMMIT, so the others queue up
//! behind it and must re-check the token once it commits.

use linktoken_integration::*;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_postgres::Client;

/// What one concurrent redeem saw: its status and the action's result, or its error.
type Outcome = Result<(String, Option<String>), String>;

async fn redeem_once(i: usize, client: Client, token: String, purpose: String) -> Outcome {
    let sql = "SELECT status, result::text FROM linktoken.redeem($1, $2)";
    let fail = |what: &str, e: Error| format!("{what}: {}", describe(&e));
    let autocommit = i % 2 != 1;
    if autocommit {
        let row = client
            .query_one(sql, &[&token, &purpose])
            .await
            .map_err(|e| fail("redeem (autocommit)", e))?;
        return Ok((row.get(0), row.get(1)));
    }
    client
        .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await
        .map_err(|e| fail("BEGIN", e))?;
    match client.query_one(sql, &[&token, &purpose]).await {
        Ok(row) => {
            let status: String = row.get(0);
            if status == "ok" {
                // Hold the row lock so that the other redeems wait for this transaction.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            client
                .batch_execute("COMMIT")
                .await
                .map_err(|e| fail("COMMIT", e))?;
            Ok((status, row.get(1)))
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(fail("redeem (in a transaction)", e))
        }
    }
}

/// `n` connections redeem `token` at once; returns each one's outcome.
async fn redeem_race(n: usize, token: &str, purpose: &str) -> Vec<Outcome> {
    let (token, purpose) = (token.to_owned(), purpose.to_owned());
    concurrently(n, |i, client| {
        redeem_once(i, client, token.clone(), purpose.clone())
    })
    .await
}

/// Statuses counted, errors listed.
fn tally(outcomes: &[Outcome]) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut statuses = BTreeMap::new();
    let mut errors = Vec::new();
    for o in outcomes {
        match o {
            Ok((status, _)) => *statuses.entry(status.clone()).or_insert(0) += 1,
            Err(e) => errors.push(e.clone()),
        }
    }
    (statuses, errors)
}

fn expect(ok: usize, used: usize) -> BTreeMap<String, usize> {
    [("ok".to_owned(), ok), ("used".to_owned(), used)]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The token's row and audit trail as the superuser sees them afterwards.
async fn assert_recorded(c: &Client, token: &str, ok: i64, rejected: i64) {
    let row = c
        .query_one(
            "SELECT use_count, consumed_at IS NOT NULL FROM linktoken.tokens
             WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
            &[&token],
        )
        .await
        .expect("the token's row");
    let (use_count, consumed): (i32, bool) = (row.get(0), row.get(1));
    assert_eq!(i64::from(use_count), ok, "use_count after the race");
    assert!(consumed, "the token is marked consumed");
    let events: BTreeMap<String, i64> = c
        .query(
            // The whole log: the events, and the issue from the token's row (linktoken.audit).
            "SELECT event || coalesce('/' || status, ''), count(*) FROM linktoken.audit
             WHERE token_hash = sha256(convert_to($1, 'UTF8')) GROUP BY 1",
            &[&token],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected: BTreeMap<String, i64> = [
        ("issued".to_owned(), 1),
        ("redeemed/ok".to_owned(), ok),
        ("rejected/used".to_owned(), rejected),
    ]
    .into_iter()
    .collect();
    assert_eq!(events, expected, "audit events of the token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_redeems_of_one_token_give_one_ok() {
    let c = connect().await;
    let p = purpose(&c, "race", "1 hour", Some(1)).await;
    let token = issue(&c, &p, "race-subject").await;
    let outcomes = redeem_race(50, &token, &p).await;
    let (statuses, errors) = tally(&outcomes);
    assert_eq!(errors, Vec::<String>::new(), "no redeem may fail");
    assert_eq!(statuses, expect(1, 49), "exactly one ok, 49 used");
    assert_eq!(peek_status(&c, &token, &p).await, "used");
    assert_recorded(&c, &token, 1, 49).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_redeems_of_a_three_use_token_give_three_ok() {
    let c = connect().await;
    let p = purpose(&c, "race3", "1 hour", Some(3)).await;
    let token = issue(&c, &p, "race3-subject").await;
    let outcomes = redeem_race(20, &token, &p).await;
    let (statuses, errors) = tally(&outcomes);
    assert_eq!(errors, Vec::<String>::new(), "no redeem may fail");
    assert_eq!(statuses, expect(3, 17), "exactly three ok, 17 used");
    assert_eq!(peek_status(&c, &token, &p).await, "used");
    assert_recorded(&c, &token, 3, 17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_redeems_run_the_action_exactly_once() {
    let c = connect().await;
    let (p, schema) = purpose_with_action(
        &c,
        "raceact",
        "CREATE TABLE {schema}.effects (subject text NOT NULL, payload jsonb, form jsonb);",
        "INSERT INTO effects VALUES (subject, payload, form);
         RETURN jsonb_build_object('done', subject);",
    )
    .await;
    let token = issue(&c, &p, "act-subject").await;

    let outcomes = redeem_race(50, &token, &p).await;
    let (statuses, errors) = tally(&outcomes);
    assert_eq!(errors, Vec::<String>::new(), "no redeem may fail");
    assert_eq!(statuses, expect(1, 49), "exactly one ok, 49 used");
    let results: Vec<Option<String>> = outcomes
        .iter()
        .flatten()
        .filter(|(s, _)| s == "ok")
        .map(|(_, r)| r.clone())
        .collect();
    assert_eq!(
        results,
        vec![Some(r#"{"done": "act-subject"}"#.to_owned())],
        "the ok redeem returns the action's result"
    );
    let effects: Vec<String> = c
        .query(&format!("SELECT subject FROM {schema}.effects"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        effects,
        vec!["act-subject".to_owned()],
        "the action's side effect happened exactly once"
    );
    assert_recorded(&c, &token, 1, 49).await;

    c.batch_execute(&format!(
        "SELECT linktoken.define_purpose('{p}', '1 hour'); DROP SCHEMA {schema} CASCADE"
    ))
    .await
    .unwrap();
}
