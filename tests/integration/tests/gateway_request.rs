//! The request form (`/request/{purpose}`, issue 12) through the real gateway: the form, the 404
//! for purposes without one, one answer for every identifier (known, unknown, throttled, capped,
//! empty) with a message queued for known ones only, the cross-site check, the per-client
//! budget, bind_browser links, the whole flow from the form to a redeemed link, and the 503
//! when no mailer key is set.
//!
//! The tests read what request() queued from linktoken.outbox as superuser and open its sealed
//! part with this file's own mailer key pair ([`mailer_key`]), set as the current key before
//! each request whose message they open.

use linktoken_core::mailbox;
use linktoken_integration::gateway::{self, Gateway};
use linktoken_integration::http::{self, Reply};
use linktoken_integration::*;
use std::net::SocketAddr;
use std::sync::OnceLock;
use tokio_postgres::Client;

const PUBLIC: &str = "https://links.example";
const OWN_ORIGIN: &str = "Origin: https://links.example";

/// Fast enough for tests, and still padding every answer.
const MIN_DURATION: &str = "50ms";

/// This file's mailer key pair: (private, public).
fn mailer_key() -> &'static ([u8; 32], [u8; 32]) {
    static KEY: OnceLock<([u8; 32], [u8; 32])> = OnceLock::new();
    KEY.get_or_init(mailbox::keypair)
}

/// Makes this file's key the current mailer key (the key is global to the database).
async fn use_mailer_key(c: &Client) {
    c.execute(
        "SELECT linktoken.set_mailer_key($1)",
        &[&mailer_key().1.as_slice()],
    )
    .await
    .expect("set the mailer key");
}

/// A purpose `<prefix>_<tag>` with a resolver over its own table of users (the subject and the
/// address are the lower-cased email) and an action that records who redeemed. `extra` adds
/// define_purpose arguments (`, bind_browser => true`). Returns (purpose, schema).
async fn request_purpose(c: &Client, prefix: &str, extra: &str) -> (String, String) {
    let schema = format!("it_{prefix}_{}", tag());
    c.batch_execute(&format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.users (email text PRIMARY KEY);
         CREATE TABLE {schema}.done (subject text);
         CREATE FUNCTION {schema}.find(identifier text, OUT subject text, OUT address text)
         LANGUAGE sql SECURITY DEFINER SET search_path = {schema}, pg_catalog, pg_temp AS $$
           SELECT u.email, u.email FROM {schema}.users u WHERE u.email = lower(btrim(identifier)) $$;
         CREATE FUNCTION {schema}.act(subject text, payload jsonb, form jsonb) RETURNS jsonb
         LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_catalog, pg_temp AS $$
         BEGIN INSERT INTO {schema}.done VALUES (subject); RETURN '{{}}'; END $$;"
    ))
    .await
    .expect("create the resolver");
    let purpose = format!("{prefix}_{}", tag());
    c.execute(
        &format!(
            "SELECT linktoken.define_purpose($1, '1 hour', action => $2::text::regprocedure,
                    resolver => $3::text::regprocedure{extra})"
        ),
        &[
            &purpose,
            &format!("{schema}.act(text,jsonb,jsonb)"),
            &format!("{schema}.find(text)"),
        ],
    )
    .await
    .expect("define the purpose");
    (purpose, schema)
}

async fn add_user(c: &Client, schema: &str, email: &str) {
    c.execute(
        &format!("INSERT INTO {schema}.users VALUES ($1)"),
        &[&email],
    )
    .await
    .unwrap();
}

