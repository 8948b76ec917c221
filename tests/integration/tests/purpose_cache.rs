//! Purposes are cached in each backend (extension 0.5.0). A change to a purpose, by
//! define_purpose or by a direct write to linktoken.purposes, reaches every session from its
//! next transaction on; a rolled-back change reaches none.

use linktoken_integration::*;

/// The ttl of the token a session issues now (as its expiry minus its issue time, in seconds).
async fn issued_ttl(c: &tokio_postgres::Client, purpose: &str) -> f64 {
    let token = issue(c, purpose, "cache:1").await;
    c.query_one(
        "SELECT EXTRACT(epoch FROM expires_at - created_at)::float8 FROM linktoken.tokens
         WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
        &[&token],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn purpose_changes_reach_every_session() {
    let a = connect().await;
    let b = connect().await;
    let p = purpose(&a, "cache", "1 hour", Some(1)).await;
    // Session a has the purpose in its cache now.
    assert_eq!(issued_ttl(&a, &p).await, 3600.0);

    // Positive control: in session b the change is visible at once (it is b's own write).
    b.execute(
        "SELECT linktoken.define_purpose($1, '2 hours', 1, false)",
        &[&p],
    )
    .await
    .unwrap();
    assert_eq!(issued_ttl(&b, &p).await, 7200.0);
    // ... and session a, whose cache held the old purpose, sees it in its next transaction.
    assert_eq!(
        issued_ttl(&a, &p).await,
        7200.0,
        "define_purpose from another session"
    );

    // A direct write to the table (by its owner) empties the caches too.
    b.execute(
        "UPDATE linktoken.purposes SET ttl = interval '3 hours' WHERE name = $1",
        &[&p],
    )
    .await
    .unwrap();
    assert_eq!(
        issued_ttl(&a, &p).await,
        10800.0,
        "UPDATE linktoken.purposes"
    );

    // A change that is rolled back reaches nobody, not even the session that made it.
    a.batch_execute("BEGIN").await.unwrap();
    a.execute(
        "SELECT linktoken.define_purpose($1, '4 hours', 1, false)",
        &[&p],
    )
    .await
    .unwrap();
    assert_eq!(
        issued_ttl(&a, &p).await,
        14400.0,
        "inside its own transaction"
    );
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(issued_ttl(&a, &p).await, 10800.0, "after its rollback");
    assert_eq!(issued_ttl(&b, &p).await, 10800.0, "in the other session");
}
