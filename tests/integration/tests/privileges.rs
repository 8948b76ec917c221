//! Login roles made members of linktoken_gateway / linktoken_issuer get exactly their functions
//! and never the tables; a role without grants gets nothing at all.

use linktoken_integration::*;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

/// The login roles of one test run; all dropped at the end, whatever happened.
#[derive(Clone)]
struct Roles {
    gateway: String,
    issuer: String,
    nobody: String,
    /// No grants either, except USAGE on the schema: its calls reach the functions' own ACLs.
    usage_only: String,
    password: String,
}

impl Roles {
    fn all(&self) -> String {
        [&self.gateway, &self.issuer, &self.nobody, &self.usage_only]
            .map(String::as_str)
            .join(", ")
    }
}

async fn login(roles: &Roles, user: &str) -> Client {
    let mut config = config();
    config.user(user).password(roles.password.as_str());
    connect_with(&config).await
}

async fn denied(client: &Client, what: &str, sql: &str, params: &[&(dyn ToSql + Sync)]) {
    let result = client.query(sql, params).await.map(|rows| rows.len());
    assert_denied(what, result);
}

/// Every function of the schema, called with NULL arguments: (signature, SQL).
async fn every_function(admin: &Client) -> Vec<(String, String)> {
    let calls: Vec<(String, String)> = admin
        .query(
            "SELECT p.oid::regprocedure::text,
                    format('SELECT %I.%I(%s)', n.nspname, p.proname,
                           coalesce(string_agg(format('NULL::%s', format_type(a.t, NULL)), ', '
                                               ORDER BY a.ord) FILTER (WHERE a.t IS NOT NULL),
                                    ''))
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             LEFT JOIN LATERAL unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, ord) ON true
             WHERE n.nspname = 'linktoken'
             GROUP BY p.oid, n.nspname, p.proname
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for f in [
        "define_purpose",
        "issue",
        "peek",
        "redeem",
        "revoke",
        "revoke_subject",
        "purge",
    ] {
        assert!(
            calls
                .iter()
                .any(|(sig, _)| sig.starts_with(&format!("linktoken.{f}("))),
            "linktoken.{f} missing from {calls:?}"
        );
    }
    calls
}

const TABLE_ACCESS: [&str; 8] = [
    "SELECT * FROM linktoken.tokens",
    "SELECT token_hash FROM linktoken.tokens",
    "SELECT * FROM linktoken.events",
    "SELECT * FROM linktoken.purposes",
    "UPDATE linktoken.tokens SET expires_at = now() + interval '10 years'",
    "DELETE FROM linktoken.tokens",
    "INSERT INTO linktoken.events (event) VALUES ('issued')",
    "UPDATE linktoken.purposes SET ttl = interval '10 years'",
];

async fn tables_are_out_of_reach(client: &Client, who: &str) {
    for sql in TABLE_ACCESS {
        denied(client, &format!("{who}: {sql}"), sql, &[]).await;
    }
}