/// The messages queued for a purpose: (address, sealed part, sealed to this file's key).
async fn outbox(c: &Client, purpose: &str) -> Vec<(String, Vec<u8>, bool)> {
    let mine = mailbox::fingerprint(&mailer_key().1).to_vec();
    c.query(
        "SELECT address, sealed, key_fingerprint = $2 FROM linktoken.outbox WHERE purpose = $1 ORDER BY id",
        &[&purpose, &mine],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// Opens the only message queued for a purpose.
async fn only_message(c: &Client, purpose: &str) -> mailbox::Secret {
    let messages = outbox(c, purpose).await;
    assert_eq!(messages.len(), 1, "one message queued");
    let (_, sealed, mine) = &messages[0];
    assert!(
        mine,
        "sealed to another key: another test changed the mailer key meanwhile"
    );
    mailbox::open(&mailer_key().0, sealed).expect("the message opens with the mailer's key")
}

/// request() outcomes recorded for a purpose, e.g. [("sent", 1), ("unknown", 2)].
async fn outcomes(c: &Client, purpose: &str) -> Vec<(String, i64)> {
    c.query(
        "SELECT status, count(*) FROM linktoken.events
         WHERE event = 'requested' AND purpose = $1 GROUP BY status ORDER BY status",
        &[&purpose],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

fn ask(addr: SocketAddr, purpose: &str, headers: &[&str], identifier: &str) -> Reply {
    http::post_form_with(
        addr,
        &format!("/request/{purpose}"),
        headers,
        &[("identifier", identifier)],
    )
}

/// Status, headers without Date, body: what must not differ between identifiers.
fn answer(r: &Reply) -> (u16, Vec<(String, String)>, String) {
    let headers = r
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("date"))
        .cloned()
        .collect();
    (r.status, headers, r.body.clone())
}

fn start(url: &str, extra: &[&str]) -> Gateway {
    let mut args = vec!["--request-min-duration", MIN_DURATION];
    args.extend_from_slice(extra);
    Gateway::start(url, &args)
}

/// What most tests start from: a purpose of [`request_purpose`] whose resolver knows `users`,
/// this file's mailer key, and a gateway (flags `args`) for a login role of its own.
struct Setup {
    c: Client,
    p: String,
    schema: String,
    gw: Gateway,
}

async fn setup(prefix: &str, extra: &str, users: &[&str], args: &[&str]) -> Setup {
    let c = connect().await;
    let (_, url) = gateway::login_role(&c, prefix).await;
    let (p, schema) = request_purpose(&c, prefix, extra).await;
    for email in users {
        add_user(&c, &schema, email).await;
    }
    use_mailer_key(&c).await;
    let gw = start(&url, args);
    Setup { c, p, schema, gw }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_has_one_field_labelled_from_the_page() {
    let Setup { c, p, gw, .. } = setup("gwreq_form", "", &[], &[]).await;

    // Without a page: the defaults.
    let r = http::get(gw.addr, &format!("/request/{p}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.matches("<input").count(), 1, "{}", r.body);
    assert!(!r.body.contains("<select") && !r.body.contains("<textarea"));
    assert!(r
        .body
        .contains("type=\"email\" id=\"f-identifier\" name=\"identifier\""));
    assert!(r
        .body
        .contains("<label for=\"f-identifier\">Email address</label>"));
    assert!(
        r.body.contains("<h1>We&#x27;ll email you a link</h1>"),
        "{}",
        r.body
    );
    assert!(r.body.contains(&format!(
        "<form method=\"post\" action=\"&#x2f;request&#x2f;{p}\""
    )));

    // The page's title, text and identifier_label.
    c.execute(
        r#"SELECT linktoken.set_page($1, '{"title": "Sign in", "text": "You asked for a link.",
                 "request_text": "No password needed.",
             "identifier_label": "Work email",
             "fields": [{"name": "note", "label": "Note", "required": true}]}')"#,
        &[&p],
    )
    .await
    .unwrap();
    let r = http::get(gw.addr, &format!("/request/{p}"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body.matches("<input").count(),
        1,
        "the page's own fields are not asked for"
    );
    assert!(r
        .body
        .contains("<label for=\"f-identifier\">Work email</label>"));
    assert!(r.body.contains("name=\"identifier\""));
    assert!(r.body.contains("<h1>Sign in</h1>") && r.body.contains("No password needed."));
    assert!(
        !r.body.contains("You asked for a link."),
        "the landing page's text is not the request form's"
    );
    assert!(!r.body.contains("name=\"note\""));

    // HEAD: the same status, no body; GET changed nothing.
    let head = http::request(gw.addr, "HEAD", &format!("/request/{p}"), &[], b"");
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert!(outcomes(&c, &p).await.is_empty());
    assert!(outbox(&c, &p).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purposes_without_a_form_answer_the_usual_404() {
    let c = connect().await;
    let (_, url) = gateway::login_role(&c, "gwreq_404").await;
    let plain = purpose(&c, "gwreq_plain", "1 hour", Some(1)).await;
    let unknown = format!("gwreq_none_{}", tag());
    let gw = start(&url, &[]);

    let not_found = http::get(gw.addr, "/no/such/page");
    assert_eq!(not_found.status, 404);
    for path in [
        format!("/request/{plain}"),
        format!("/request/{unknown}"),
        "/request/Not%20A%20Purpose".to_owned(),
        "/request/a/b".to_owned(),
        "/request/".to_owned(),
    ] {
        let r = http::get(gw.addr, &path);
        assert_eq!((r.status, &r.body), (404, &not_found.body), "GET {path}");
    }
    // POST too: nothing called, nothing queued.
    use_mailer_key(&c).await;
    for p in [&plain, &unknown] {
        let r = ask(gw.addr, p, &[], "someone@example.org");
        assert_eq!((r.status, &r.body), (404, &not_found.body), "POST {p}");
        assert_eq!(r.header("set-cookie"), None);
        assert!(outcomes(&c, p).await.is_empty());
    }
    // Positive control: a purpose with a resolver answers 200 on the same gateway.
    let (p, _) = request_purpose(&c, "gwreq_404", "").await;
    assert_eq!(http::get(gw.addr, &format!("/request/{p}")).status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_identifier_gets_the_same_answer() {
    let Setup { c, p, gw, .. } = setup(
        "gwreq_same",
        ", min_interval => '1 hour'",
        &["anna@example.org", "ben@example.org"],
        &["--requests-per-minute", "1000"],
    )
    .await;
    // One browser (same bind cookie), so even Set-Cookie must be equal.
    let cookie = format!("Cookie: linktoken_bind={}", "b".repeat(32));
    let send = |identifier: &str| ask(gw.addr, &p, &[cookie.as_str()], identifier);

    let known = send("anna@example.org");
    assert_eq!(known.status, 200, "{}", known.body);
    assert!(known.body.contains("Check your email"), "{}", known.body);
    assert!(known.body.contains("If that email address is known here"));
    assert!(
        !known.body.contains("anna"),
        "the answer never echoes the input"
    );
    let mut others = vec![
        ("unknown", send("nobody@example.org")),
        ("known again (throttled)", send(" ANNA@example.org ")),
        ("empty", send("")),
        (
            "no identifier field",
            http::post_form_with(gw.addr, &format!("/request/{p}"), &[cookie.as_str()], &[]),
        ),
        ("too long", send(&"x".repeat(5000))),
    ];
    // Over the per-identifier cap (5 per hour): ben's first is sent, then throttled, then capped.
    for i in 0..6 {
        others.push(("ben (sent, throttled, capped)", send("ben@example.org")));
        if i == 0 {
            assert_eq!(
                outbox(&c, &p).await.len(),
                2,
                "ben's first request was sent"
            );
        }
    }
    for (what, r) in &others {
        assert_eq!(answer(r), answer(&known), "{what}");
    }
    // Each case really happened, and only the two first requests of known people queued a mail.
    let seen = outcomes(&c, &p).await;
    for (status, least) in [("capped", 1), ("sent", 2), ("throttled", 2), ("unknown", 4)] {
        let n = seen
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        assert!(n >= least, "{status}: {n} in {seen:?}");
    }
    let addresses: Vec<String> = outbox(&c, &p).await.into_iter().map(|m| m.0).collect();
    assert_eq!(addresses, ["anna@example.org", "ben@example.org"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_call_nothing() {
    let Setup { c, p, gw, .. } = setup(
        "gwreq_csrf",
        "",
        &["carla@example.org"],
        &["--public-url", PUBLIC],
    )
    .await;

    for (what, headers) in [
        ("foreign Origin", vec!["Origin: https://evil.example"]),
        ("Origin: null", vec!["Origin: null"]),
        (
            "Sec-Fetch-Site: cross-site",
            vec!["Sec-Fetch-Site: cross-site"],
        ),
    ] {
        let r = ask(gw.addr, &p, &headers, "carla@example.org");
        assert_eq!(r.status, 403, "{what}: {}", r.body);
        assert!(r.body.contains("sent from another website"), "{what}");
        assert_eq!(r.header("set-cookie"), None, "{what}");
    }
    assert!(
        outcomes(&c, &p).await.is_empty(),
        "request() was never called"
    );
    assert!(outbox(&c, &p).await.is_empty());

    // Positive control: the same request from the gateway's own origin queues the mail.
    let r = ask(gw.addr, &p, &[OWN_ORIGIN], "carla@example.org");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(outbox(&c, &p).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_gets_429_over_its_budget() {
    let Setup { c, p, gw, .. } = setup(
        "gwreq_budget",
        "",
        &["dora@example.org"],
        &["--requests-per-minute", "3", "--trust-proxy"],
    )
    .await;
    let client = "X-Forwarded-For: 203.0.113.9";

    for i in 0..3 {
        let r = ask(gw.addr, &p, &[client], &format!("nobody{i}@example.org"));
        assert_eq!(r.status, 200, "request {i}: {}", r.body);
    }
    let known = ask(gw.addr, &p, &[client], "dora@example.org");
    let unknown = ask(gw.addr, &p, &[client], "nobody9@example.org");
    assert_eq!(known.status, 429, "{}", known.body);
    assert!(known.header("retry-after").is_some());
    assert_eq!(
        answer(&known),
        answer(&unknown),
        "the same 429 for everyone"
    );
    assert!(
        outbox(&c, &p).await.is_empty(),
        "nothing called over the budget"
    );
    assert_eq!(outcomes(&c, &p).await, [("unknown".to_owned(), 3)]);

    // Another client has its own budget.
    let other = ask(
        gw.addr,
        &p,
        &["X-Forwarded-For: 198.51.100.4"],
        "dora@example.org",
    );
    assert_eq!(other.status, 200, "{}", other.body);
    assert_eq!(outbox(&c, &p).await.len(), 1);
}

fn bind_value(set_cookie: &str) -> &str {
    set_cookie
        .strip_prefix("__Host-linktoken_bind=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("not a __Host- bind cookie: {set_cookie}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_links_work_in_the_asking_browser_and_codes_anywhere() {
    let Setup { c, p, schema, gw } = setup(
        "gwreq_bind",
        ", bind_browser => true, code_digits => 6",
        &["emil@example.org", "fay@example.org"],
        &["--public-url", PUBLIC],
    )
    .await;

    let r = ask(gw.addr, &p, &[OWN_ORIGIN], "emil@example.org");
    assert_eq!(r.status, 200, "{}", r.body);
    let set_cookie = r
        .header("set-cookie")
        .expect("the bind cookie is set")
        .to_owned();
    assert!(
        set_cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax; Secure"),
        "{set_cookie}"
    );
    let bind = bind_value(&set_cookie).to_owned();
    assert!(bind.len() >= 32, "a random value");
    let secret = only_message(&c, &p).await;
    let link = format!("/t/{}", secret.token);
    let cookie = format!("Cookie: __Host-linktoken_bind={bind}");

    // Another browser: unbound, nothing consumed.
    let elsewhere = http::get(gw.addr, &link);
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.body);
    assert!(elsewhere.body.contains("browser where you asked"));
    // This browser: the landing page, then the redemption.
    let here = http::request(gw.addr, "GET", &link, &[cookie.as_str()], b"");
    assert_eq!(here.status, 200, "{}", here.body);
    let done = http::post_form_with(
        gw.addr,
        &link,
        &[OWN_ORIGIN, cookie.as_str()],
        &[("confirm", "yes")],
    );
    assert_eq!(done.status, 200, "{}", done.body);
    let redeemed: Vec<String> = c
        .query(&format!("SELECT subject FROM {schema}.done"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(redeemed, ["emil@example.org"]);

    // The browser's cookie is kept on the next request (an earlier mail's link still works).
    let again = ask(
        gw.addr,
        &p,
        &[OWN_ORIGIN, cookie.as_str()],
        "fay@example.org",
    );
    assert_eq!(again.status, 200);
    assert_eq!(bind_value(again.header("set-cookie").unwrap()), bind);
    // The code from the mail works in any browser, without the cookie.
    let messages = outbox(&c, &p).await;
    let fay = mailbox::open(&mailer_key().0, &messages[1].1).expect("opens");
    let code = fay.code.expect("the purpose has codes");
    let r = http::post_form_with(
        gw.addr,
        &format!("/code/{p}"),
        &[OWN_ORIGIN],
        &[("subject", "fay@example.org"), ("code", &code)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_the_form_to_a_redeemed_link() {
    let Setup { c, p, schema, gw } = setup("gwreq_flow", "", &["gus@example.org"], &[]).await;

    let form = http::get(gw.addr, &format!("/request/{p}"));
    assert_eq!(form.status, 200);
    let r = ask(gw.addr, &p, &[], "Gus@Example.org");
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = only_message(&c, &p).await;
    assert_token_shape(&secret.token);
    assert_eq!(secret.code, None, "no codes for this purpose");
    let link = format!("/t/{}", secret.token);
    let landing = http::get(gw.addr, &link);
    assert_eq!(landing.status, 200, "{}", landing.body);
    let done = http::post_form_with(gw.addr, &link, &[], &[("confirm", "yes")]);
    assert_eq!(done.status, 200, "{}", done.body);
    let subject: String = c
        .query_one(&format!("SELECT subject FROM {schema}.done"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(subject, "gus@example.org");
    assert_eq!(http::get(gw.addr, &link).status, 410, "used");
    // The token never reached the gateway's log.
    let log = gw.log().join("\n");
    assert!(!log.contains(&secret.token[4..]), "token in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_mailer_key_requests_answer_503() {
    // A database of its own: the mailer key is global to a database, and the others need one.
    let admin = connect().await;
    let db = format!("it_gwreq_nokey_{}", tag());
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let mut cfg = config();
    cfg.dbname(&db);
    let c = connect_with(&cfg).await;
    c.batch_execute("CREATE EXTENSION linktoken").await.unwrap();
    let (p, schema) = request_purpose(&c, "gwreq_nokey", "").await;
    add_user(&c, &schema, "hal@example.org").await;
    let (_, url) = gateway::login_role(&admin, "gwreq_nokey").await;
    let url = url.replace(
        &format!("dbname={}", config().get_dbname().unwrap()),
        &format!("dbname={db}"),
    );
    let gw = start(&url, &[]);

    let known = ask(gw.addr, &p, &[], "hal@example.org");
    let unknown = ask(gw.addr, &p, &[], "nobody@example.org");
    assert_eq!(known.status, 503, "{}", known.body);
    assert_eq!((unknown.status, &unknown.body), (503, &known.body));
    assert!(
        !known.body.contains("mailer"),
        "the cause is for the log only"
    );
    let log = gw.log().join("\n");
    assert!(log.contains("no mailer key is set"), "{log}");
    // Positive control: with a key, the same request is taken.
    c.execute("SELECT linktoken.set_mailer_key(sha256('gwreq'))", &[])
        .await
        .unwrap();
    assert_eq!(ask(gw.addr, &p, &[], "hal@example.org").status, 200);

    drop(gw);
    drop(c);
    admin
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .unwrap();
}
