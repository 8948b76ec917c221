//! Login roles made members of linktoken_gateway / linktoken_issuer get exactly their functions.

use linktoken_integration::*;
use tokio_postgres::Client;

async fn denied(client: &Client, sql: &str) {
    let err = client.batch_execute(sql).await.expect_err(sql);
    assert_eq!(sqlstate(&err), "42501", "{sql}: {err}");
}

#[tokio::test]
async fn gateway_and_issuer_roles_are_least_privilege() {
    let admin = connect().await;
    let t = tag();
    let (gw, web, nobody) = (
        format!("it_gw_{t}"),
        format!("it_web_{t}"),
        format!("it_nobody_{t}"),
    );
    admin
        .batch_execute(&format!(
            "CREATE ROLE {gw} LOGIN IN ROLE linktoken_gateway;
             CREATE ROLE {web} LOGIN IN ROLE linktoken_issuer;
             CREATE ROLE {nobody} LOGIN;"
        ))
        .await
        .unwrap();
    let p = purpose(&admin, "priv", "1 hour", Some(1)).await;

    // The application's role: issue, peek, revoke; no redeem, no tables.
    let app = connect_as(&web).await;
    let token = issue(&app, &p, "priv-subject").await;
    assert_eq!(peek_status(&app, &token, &p).await, "ok");
    let other = issue(&app, &p, "priv-other").await;
    let revoked: bool = app
        .query_one("SELECT linktoken.revoke($1)", &[&other])
        .await
        .unwrap()
        .get(0);
    assert!(revoked);
    app.query_one("SELECT linktoken.revoke_subject('nobody-here')", &[])
        .await
        .unwrap();
    let err = app
        .query_one("SELECT status FROM linktoken.redeem($1, $2)", &[&token, &p])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    for sql in [
        "SELECT * FROM linktoken.tokens",
        "SELECT * FROM linktoken.events",
        "SELECT * FROM linktoken.purposes",
        "SELECT linktoken.purge()",
        "SELECT linktoken.define_purpose('it_evil', '1 year')",
    ] {
        denied(&app, sql).await;
    }

    // The gateway's role: peek and redeem; cannot issue, revoke or read a hash.
    let gateway = connect_as(&gw).await;
    assert_eq!(peek_status(&gateway, &token, &p).await, "ok");
    for sql in [
        &format!("SELECT linktoken.issue('{p}', 'x')") as &str,
        "SELECT linktoken.revoke_subject('priv-subject')",
        "SELECT token_hash FROM linktoken.tokens",
        "SELECT * FROM linktoken.events",
        "UPDATE linktoken.tokens SET expires_at = now() + interval '10 years'",
        "SELECT linktoken.purge()",
        "SELECT linktoken.define_purpose('it_evil', '1 year')",
    ] {
        denied(&gateway, sql).await;
    }
    let err = gateway
        .query_one("SELECT linktoken.revoke($1)", &[&token])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    assert_eq!(redeem_status(&gateway, &token, &p).await, "ok");

    // A role without grants: nothing.
    let none = connect_as(&nobody).await;
    for sql in [
        &format!("SELECT linktoken.peek('x', '{p}')") as &str,
        &format!("SELECT linktoken.issue('{p}', 'x')"),
        &format!("SELECT linktoken.redeem('x', '{p}')"),
    ] {
        denied(&none, sql).await;
    }

    drop((app, gateway, none));
    admin
        .batch_execute(&format!(
            "DROP ROLE {gw}; DROP ROLE {web}; DROP ROLE {nobody};"
        ))
        .await
        .unwrap();
}
