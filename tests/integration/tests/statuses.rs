//! Every status over a real connection: expired, revoked, another purpose's token, and malformed
//! input, which is `invalid` rather than an error.

use linktoken_integration::*;
use std::time::Duration;

#[tokio::test]
async fn expired_tokens_are_never_ok() {
    let c = connect().await;
    let p = purpose(&c, "exp", "1 hour", Some(1)).await;
    let token: String = c
        .query_one(
            "SELECT linktoken.issue($1, 'exp-subject', ttl => $2::text::interval)",
            &[&p, &"00:00:00.3"],
        )
        .await
        .unwrap()
        .get(0);
    assert_token_shape(&token);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..2 {
        assert_eq!(peek_status(&c, &token, &p).await, "expired");
        assert_eq!(redeem_status(&c, &token, &p).await, "expired");
    }
    let row = c
        .query_one(
            "SELECT subject, payload::text, uses_left FROM linktoken.peek($1, $2)",
            &[&token, &p],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, Option<String>>(0),
            row.get::<_, Option<String>>(1),
            row.get::<_, Option<i32>>(2)
        ),
        (None, None, None),
        "an expired token reveals nothing"
    );
    let use_count: i32 = c
        .query_one(
            "SELECT use_count FROM linktoken.tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
            &[&token],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(use_count, 0, "redeeming an expired token does not use it");
}

#[tokio::test]
async fn revoked_tokens_are_revoked() {
    let c = connect().await;
    let p = purpose(&c, "rev", "1 hour", Some(1)).await;
    let token = issue(&c, &p, "rev-subject").await;
    let keep = issue(&c, &p, "rev-other").await;
    let revoke = "SELECT linktoken.revoke($1)";
    assert!(c
        .query_one(revoke, &[&token])
        .await
        .unwrap()
        .get::<_, bool>(0));
    assert!(
        !c.query_one(revoke, &[&token])
            .await
            .unwrap()
            .get::<_, bool>(0),
        "revoking twice reports nothing revoked"
    );
    assert_eq!(peek_status(&c, &token, &p).await, "revoked");
    assert_eq!(redeem_status(&c, &token, &p).await, "revoked");
    assert_eq!(peek_status(&c, &keep, &p).await, "ok", "other tokens stay");

    // revoke_subject: every outstanding token of the subject, of this purpose.
    let s = format!("rev-subject-{}", tag());
    let a = issue(&c, &p, &s).await;
    let b = issue(&c, &p, &s).await;
    let n: i64 = c
        .query_one("SELECT linktoken.revoke_subject($1, $2)", &[&s, &p])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    assert_eq!(peek_status(&c, &a, &p).await, "revoked");
    assert_eq!(redeem_status(&c, &b, &p).await, "revoked");
}

#[tokio::test]
async fn a_token_of_another_purpose_is_invalid() {
    let c = connect().await;
    let p = purpose(&c, "pa", "1 hour", Some(1)).await;
    let q = purpose(&c, "pb", "1 hour", Some(1)).await;
    let token = issue(&c, &p, "purpose-subject").await;
    assert_eq!(peek_status(&c, &token, &q).await, "invalid");
    assert_eq!(redeem_status(&c, &token, &q).await, "invalid");
    assert_eq!(
        peek_status(&c, &token, &p).await,
        "ok",
        "redeeming under another purpose did not use the token"
    );
    assert_eq!(redeem_status(&c, &token, &p).await, "ok");
}

#[tokio::test]
async fn a_rolled_back_redeem_does_not_use_the_token() {
    let c = connect().await;
    let p = purpose(&c, "rb", "1 hour", Some(1)).await;
    let token = issue(&c, &p, "rb-subject").await;
    c.batch_execute("BEGIN").await.unwrap();
    assert_eq!(redeem_status(&c, &token, &p).await, "ok");
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(peek_status(&c, &token, &p).await, "ok");
    assert_eq!(redeem_status(&c, &token, &p).await, "ok");
    assert_eq!(redeem_status(&c, &token, &p).await, "used");
}

#[tokio::test]
async fn malformed_tokens_are_invalid_without_error() {
    let c = connect().await;
    let p = purpose(&c, "mal", "1 hour", Some(1)).await;
    let good = issue(&c, &p, "mal-subject").await;
    let body = &good[4..];

    // One character of the body changed (the checksum catches it) ...
    let mut changed = good.clone().into_bytes();
    changed[20] = if changed[20] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(changed).unwrap();
    // ... and a well-formed token with a valid checksum that was never issued.
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).unwrap();
    let never_issued = linktoken_core::token::encode(&secret);
    assert!(linktoken_core::token::validate(&never_issued).is_ok());

    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("1 MB of x", "x".repeat(1 << 20)),
        ("ltk_ + 1 MB", format!("ltk_{}", "A".repeat(1 << 20))),
        ("control character", format!("ltk_{}\u{1}", &body[..47])),
        ("only control characters", "\u{1}".repeat(52)),
        ("non-ASCII", format!("ltk_{}é", &body[..46])),
        ("non-ASCII throughout", format!("ltk_{}", "ü".repeat(24))),
        ("emoji", format!("ltk_{}🔑", &body[..44])),
        ("wrong prefix", format!("xtk_{body}")),
        ("upper-case prefix", format!("LTK_{body}")),
        ("no prefix", body.to_owned()),
        ("truncated", good[..good.len() - 1].to_owned()),
        ("one extra character", format!("{good}A")),
        ("trailing space", format!("{good} ")),
        ("standard base64 '+'", format!("ltk_+{}", &body[1..])),
        ("standard base64 '/'", format!("ltk_{}/", &body[..47])),
        ("base64 padding", format!("{good}==")),
        ("one character changed", changed),
        ("never issued", never_issued),
    ];
    for (what, bad) in &cases {
        assert_ne!(bad, &good);
        match try_peek_status(&c, bad, &p).await {
            Ok(s) => assert_eq!(s, "invalid", "peek of {what}"),
            Err(e) => panic!("peek of {what} failed: {}", describe(&e)),
        }
        match try_redeem_status(&c, bad, &p).await {
            Ok(s) => assert_eq!(s, "invalid", "redeem of {what}"),
            Err(e) => panic!("redeem of {what} failed: {}", describe(&e)),
        }
        let revoked: bool = c
            .query_one("SELECT linktoken.revoke($1)", &[bad])
            .await
            .unwrap_or_else(|e| panic!("revoke of {what} failed: {}", describe(&e)))
            .get(0);
        assert!(!revoked, "revoke of {what}");
    }
    // NULL is no token either.
    let none: Option<&str> = None;
    let row = c
        .query_one(
            "SELECT (SELECT status FROM linktoken.peek($1, $2)), (SELECT status FROM linktoken.redeem($1, $2))",
            &[&none, &p],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("invalid".to_owned(), "invalid".to_owned()),
        "NULL token"
    );
    assert_eq!(
        peek_status(&c, &good, &p).await,
        "ok",
        "no malformed input touched the real token"
    );
}