async fn check(roles: Roles) {
    let admin = connect().await;
    let p = purpose(&admin, "priv", "1 hour", Some(1)).await;
    let subject = format!("priv-subject-{}", tag());
    let evil = format!("evil_{}", tag());

    // The application's role: issue, peek, revoke, revoke_subject; no redeem, no tables.
    let app = login(&roles, &roles.issuer).await;
    let token = issue(&app, &p, &subject).await;
    assert_eq!(peek_status(&app, &token, &p).await, "ok");
    let other = issue(&app, &p, &format!("{subject}-other")).await;
    let revoked: bool = app
        .query_one("SELECT linktoken.revoke($1)", &[&other])
        .await
        .unwrap()
        .get(0);
    assert!(revoked, "issuer: revoke");
    assert_eq!(peek_status(&app, &other, &p).await, "revoked");
    let third = issue(&app, &p, &format!("{subject}-third")).await;
    let n: i64 = app
        .query_one(
            "SELECT linktoken.revoke_subject($1, $2)",
            &[&format!("{subject}-third"), &p],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "issuer: revoke_subject");
    assert_eq!(peek_status(&app, &third, &p).await, "revoked");
    let redeem = app
        .query("SELECT * FROM linktoken.redeem($1, $2)", &[&token, &p])
        .await
        .map(|rows| rows.len());
    assert_denied("issuer: redeem", redeem);
    denied(
        &app,
        "issuer: define_purpose",
        "SELECT linktoken.define_purpose($1, '1 year')",
        &[&evil],
    )
    .await;
    denied(&app, "issuer: purge", "SELECT linktoken.purge()", &[]).await;
    tables_are_out_of_reach(&app, "issuer").await;
    assert_eq!(
        peek_status(&admin, &token, &p).await,
        "ok",
        "the issuer's failed redeem did not use the token"
    );

    // The gateway's role: peek and redeem; cannot issue, revoke or read a hash.
    let gateway = login(&roles, &roles.gateway).await;
    assert_eq!(peek_status(&gateway, &token, &p).await, "ok");
    denied(
        &gateway,
        "gateway: issue",
        "SELECT linktoken.issue($1, $2)",
        &[&p, &subject],
    )
    .await;
    denied(
        &gateway,
        "gateway: revoke",
        "SELECT linktoken.revoke($1)",
        &[&token],
    )
    .await;
    denied(
        &gateway,
        "gateway: revoke_subject",
        "SELECT linktoken.revoke_subject($1)",
        &[&subject],
    )
    .await;
    denied(
        &gateway,
        "gateway: define_purpose",
        "SELECT linktoken.define_purpose($1, '1 year')",
        &[&evil],
    )
    .await;
    denied(&gateway, "gateway: purge", "SELECT linktoken.purge()", &[]).await;
    tables_are_out_of_reach(&gateway, "gateway").await;
    assert_eq!(redeem_status(&gateway, &token, &p).await, "ok");
    assert_eq!(redeem_status(&gateway, &token, &p).await, "used");
    assert_eq!(peek_status(&app, &token, &p).await, "used");

    // Roles without grants: every function of the schema is denied, and every table.
    let functions = every_function(&admin).await;
    for who in [&roles.nobody, &roles.usage_only] {
        let client = login(&roles, who).await;
        for (signature, sql) in &functions {
            denied(&client, &format!("{who}: {signature}"), sql, &[]).await;
        }
        tables_are_out_of_reach(&client, who).await;
    }
    let superuser_calls = admin
        .query("SELECT linktoken.define_purpose($1, '1 hour')", &[&evil])
        .await;
    assert!(
        superuser_calls.is_ok(),
        "the owner may define purposes (the denials above are about privileges)"
    );
    let none: i64 = admin
        .query_one(
            "SELECT count(*) FROM linktoken.purposes WHERE name = $1 AND ttl = '1 hour'",
            &[&evil],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(none, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_issuer_and_ungranted_roles_are_least_privilege() {
    let t = tag();
    let roles = Roles {
        gateway: format!("it_gw_{t}"),
        issuer: format!("it_issuer_{t}"),
        nobody: format!("it_nobody_{t}"),
        usage_only: format!("it_usage_{t}"),
        password: format!("pw-{}", tag()),
    };
    let admin = connect().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {gw} LOGIN PASSWORD '{pw}' IN ROLE linktoken_gateway;
             CREATE ROLE {issuer} LOGIN PASSWORD '{pw}' IN ROLE linktoken_issuer;
             CREATE ROLE {nobody} LOGIN PASSWORD '{pw}';
             CREATE ROLE {usage} LOGIN PASSWORD '{pw}';
             GRANT USAGE ON SCHEMA linktoken TO {usage};",
            gw = roles.gateway,
            issuer = roles.issuer,
            nobody = roles.nobody,
            usage = roles.usage_only,
            pw = roles.password,
        ))
        .await
        .unwrap();

    let outcome = tokio::spawn(check(roles.clone())).await;

    // Best effort, then report the test's own failure if it had one.
    let all = roles.all();
    let dropped = admin
        .batch_execute(&format!("DROP OWNED BY {all}; DROP ROLE {all}"))
        .await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    dropped.unwrap_or_else(|e| panic!("dropping the test roles: {}", describe(&e)));
}
