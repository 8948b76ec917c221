//! An action that rejects the form: its error reaches the caller unchanged (SQLSTATE, message,
//! no detail such as a Rust backtrace) and the token is not consumed.

use linktoken_integration::*;

#[tokio::test]
async fn failing_action_reaches_the_caller_and_leaves_the_token_usable() {
    let c = connect().await;
    let (p, schema) = purpose_with_action(
        &c,
        "reset",
        "CREATE TABLE {schema}.passwords (subject text, password text);",
        "IF length(coalesce(form->>'password', '')) < 12 THEN
           RAISE EXCEPTION 'too short' USING ERRCODE = '22023';
         END IF;
         INSERT INTO passwords VALUES (subject, form->>'password');
         RETURN jsonb_build_object('changed', true);",
    )
    .await;
    let token = issue(&c, &p, "user:1").await;
    let redeem = "SELECT status, result::text FROM linktoken.redeem($1, $2, $3::text::jsonb)";

    for bad_form in [Some(r#"{"password": "short"}"#), Some("{}"), None] {
        let err = c
            .query_one(redeem, &[&token, &p, &bad_form])
            .await
            .expect_err("redeem with a rejected form must fail");
        let db = err
            .as_db_error()
            .unwrap_or_else(|| panic!("not a database error: {err}"));
        assert_eq!(
            db.code().code(),
            "22023",
            "{bad_form:?}: the action's SQLSTATE"
        );
        assert_eq!(
            db.message(),
            "too short",
            "{bad_form:?}: the action's message"
        );
        assert!(
            db.detail().is_none_or(str::is_empty),
            "{bad_form:?}: no detail (e.g. a Rust backtrace) is added: {:?}",
            db.detail()
        );
        assert_eq!(db.hint(), None, "{bad_form:?}: no hint is added");
        let context = db.where_().unwrap_or("");
        assert!(
            !context.contains(".rs:") && !context.contains("ltk_"),
            "{bad_form:?}: context {context:?}"
        );
        assert_eq!(
            peek_status(&c, &token, &p).await,
            "ok",
            "{bad_form:?}: a failed redeem does not consume the token"
        );
    }
    let use_count: i32 = c
        .query_one(
            "SELECT use_count FROM linktoken.tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
            &[&token],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(use_count, 0, "failed redeems are not counted");

    let good = Some(r#"{"password": "correct horse battery"}"#);
    let row = c.query_one(redeem, &[&token, &p, &good]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "ok");
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some(r#"{"changed": true}"#),
        "redeem returns the action's result"
    );
    assert_eq!(redeem_status(&c, &token, &p).await, "used");
    let stored: Vec<(String, String)> = c
        .query(
            &format!("SELECT subject, password FROM {schema}.passwords"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        stored,
        vec![("user:1".to_owned(), "correct horse battery".to_owned())],
        "only the good form's side effect happened"
    );

    c.batch_execute(&format!(
        "SELECT linktoken.define_purpose('{p}', '1 hour'); DROP SCHEMA {schema} CASCADE"
    ))
    .await
    .unwrap();
}

/// Errors pass through whole: a custom SQLSTATE with its detail and hint, and a unique
/// violation with its constraint, table and schema, reach the caller of redeem as the action
/// raised them (pgrx alone would turn AB123 into XX000 and drop the fields). Over HTTP the
/// gateway answers a class 23 error (like class 22) with 422 and the action's message.
#[tokio::test]
async fn action_errors_reach_callers_as_raised() {
    let c = connect().await;
    let (p, schema) = purpose_with_action(
        &c,
        "errs",
        "CREATE TABLE {schema}.accounts (email text CONSTRAINT accounts_email_key UNIQUE);
         INSERT INTO {schema}.accounts VALUES ('taken@example.org');",
        "IF form->>'mode' = 'custom' THEN
           RAISE EXCEPTION 'custom refusal' USING ERRCODE = 'AB123', DETAIL = 'the detail', HINT = 'the hint';
         END IF;
         INSERT INTO accounts VALUES (form->>'email');
         RETURN NULL;",
    )
    .await;
    let token = issue(&c, &p, "user:1").await;
    let redeem = "SELECT status FROM linktoken.redeem($1, $2, $3::text::jsonb)";
    let fails = |form: &'static str| {
        let (c, token, p) = (&c, &token, &p);
        async move {
            let err = c
                .query_one(redeem, &[token, p, &Some(form)])
                .await
                .expect_err("the action raises");
            err.as_db_error()
                .unwrap_or_else(|| panic!("not a database error: {err}"))
                .clone()
        }
    };
    let custom = fails(r#"{"mode": "custom"}"#).await;
    assert_eq!(
        custom.code().code(),
        "AB123",
        "the custom SQLSTATE survives"
    );
    assert_eq!(custom.message(), "custom refusal");
    assert_eq!(custom.detail(), Some("the detail"));
    assert_eq!(custom.hint(), Some("the hint"));
    let duplicate = fails(r#"{"email": "taken@example.org"}"#).await;
    assert_eq!(duplicate.code().code(), "23505");
    assert_eq!(duplicate.constraint(), Some("accounts_email_key"));
    assert_eq!(duplicate.table(), Some("accounts"));
    assert_eq!(duplicate.schema(), Some(schema.as_str()));
    assert_eq!(peek_status(&c, &token, &p).await, "ok", "nothing consumed");

    // Over HTTP: the unique violation is something the person can fix, so 422 with its message.
    c.execute(
        r#"SELECT linktoken.set_page($1, '{"title": "Your address", "button": "Save",
             "fields": [{"name": "email", "type": "email", "label": "Email", "required": true}]}')"#,
        &[&p],
    )
    .await
    .unwrap();
    let (_, url) = gateway::login_role(&c, "errs").await;
    let gw = gateway::Gateway::start(&url, &[]);
    let path = format!("/t/{token}");
    let taken = http::post_form(gw.addr, &path, &[("email", "taken@example.org")]);
    assert_eq!(taken.status, 422, "class 23 from the action is 422");
    assert!(
        taken
            .body
            .contains("duplicate key value violates unique constraint"),
        "the action's message is shown: {}",
        taken.body
    );
    assert_eq!(peek_status(&c, &token, &p).await, "ok", "nothing consumed");
    let fine = http::post_form(gw.addr, &path, &[("email", "new@example.org")]);
    assert_eq!(fine.status, 200, "then a good form redeems");
    assert_eq!(peek_status(&c, &token, &p).await, "used");

    drop(gw);
    c.batch_execute(&format!(
        "SELECT linktoken.define_purpose('{p}', '1 hour'); DROP SCHEMA {schema} CASCADE"
    ))
    .await
    .unwrap();
}
