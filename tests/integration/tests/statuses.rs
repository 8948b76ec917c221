//! Every status over a real connection, and malformed input as `invalid` rather than an error.

use linktoken_integration::*;

#[tokio::test]
async fn expired_tokens_are_never_ok() {
    let c = connect().await;
    let p = purpose(&c, "exp", "1 hour", Some(1)).await;
    let token: String = c
        .query_one(
            "SELECT linktoken.issue($1, 's', ttl => interval '300 milliseconds')",
            &[&p],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(peek_status(&c, &token, &p).await, "ok");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(peek_status(&c, &token, &p).await, "expired");
    assert_eq!(redeem_status(&c, &token, &p).await, "expired");
    assert_eq!(peek_status(&c, &token, &p).await, "expired");
}

#[tokio::test]
async fn revoked_other_purpose_and_reissued() {
    let c = connect().await;
    let p = purpose(&c, "st", "1 hour", Some(1)).await;
    let q = purpose(&c, "st_other", "1 hour", Some(1)).await;
    let token = issue(&c, &p, "s").await;
    assert_eq!(peek_status(&c, &token, &q).await, "invalid");
    assert_eq!(redeem_status(&c, &token, &q).await, "invalid");
    assert_eq!(peek_status(&c, &token, &p).await, "ok");
    c.execute("SELECT linktoken.revoke($1)", &[&token])
        .await
        .unwrap();
    assert_eq!(redeem_status(&c, &token, &p).await, "revoked");

    let reissue = format!("rp_{}", tag());
    c.execute("SELECT linktoken.define_purpose($1, '1 hour')", &[&reissue])
        .await
        .unwrap();
    let first = issue(&c, &reissue, "u").await;
    let second = issue(&c, &reissue, "u").await;
    assert_eq!(peek_status(&c, &first, &reissue).await, "revoked");
    assert_eq!(peek_status(&c, &second, &reissue).await, "ok");
}

#[tokio::test]
async fn malformed_tokens_are_invalid_without_error() {
    let c = connect().await;
    let p = purpose(&c, "mal", "1 hour", Some(1)).await;
    let good = issue(&c, &p, "s").await;
    let mut changed = good.clone().into_bytes();
    changed[20] = if changed[20] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(changed).unwrap();
    let cases = [
        String::new(),
        "x".repeat(1 << 20),
        format!("ltk_{}", "\u{1}".repeat(48)),
        format!("ltk_{}", "ü".repeat(48)),
        format!("xtk_{}", &good[4..]),
        good[..good.len() - 1].to_owned(),
        changed,
    ];
    for bad in &cases {
        assert_eq!(
            peek_status(&c, bad, &p).await,
            "invalid",
            "peek {:?}",
            &bad[..bad.len().min(12)]
        );
        assert_eq!(
            redeem_status(&c, bad, &p).await,
            "invalid",
            "redeem {:?}",
            &bad[..bad.len().min(12)]
        );
    }
    assert_eq!(
        peek_status(&c, &good, &p).await,
        "ok",
        "no malformed input touched the real token"
    );
}
