//! An action that rejects the input: its error reaches the caller unchanged and nothing is consumed.

use linktoken_integration::*;

#[tokio::test]
async fn failing_action_leaves_the_token_usable() {
    let c = connect().await;
    let schema = format!("it_{}", tag());
    c.batch_execute(&format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.passwords (subject text, password text);
         CREATE FUNCTION {schema}.set_password(subject text, payload jsonb, form jsonb) RETURNS jsonb
         LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_catalog, pg_temp AS $$
         BEGIN
           IF length(coalesce(form->>'password', '')) < 12 THEN
             RAISE EXCEPTION 'too short' USING ERRCODE = '22023';
           END IF;
           INSERT INTO {schema}.passwords VALUES (subject, form->>'password');
           RETURN jsonb_build_object('changed', true);
         END $$;"
    ))
    .await
    .unwrap();
    let p = format!("reset_{}", tag());
    let action = format!("{schema}.set_password(text,jsonb,jsonb)");
    c.execute(
        "SELECT linktoken.define_purpose($1, '1 hour', action => $2::text::regprocedure)",
        &[&p, &action],
    )
    .await
    .unwrap();
    let token = issue(&c, &p, "user:1").await;

    let short = r#"{"password": "short"}"#;
    let err = c
        .query_one(
            "SELECT * FROM linktoken.redeem($1, $2, $3::text::jsonb)",
            &[&token, &p, &short],
        )
        .await
        .unwrap_err();
    let db = err.as_db_error().expect("a database error");
    assert_eq!(db.code().code(), "22023");
    assert_eq!(db.message(), "too short");
    assert_eq!(
        db.detail(),
        None,
        "no Rust backtrace or other detail is added"
    );
    assert_eq!(peek_status(&c, &token, &p).await, "ok");

    let good = r#"{"password": "correct horse battery"}"#;
    let row = c
        .query_one(
            "SELECT status, result::text FROM linktoken.redeem($1, $2, $3::text::jsonb)",
            &[&token, &p, &good],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "ok");
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some(r#"{"changed": true}"#)
    );
    assert_eq!(redeem_status(&c, &token, &p).await, "used");
    let stored: i64 = c
        .query_one(&format!("SELECT count(*) FROM {schema}.passwords"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);
    c.batch_execute(&format!(
        "SELECT linktoken.define_purpose('{p}', '1 hour'); DROP SCHEMA {schema} CASCADE"
    ))
    .await
    .unwrap();
}
