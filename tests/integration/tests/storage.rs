//! Only hashes are stored: no issued token (nor its body, nor its bytes as hex, nor its decoded
//! secret) appears in any row of any linktoken table or in pg_dump's output, while the tokens'
//! SHA-256 hashes do (so the scan and the dump really contain the token rows).

use linktoken_integration::*;
use tokio_postgres::Client;

/// A token and the strings that must never be found anywhere.
struct Issued {
    token: String,
    /// The token's SHA-256 as hex: what token_hash holds.
    hash_hex: String,
    /// Forms of the token that would betray it if stored.
    forbidden: Vec<(&'static str, String)>,
}

async fn describe_token(c: &Client, token: String) -> Issued {
    let row = c
        .query_one(
            "SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex'),
                    encode(convert_to($1, 'UTF8'), 'hex'),
                    encode(decode(translate(substr($1, 5), '-_', '+/'), 'base64'), 'hex')",
            &[&token],
        )
        .await
        .unwrap();
    let (hash_hex, token_hex, raw_hex): (String, String, String) =
        (row.get(0), row.get(1), row.get(2));
    assert_eq!(raw_hex.len(), 72, "32 secret bytes and a 4-byte checksum");
    let forbidden = vec![
        ("the token", token.clone()),
        ("the token's body", token[4..].to_owned()),
        ("the token as hex", token_hex.clone()),
        ("the token as upper-case hex", token_hex.to_uppercase()),
        ("the token's secret as hex", raw_hex[..64].to_owned()),
        (
            "the token's secret as upper-case hex",
            raw_hex[..64].to_uppercase(),
        ),
    ];
    Issued {
        token,
        hash_hex,
        forbidden,
    }
}

fn assert_holds_no_token(what: &str, text: &str, issued: &[Issued]) {
    for i in issued {
        for (form, s) in &i.forbidden {
            // Never print the haystack or the token: the test output would hold a token.
            assert!(!text.contains(s.as_str()), "{what} holds {form}");
        }
    }
}

#[tokio::test]
async fn tables_and_pg_dump_hold_hashes_never_tokens() {
    let c = connect().await;
    let reset = purpose(&c, "dump_reset", "1 hour", Some(1)).await;
    let unsub = purpose(&c, "dump_unsub", "365 days", None).await;
    let verify = purpose(&c, "dump_verify", "2 days", Some(3)).await;
    let mut issued = Vec::new();
    for i in 0..7i32 {
        for p in [&reset, &unsub, &verify] {
            let token: String = c
                .query_one(
                    "SELECT linktoken.issue($1, $2, jsonb_build_object('n', $3::int))",
                    &[p, &format!("dump-user:{i}"), &i],
                )
                .await
                .unwrap()
                .get(0);
            assert_token_shape(&token);
            issued.push(describe_token(&c, token).await);
        }
    }
    // Every path that writes: redeem (ok and rejected), multi-use redeem, revoke, revoke_subject.
    let t = |i: usize| issued[i].token.clone();
    assert_eq!(redeem_status(&c, &t(0), &reset).await, "ok");
    assert_eq!(redeem_status(&c, &t(0), &reset).await, "used");
    assert_eq!(redeem_status(&c, &t(1), &unsub).await, "ok");
    assert_eq!(redeem_status(&c, &t(2), &verify).await, "ok");
    assert_eq!(redeem_status(&c, &t(3), &unsub).await, "invalid");
    c.execute("SELECT linktoken.revoke($1)", &[&t(4)])
        .await
        .unwrap();
    c.execute(
        "SELECT linktoken.revoke_subject($1, $2)",
        &[&"dump-user:2", &verify],
    )
    .await
    .unwrap();

    // (a) every row of every table in the schema, as text.
    let tables: Vec<String> = c
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'linktoken' AND c.relkind IN ('r', 'p')
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for expected in ["linktoken.events", "linktoken.purposes", "linktoken.tokens"] {
        assert!(
            tables.iter().any(|t| t == expected),
            "{expected} missing from {tables:?}"
        );
    }
    let mut everything = String::new();
    for table in &tables {
        for row in c
            .query(&format!("SELECT t::text FROM {table} t"), &[])
            .await
            .unwrap()
        {
            everything.push_str(row.get::<_, &str>(0));
            everything.push('\n');
        }
        assert_holds_no_token(table, &everything, &issued);
    }
    for i in &issued {
        assert!(
            everything.contains(&format!("\\x{}", i.hash_hex)),
            "the scan sees every token's row (by its hash)"
        );
    }

    // (b) pg_dump of the whole database, with the connection of LINKTOKEN_TEST_DATABASE_URL.
    let params = ConnParams::from_env();
    let mut cmd = std::process::Command::new(pg_dump_binary());
    cmd.arg("--no-password")
        .args(["--host", &params.host])
        .args(["--port", &params.port.to_string()])
        .args(["--username", &params.user])
        .args(["--dbname", &params.dbname]);
    if let Some(pw) = &params.password {
        cmd.env("PGPASSWORD", pw);
    }
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", pg_dump_binary().display()));
    assert!(
        output.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dump = String::from_utf8(output.stdout).expect("the dump is UTF-8");
    assert!(
        dump.contains("COPY linktoken.tokens "),
        "the dump holds the data of linktoken.tokens"
    );
    assert_holds_no_token("pg_dump output", &dump, &issued);
    for i in &issued {
        // COPY's text format doubles the backslash of bytea's hex output.
        assert!(
            dump.contains(&format!("\\\\x{}", i.hash_hex)),
            "the dump holds every token's row (by its hash)"
        );
    }
}
