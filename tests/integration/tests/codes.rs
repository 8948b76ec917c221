//! Typed codes through the gateway: the code form, wrong codes (one neutral answer), the lock
//! (of the codes only, never the link), and a successful redemption by code.

use linktoken_integration::gateway::{self, Gateway};
use linktoken_integration::http;
use linktoken_integration::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_form_wrong_codes_lock_and_success() {
    let c = connect().await;
    let p = format!("gwcode_{}", tag());
    c.execute(
        "SELECT linktoken.define_purpose($1, '10 minutes', code_digits => 6, max_attempts => 3)",
        &[&p],
    )
    .await
    .unwrap();
    c.execute(
        r#"SELECT linktoken.set_page($1, '{"title": "Sign in", "subject_label": "Your email"}')"#,
        &[&p],
    )
    .await
    .unwrap();
    let (_, url) = gateway::login_role(&c, "gwcode").await;
    let gw = Gateway::start(&url, &[]);
    let addr = gw.addr;
    let issue_code = |subject: &'static str| {
        let (c, p) = (&c, p.clone());
        async move {
            let row = c
                .query_one(
                    "SELECT token, code FROM linktoken.issue_with_code($1, $2)",
                    &[&p, &subject],
                )
                .await
                .unwrap();
            (row.get::<_, String>(0), row.get::<_, String>(1))
        }
    };
    let form_path = format!("/code/{p}");
    let wrong = |code: &str| format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);

    // The form asks for the subject (with the configured label) and the code.
    let form = http::get(addr, &form_path);
    assert_eq!(form.status, 200);
    assert!(
        form.body.contains("Your email") && form.body.contains("name=\"code\""),
        "{}",
        form.body
    );
    assert!(
        !form.body.contains("name=\"confirm\""),
        "the code itself is the person's input"
    );
    assert_eq!(http::get(addr, "/code/no_such_purpose").status, 404);

    // A wrong code: 422 with one neutral message that counts nothing (the same answer as for
    // an address with no code waiting: gateway_security.rs); the right one (typed with a
    // space) signs in.
    let (link, code) = issue_code("anna@example.org").await;
    let r = http::post_form(
        addr,
        &form_path,
        &[("subject", "anna@example.org"), ("code", &wrong(&code))],
    );
    assert_eq!(r.status, 422);
    assert!(
        r.body
            .contains("That code did not work. Check it, or ask for a new one."),
        "{}",
        r.body
    );
    assert!(!r.body.contains("attempt"), "no attempt count: {}", r.body);
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let ok = http::post_form(
        addr,
        &form_path,
        &[("subject", "anna@example.org"), ("code", &spaced)],
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        peek_status(&c, &link, &p).await,
        "used",
        "code and link are one token"
    );

    // Three wrong codes lock the subject's codes: the code form says so.
    let (link, code) = issue_code("ben@example.org").await;
    let mut last = 0;
    for _ in 0..3 {
        last = http::post_form(
            addr,
            &form_path,
            &[("subject", "ben@example.org"), ("code", &wrong(&code))],
        )
        .status;
    }
    assert_eq!(last, 429, "the third wrong code locks");
    let right = http::post_form(
        addr,
        &form_path,
        &[("subject", "ben@example.org"), ("code", &code)],
    );
    assert_eq!(right.status, 429);
    assert!(
        right.body.contains("Too many wrong codes"),
        "{}",
        right.body
    );
    // Wrong codes never lock the 256-bit link: guessing codes must not deny ben the link in
    // his mail (0.4.0). Redeeming it ends the lock-out, so his next code is counted afresh.
    let link_page = http::get(addr, &format!("/t/{link}"));
    assert_eq!(link_page.status, 200);
    assert_eq!(peek_status(&c, &link, &p).await, "ok");

    // A form without the code is refused before the database counts anything.
    let missing = http::post_form(addr, &form_path, &[("subject", "anna@example.org")]);
    assert_eq!(missing.status, 422);
    assert!(
        !gw.log().join("\n").contains(&code),
        "no code in the gateway log"
    );
}
