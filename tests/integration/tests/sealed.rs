//! Sealed tokens over real connections: exactly once under 50 concurrent redeems through the
//! spent list, nothing written for unlimited purposes, and the gateway serving them.

use linktoken_integration::gateway::{self, Gateway};
use linktoken_integration::http;
use linktoken_integration::*;

async fn seal(c: &tokio_postgres::Client, purpose: &str, subject: &str) -> String {
    c.query_one("SELECT linktoken.seal($1, $2)", &[&purpose, &subject])
        .await
        .expect("seal")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_redeems_of_a_sealed_token_give_one_ok() {
    let c = connect().await;
    let p = purpose(&c, "sealrace", "1 hour", Some(1)).await;
    let token = seal(&c, &p, "user:1").await;
    assert!(token.starts_with("lts_"));
    let results = concurrently(50, |_, client| {
        let (token, p) = (token.clone(), p.clone());
        async move {
            client
                .query_one("SELECT status FROM linktoken.redeem($1, $2)", &[&token, &p])
                .await
                .map(|r| r.get::<_, String>(0))
                .map_err(|e| describe(&e))
        }
    })
    .await;
    let ok = results.iter().filter(|r| r.as_deref() == Ok("ok")).count();
    let used = results
        .iter()
        .filter(|r| r.as_deref() == Ok("used"))
        .count();
    assert_eq!((ok, used), (1, 49), "{results:?}");
    let uses: i32 = c
        .query_one(
            "SELECT uses FROM linktoken.spent WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
            &[&token],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(uses, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlimited_sealed_tokens_write_nothing_and_work_through_the_gateway() {
    let c = connect().await;
    let p = purpose(&c, "sealunsub", "365 days", None).await;
    c.execute(
        r#"SELECT linktoken.set_page($1, '{"title": "Unsubscribe", "one_click": true}')"#,
        &[&p],
    )
    .await
    .unwrap();
    let token = seal(&c, &p, "list:1").await;
    let (_, url) = gateway::login_role(&c, "sealgw").await;
    let gw = Gateway::start(&url, &[]);
    let path = format!("/t/{token}");
    let page = http::get(gw.addr, &path);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Unsubscribe"));
    for _ in 0..2 {
        let r = http::request(
            gw.addr,
            "POST",
            &path,
            &["Content-Type: application/x-www-form-urlencoded"],
            b"List-Unsubscribe=One-Click",
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let spent: i64 = c
        .query_one(
            "SELECT count(*) FROM linktoken.spent WHERE purpose = $1",
            &[&p],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        spent, 0,
        "unlimited sealed tokens leave no spent-list entry"
    );
    // A sealed token with one flipped character is a 404, not an error.
    let mut bytes = token.into_bytes();
    bytes[30] = if bytes[30] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(bytes).unwrap();
    assert_eq!(http::get(gw.addr, &format!("/t/{forged}")).status, 404);
    assert!(
        !gw.log().join("\n").contains(&forged[4..]),
        "no sealed token in the gateway log"
    );
}
