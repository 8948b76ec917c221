//! Only hashes are stored: no issued token appears in any linktoken table or in pg_dump's
//! output, while the hashes do (so the dump really contains the token rows).

use linktoken_integration::*;

#[tokio::test]
async fn tables_and_pg_dump_hold_hashes_never_tokens() {
    let c = connect().await;
    let reset = purpose(&c, "dump_reset", "1 hour", Some(1)).await;
    let unsub = purpose(&c, "dump_unsub", "365 days", None).await;
    let mut tokens = Vec::new();
    for i in 0..10 {
        tokens.push(issue(&c, &reset, &format!("user:{i}")).await);
        tokens.push(issue(&c, &unsub, &format!("list:{i}")).await);
    }
    // Exercise every path that writes: redeem, reject, revoke.
    assert_eq!(redeem_status(&c, &tokens[0], &reset).await, "ok");
    assert_eq!(redeem_status(&c, &tokens[0], &reset).await, "used");
    c.execute("SELECT linktoken.revoke($1)", &[&tokens[2]])
        .await
        .unwrap();

    // (a) every row of every table in the schema, as text
    let tables: Vec<String> = c
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'linktoken' AND c.relkind = 'r'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(tables.len() >= 3, "found tables {tables:?}");
    let mut everything = String::new();
    for t in &tables {
        for row in c
            .query(&format!("SELECT t::text FROM {t} t"), &[])
            .await
            .unwrap()
        {
            everything.push_str(row.get::<_, &str>(0));
            everything.push('\n');
        }
    }
    for t in &tokens {
        assert!(
            !everything.contains(t.as_str()),
            "a table holds an issued token"
        );
        assert!(
            !everything.contains(&t[4..]),
            "a table holds an issued token's body"
        );
    }

    // (b) pg_dump of the whole database
    let cfg = config();
    let host = match &cfg.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    let output = std::process::Command::new("/usr/lib/postgresql/15/bin/pg_dump")
        .args(["--host", &host])
        .args(["--port", &cfg.get_ports()[0].to_string()])
        .args(["--username", cfg.get_user().unwrap_or("postgres")])
        .arg(
            cfg.get_dbname()
                .expect("dbname in LINKTOKEN_TEST_DATABASE_URL"),
        )
        .output()
        .expect("run pg_dump");
    assert!(
        output.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dump = String::from_utf8_lossy(&output.stdout);
    for t in &tokens {
        assert!(
            !dump.contains(t.as_str()),
            "pg_dump output holds an issued token"
        );
        assert!(
            !dump.contains(&t[4..]),
            "pg_dump output holds an issued token's body"
        );
    }
    let hash: String = c
        .query_one(
            "SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')",
            &[&tokens[5]],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        dump.contains(&format!("\\\\x{hash}")),
        "the dump contains the token rows (by hash)"
    );
}
