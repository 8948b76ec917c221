//! Attacks that worked on the gateway before issue 9, each as a regression test with a positive
//! control that shows the test would catch the attack if it worked again:
//!
//! * login CSRF on the code form, cross-site POSTs of links (Origin / Sec-Fetch-Site), and the
//!   RFC 8058 one-click exemption, which must stay exactly that narrow;
//! * the code form telling who has a code waiting;
//! * the plain bind cookie accepted behind https;
//! * one client exhausting the pool with concurrent requests (in-flight cap, IPv6 /64);
//! * /healthz taking a pool connection per check;
//! * /metrics only on `--metrics-listen` when it is set.

use linktoken_integration::gateway::{self, Gateway};
use linktoken_integration::http::{self, Reply};
use linktoken_integration::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// The gateway's public URL in these tests: https, while the tests talk plain HTTP to it (as a
/// TLS-terminating proxy would).
const PUBLIC: &str = "https://links.example";
const OWN_ORIGIN: &str = "Origin: https://links.example";
const EVIL_ORIGIN: &str = "Origin: https://evil.example";
const URLENCODED: &str = "Content-Type: application/x-www-form-urlencoded";

/// The page the gateway answers a cross-site POST with says this.
const REFUSED: &str = "sent from another website";

fn assert_refused(r: &Reply, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.body);
    assert!(r.body.contains(REFUSED), "{what}: {}", r.body);
    assert_eq!(r.header("set-cookie"), None, "{what}: no cookie");
}

/// Records of the audit log for a purpose (events, and the issues and consuming uses that
/// token rows hold): a refused request must add none (it never reached the database).
async fn events(c: &Client, purpose: &str) -> i64 {
    c.query_one(
        "SELECT count(*) FROM linktoken.audit WHERE purpose = $1",
        &[&purpose],
    )
    .await
    .unwrap()
    .get(0)
}

/// A purpose with typed codes (6 digits, `max_attempts` wrong ones) whose action signs in:
/// it returns a session cookie. Its code form labels the subject "Email address".
async fn code_purpose(c: &Client, max_attempts: i32) -> String {
    let (p, schema) = purpose_with_action(
        c,
        "gwsec_code",
        "",
        "RETURN jsonb_build_object('session', jsonb_build_object('name', 'sid', 'value', 'session-of-' || subject));",
    )
    .await;
    let action = format!("{schema}.act(text,jsonb,jsonb)");
    c.execute(
        "SELECT linktoken.define_purpose($1, '10 minutes', action => $2::text::regprocedure,
                code_digits => 6, max_attempts => $3)",
        &[&p, &action, &max_attempts],
    )
    .await
    .expect("give the purpose codes");
    p
}

async fn issue_code(c: &Client, purpose: &str, subject: &str) -> (String, String) {
    let row = c
        .query_one(
            "SELECT token, code FROM linktoken.issue_with_code($1, $2)",
            &[&purpose, &subject],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

fn wrong(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_csrf_on_the_code_form_is_refused() {
    let c = connect().await;
    let (_, url) = gateway::login_role(&c, "gwsec_csrf").await;
    let p = code_purpose(&c, 5).await;
    let gw = Gateway::start(&url, &["--public-url", PUBLIC]);
    let addr = gw.addr;
    let form = format!("/code/{p}");
    let attacker = format!("attacker.{}@example.org", tag());
    let (token, code) = issue_code(&c, &p, &attacker).await;
    let fields = [("subject", attacker.as_str()), ("code", code.as_str())];
    let before = events(&c, &p).await;

    // The attack: a page on another site posts the attacker's own subject and code from the
    // victim's browser, which would then hold the attacker's session.
    assert_refused(
        &http::post_form_with(addr, &form, &[EVIL_ORIGIN], &fields),
        "foreign Origin",
    );
    assert_refused(
        &http::post_form_with(
            addr,
            &form,
            &["Origin: https://links.example.evil.example"],
            &fields,
        ),
        "look-alike Origin",
    );
    assert_refused(
        &http::post_form_with(addr, &form, &["Origin: http://links.example"], &fields),
        "same host over http",
    );
    assert_refused(
        &http::post_form_with(addr, &form, &["Origin: null"], &fields),
        "Origin: null",
    );
    // What a browser sends from another site's no-referrer page.
    assert_refused(
        &http::post_form_with(
            addr,
            &form,
            &["Origin: null", "Sec-Fetch-Site: cross-site"],
            &fields,
        ),
        "Origin: null from another site",
    );
    assert_refused(
        &http::post_form_with(addr, &form, &["Sec-Fetch-Site: cross-site"], &fields),
        "Sec-Fetch-Site: cross-site without Origin",
    );
    assert_refused(
        &http::post_form_with(addr, &form, &["Sec-Fetch-Site: same-site"], &fields),
        "Sec-Fetch-Site: same-site without Origin",
    );
    assert_refused(
        &http::post_form_with(
            addr,
            &form,
            &[EVIL_ORIGIN, "Sec-Fetch-Site: same-origin"],
            &fields,
        ),
        "a foreign Origin with a same-origin claim",
    );
    assert_eq!(
        events(&c, &p).await,
        before,
        "no refused request reached the database"
    );
    assert_eq!(peek_status(&c, &token, &p).await, "ok");

    // Positive control: the very same request from the gateway's own origin signs in, so the
    // refusals above were the check and the attack would have worked without it.
    let ok = http::post_form_with(
        addr,
        &form,
        &[
            "Origin: https://links.example:443",
            "Sec-Fetch-Site: same-origin",
        ],
        &fields,
    );
    assert!(matches!(ok.status, 200 | 303), "{}", ok.body);
    let cookie = ok.header("set-cookie").expect("the session cookie");
    assert!(
        cookie.starts_with(&format!("__Host-sid=session-of-{attacker}")),
        "{cookie}"
    );
    assert_eq!(peek_status(&c, &token, &p).await, "used");

    // A request with neither header comes from no browser (curl, a mail client): allowed.
    let curl_user = format!("curl.{}@example.org", tag());
    let (token, code) = issue_code(&c, &p, &curl_user).await;
    let plain = http::post_form_with(
        addr,
        &form,
        &[],
        &[("subject", &curl_user), ("code", &code)],
    );
    assert!(matches!(plain.status, 200 | 303), "{}", plain.body);
    assert!(plain.header("set-cookie").is_some());
    assert_eq!(peek_status(&c, &token, &p).await, "used");
    // What browsers send from the gateway's own pages, whose Referrer-Policy: no-referrer makes
    // them write Origin: null on every POST: allowed, because Sec-Fetch-Site says same-origin.
    let own_page_user = format!("own.{}@example.org", tag());
    let (_, code) = issue_code(&c, &p, &own_page_user).await;
    let from_own_page = http::post_form_with(
        addr,
        &form,
        &["Origin: null", "Sec-Fetch-Site: same-origin"],
        &[("subject", &own_page_user), ("code", &code)],
    );
    assert!(
        matches!(from_own_page.status, 200 | 303),
        "{}",
        from_own_page.body
    );
    // Sec-Fetch-Site: none (a navigation the user started) is allowed too.
    let typed_user = format!("typed.{}@example.org", tag());
    let (_, code) = issue_code(&c, &p, &typed_user).await;
    let none = http::post_form_with(
        addr,
        &form,
        &["Sec-Fetch-Site: none"],
        &[("subject", &typed_user), ("code", &code)],
    );
    assert!(matches!(none.status, 200 | 303), "{}", none.body);

    let metrics = http::get(addr, "/metrics").body;
    for (reason, n) in [
        ("foreign_origin", 4),
        ("null_origin", 2),
        ("cross_site_fetch", 2),
    ] {
        let line = format!("linktoken_gateway_refused_requests_total{{reason=\"{reason}\"}} {n}");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    assert!(!gw.log().join("\n").contains(&token[4..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_post_of_a_link_is_refused() {
    let c = connect().await;
    let (_, url) = gateway::login_role(&c, "gwsec_link").await;
    let p = purpose(&c, "gwsec_link", "1 hour", Some(1)).await;
    let gw = Gateway::start(&url, &["--public-url", PUBLIC]);
    let addr = gw.addr;
    let token = issue(&c, &p, "victim").await;
    let link = format!("/t/{token}");
    let confirm = [("confirm", "yes")];
    let before = events(&c, &p).await;

    assert_refused(
        &http::post_form_with(addr, &link, &[EVIL_ORIGIN], &confirm),
        "foreign Origin",
    );
    assert_refused(
        &http::post_form_with(addr, &link, &["Sec-Fetch-Site: cross-site"], &confirm),
        "Sec-Fetch-Site: cross-site",
    );
    assert_eq!(events(&c, &p).await, before, "nothing reached the database");
    assert_eq!(peek_status(&c, &token, &p).await, "ok", "nothing consumed");

    // Positive control: the same POST from the landing page's own origin redeems.
    let ok = http::post_form_with(addr, &link, &[OWN_ORIGIN], &confirm);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(peek_status(&c, &token, &p).await, "used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_exact_one_click_body_is_exempt() {
    let c = connect().await;
    let (_, url) = gateway::login_role(&c, "gwsec_unsub").await;
    let p = purpose(&c, "gwsec_unsub", "365 days", None).await;
    c.execute(
        r#"SELECT linktoken.set_page($1, '{"title": "Unsubscribe", "one_click": true}')"#,
        &[&p],
    )
    .await
    .unwrap();
    let gw = Gateway::start(&url, &["--public-url", PUBLIC]);
    let addr = gw.addr;
    let token = issue(&c, &p, "list:1").await;
    let link = format!("/t/{token}");
    let uses = || async {
        c.query_one(
            "SELECT use_count FROM linktoken.tokens WHERE purpose = $1",
            &[&p],
        )
        .await
        .unwrap()
        .get::<_, i32>(0)
    };
    let raw = |headers: &[&str], body: &[u8]| http::request(addr, "POST", &link, headers, body);

    // Mail providers POST the RFC 8058 body from their own servers, whatever they send along.
    let r = raw(&[URLENCODED, EVIL_ORIGIN], b"List-Unsubscribe=One-Click");
    assert_eq!(r.status, 200, "{}", r.body);
    let multipart = b"--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
    let r = raw(
        &[
            "Content-Type: multipart/form-data; boundary=XyZ",
            "Sec-Fetch-Site: cross-site",
        ],
        multipart,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(uses().await, 2);

    // Anything more is an ordinary form post, and from another origin it is refused.
    for body in [
        &b"List-Unsubscribe=One-Click&confirm=yes"[..],
        b"confirm=yes&List-Unsubscribe=One-Click",
        b"List-Unsubscribe=x&List-Unsubscribe=One-Click",
        b"List-Unsubscribe=One-Click&List-Unsubscribe=One-Click",
        b"confirm=yes",
    ] {
        let r = raw(&[URLENCODED, EVIL_ORIGIN], body);
        assert_refused(&r, &String::from_utf8_lossy(body));
    }
    assert_eq!(uses().await, 2, "none of them redeemed");

    // Positive control: the one-click-plus-a-field body is a form the page accepts (it has the
    // required confirmation), so only the origin check stopped it above.
    let r = raw(&[URLENCODED], b"List-Unsubscribe=One-Click&confirm=yes");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(uses().await, 3);
}

/// The body with the echoed subject replaced by a placeholder.
fn without_subject(body: &str, subject: &str) -> String {
    assert!(body.contains(subject), "the form echoes the subject");
    body.replace(subject, "{subject}")
}

/// Status, content type and body (subject masked): what tells one answer from another.
fn answer(r: &Reply, subject: &str) -> (u16, String, String) {
    (
        r.status,
        r.header("content-type").unwrap_or("").to_owned(),
        without_subject(&r.body, subject),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_form_does_not_tell_who_has_a_code_waiting() {
    let c = connect().await;
    let (_, url) = gateway::login_role(&c, "gwsec_enum").await;
    let p = code_purpose(&c, 3).await;
    let gw = Gateway::start(&url, &["--failed-lookups-per-minute", "1000"]);
    let addr = gw.addr;
    let form = format!("/code/{p}");
    let waiting = format!("anna.{}@example.org", tag());
    let nobody = format!("nobody.{}@example.org", tag());
    let (token, code) = issue_code(&c, &p, &waiting).await;

    let wrong_code = http::post_form_with(
        addr,
        &form,
        &[],
        &[("subject", &waiting), ("code", &wrong(&code))],
    );
    let no_code = http::post_form_with(
        addr,
        &form,
        &[],
        &[("subject", &nobody), ("code", &wrong(&code))],
    );
    assert_eq!(wrong_code.status, 422, "{}", wrong_code.body);
    assert_eq!(
        answer(&wrong_code, &waiting),
        answer(&no_code, &nobody),
        "a wrong code and no code waiting look the same"
    );
    for r in [&wrong_code, &no_code] {
        assert!(r
            .body
            .contains("That code did not work. Check it, or ask for a new one."));
        assert!(!r.body.contains("attempt"), "no attempt count: {}", r.body);
        assert!(!r.body.contains("No code is waiting"));
    }
    assert_eq!(peek_status(&c, &token, &p).await, "ok");

    // Positive controls: the comparison does tell different answers apart. A form refused
    // for a missing code (same status, another message) ...
    let missing = http::post_form_with(addr, &form, &[], &[("subject", &waiting)]);
    assert_eq!(missing.status, 422);
    assert_ne!(answer(&missing, &waiting), answer(&wrong_code, &waiting));
    // ... and the lock page, which keeps its own answer.
    let locked_subject = format!("ben.{}@example.org", tag());
    let (_, ben_code) = issue_code(&c, &p, &locked_subject).await;
    let mut locked = None;
    for _ in 0..3 {
        locked = Some(http::post_form_with(
            addr,
            &form,
            &[],
            &[("subject", &locked_subject), ("code", &wrong(&ben_code))],
        ));
    }
    let locked = locked.unwrap();
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert!(locked.body.contains("Too many wrong codes"));
    let locked_answer = (
        locked.status,
        locked.header("content-type").unwrap_or("").to_owned(),
        locked.body.replace(&locked_subject, "{subject}"),
    );
    assert_ne!(locked_answer, answer(&wrong_code, &waiting));

    // And the right code still works for the subject that had one.
    let ok = http::post_form_with(addr, &form, &[], &[("subject", &waiting), ("code", &code)]);
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bind_cookie_name_follows_the_scheme() {
    let c = connect().await;
    let (_, url) = gateway::login_role(&c, "gwsec_bind").await;
    let p = format!("gwsec_bind_{}", tag());
    c.execute(
        "SELECT linktoken.define_purpose($1, '1 hour', bind_browser => true)",
        &[&p],
    )
    .await
    .unwrap();
    let bind = format!("{}{}", tag(), tag()).repeat(2);
    let issue_bound = || async {
        let t: String = c
            .query_one(
                "SELECT linktoken.issue($1, 'user:1', bind => $2)",
                &[&p, &bind],
            )
            .await
            .unwrap()
            .get(0);
        t
    };
    let plain = format!("Cookie: linktoken_bind={bind}");
    let host = format!("Cookie: __Host-linktoken_bind={bind}");
    let get = |addr, token: &str, cookie: &str| {
        http::request(addr, "GET", &format!("/t/{token}"), &[cookie], b"")
    };
    let unbound = |r: &Reply, what: &str| {
        assert_eq!(r.status, 403, "{what}: {}", r.body);
        assert!(r.body.contains("browser where you asked"), "{what}");
    };

    // Behind https only __Host-linktoken_bind counts: a plain linktoken_bind can be planted by
    // a sibling subdomain or a plain-http response.
    let https = Gateway::start(&url, &["--public-url", PUBLIC]);
    let token = issue_bound().await;
    unbound(&get(https.addr, &token, &plain), "https, plain cookie");
    let r = http::post_form_with(
        https.addr,
        &format!("/t/{token}"),
        &[plain.as_str()],
        &[("confirm", "yes")],
    );
    unbound(&r, "https, plain cookie, POST");
    assert_eq!(peek_status(&c, &token, &p).await, "unbound");
    // Positive control: the same value under the __Host- name is the right browser.
    assert_eq!(get(https.addr, &token, &host).status, 200);
    let r = http::post_form_with(
        https.addr,
        &format!("/t/{token}"),
        &[host.as_str()],
        &[("confirm", "yes")],
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // Over plain http it is the other way round (browsers keep __Host- cookies for https).
    let http_gw = Gateway::start(&url, &[]);
    let token = issue_bound().await;
    unbound(&get(http_gw.addr, &token, &host), "http, __Host- cookie");
    assert_eq!(get(http_gw.addr, &token, &plain).status, 200);
}

/// A purpose whose action sleeps, to hold a pool connection for `seconds`.
async fn slow_purpose(c: &Client, seconds: f64) -> String {
    purpose_with_action(
        c,
        "gwsec_slow",
        "",
        &format!("PERFORM pg_sleep({seconds}); RETURN NULL;"),
    )
    .await
    .0
}

/// How many of `role`'s server processes sleep in an action.
async fn sleeping(c: &Client, role: &str) -> i64 {
    c.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND wait_event = 'PgSleep'",
        &[&role],
    )
    .await
    .unwrap()
    .get(0)
}

/// Waits (bounded) until `n` of `role`'s connections sleep in the action.
async fn wait_sleeping(c: &Client, role: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while sleeping(c, role).await < n {
        assert!(
            Instant::now() < deadline,
            "{n} requests sleeping in the action"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `tokens.len()` slow POSTs at once from `client` (X-Forwarded-For); each thread returns the
/// status, Retry-After and how long the answer took.
fn slow_posts(
    addr: SocketAddr,
    client: &str,
    tokens: &[String],
) -> Vec<std::thread::JoinHandle<(u16, Option<String>, Duration)>> {
    tokens
        .iter()
        .map(|t| {
            let (path, xff) = (format!("/t/{t}"), format!("X-Forwarded-For: {client}"));
            std::thread::spawn(move || {
                let started = Instant::now();
                let r = http::post_form_with(addr, &path, &[xff.as_str()], &[("confirm", "yes")]);
                (
                    r.status,
                    r.header("retry-after").map(str::to_owned),
                    started.elapsed(),
                )
            })
        })
        .collect()
}

fn get_from(addr: SocketAddr, path: &str, client: &str) -> Reply {
    http::request(
        addr,
        "GET",
        path,
        &[format!("X-Forwarded-For: {client}").as_str()],
        b"",
    )
}

async fn issue_many(c: &Client, p: &str, n: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for i in 0..n {
        tokens.push(issue(c, p, &format!("s{i}")).await);
    }
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_take_the_whole_pool() {
    let c = connect().await;
    let (role, url) = gateway::login_role(&c, "gwsec_cap").await;
    let p = slow_purpose(&c, 2.0).await;
    let landing = format!("/t/{}", issue(&c, &p, "landing").await);
    let flags = [
        "--trust-proxy",
        "--pool-size",
        "4",
        "--pool-wait-ms",
        "300",
        "--failed-lookups-per-minute",
        "1000000",
    ];

    // The default cap with a pool of 4 is 2 per client: client A's six concurrent slow POSTs
    // get two connections, the other four a 429 at once; client B is served meanwhile.
    let gw = Gateway::start(&url, &flags);
    let tokens = issue_many(&c, &p, 6).await;
    let a = slow_posts(gw.addr, "203.0.113.5", &tokens);
    wait_sleeping(&c, &role, 2).await;
    let b = get_from(gw.addr, &landing, "198.51.100.7");
    assert_eq!(b.status, 200, "client B is served: {}", b.body);
    let mut a: Vec<_> = a.into_iter().map(|t| t.join().unwrap()).collect();
    a.sort_by_key(|(status, _, _)| *status);
    let statuses: Vec<u16> = a.iter().map(|(s, _, _)| *s).collect();
    println!("client A, cap 2: {a:?}");
    assert_eq!(statuses, [200, 200, 429, 429, 429, 429], "{a:?}");
    for (_, retry_after, took) in &a[2..] {
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert!(
            *took < Duration::from_millis(1000),
            "refused at once: {took:?}"
        );
    }
    let metrics = http::get(gw.addr, "/metrics").body;
    assert!(metrics.contains("linktoken_gateway_refused_requests_total{reason=\"in_flight\"} 4"));

    // IPv6: one client is a /64, whichever addresses in it the requests come from.
    let tokens = issue_many(&c, &p, 2).await;
    let v6: Vec<_> = ["2001:db8:7:7::1", "2001:db8:7:7::2"]
        .iter()
        .zip(tokens.chunks(1))
        .flat_map(|(client, t)| slow_posts(gw.addr, client, t))
        .collect();
    wait_sleeping(&c, &role, 2).await;
    let same_64 = get_from(gw.addr, &landing, "2001:db8:7:7:ffff:ffff:ffff:1");
    assert_eq!(same_64.status, 429, "{}", same_64.body);
    let mapped = get_from(gw.addr, &landing, "::ffff:203.0.113.5");
    assert_eq!(
        mapped.status, 200,
        "an IPv4-mapped address is that IPv4 client"
    );
    let next_64 = get_from(gw.addr, &landing, "2001:db8:7:8::1");
    assert_eq!(next_64.status, 200, "the next /64 is another client");
    for t in v6 {
        assert_eq!(t.join().unwrap().0, 200);
    }
    drop(gw);

    // Negative control: without the cap, client A's six POSTs take all four connections and
    // client B gets 503, which is what the cap prevents.
    let mut open = flags.to_vec();
    open.extend(["--max-in-flight-per-client", "0"]);
    let gw = Gateway::start(&url, &open);
    let tokens = issue_many(&c, &p, 6).await;
    let a = slow_posts(gw.addr, "203.0.113.5", &tokens);
    wait_sleeping(&c, &role, 4).await;
    let b = get_from(gw.addr, &landing, "198.51.100.7");
    assert_eq!(b.status, 503, "pool exhausted by client A: {}", b.body);
    let mut statuses: Vec<u16> = a.into_iter().map(|t| t.join().unwrap().0).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 200, 200, 503, 503]);
}

/// `linktoken_gateway_{name} N` from a metrics page.
fn gauge(metrics: &str, name: &str) -> i64 {
    let prefix = format!("linktoken_gateway_{name} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in {metrics}"))
}

/// `n` concurrent GET /healthz; their statuses and the slowest answer.
fn healthz_burst(addr: SocketAddr, n: usize) -> (Vec<u16>, Duration) {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let started = Instant::now();
                (http::get(addr, "/healthz").status, started.elapsed())
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let slowest = results.iter().map(|r| r.1).max().unwrap();
    (results.into_iter().map(|r| r.0).collect(), slowest)
}

async fn backends(c: &Client, role: &str) -> i64 {
    c.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = $1",
        &[&role],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_from_the_probe_while_the_pool_is_busy() {
    let c = connect().await;
    let (role, url) = gateway::login_role(&c, "gwsec_health").await;
    let p = slow_purpose(&c, 3.0).await;
    let landing = format!("/t/{}", issue(&c, &p, "landing").await);
    let gw = Gateway::start(
        &url,
        &["--trust-proxy", "--pool-size", "2", "--pool-wait-ms", "300"],
    );
    assert_eq!(http::get(gw.addr, "/healthz").status, 200);

    // Both pool connections busy for three seconds.
    let tokens = issue_many(&c, &p, 2).await;
    let holders = slow_posts(gw.addr, "203.0.113.20", &tokens);
    wait_sleeping(&c, &role, 2).await;
    // Control: the pool really is exhausted (a link click from another client waits 300 ms
    // and gets 503).
    assert_eq!(get_from(gw.addr, &landing, "198.51.100.20").status, 503);
    let before = http::get(gw.addr, "/metrics").body;

    let (statuses, slowest) = healthz_burst(gw.addr, 40);
    println!("40 concurrent /healthz with the pool busy: slowest answer {slowest:?}");
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        slowest < Duration::from_millis(1000),
        "no health check waited for the pool: {slowest:?}"
    );
    let after = http::get(gw.addr, "/metrics").body;
    for m in [&before, &after] {
        assert_eq!(gauge(m, "pool_size"), 2);
        assert_eq!(gauge(m, "pool_available"), 0);
        assert_eq!(gauge(m, "pool_waiting"), 0);
    }
    assert_eq!(
        backends(&c, &role).await,
        3,
        "two pool connections and the probe's own, however many checks ran"
    );
    for t in holders {
        assert_eq!(t.join().unwrap().0, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_turns_503_when_the_probe_cannot_reach_the_database_and_recovers() {
    let c = connect().await;
    let (role, url) = gateway::login_role(&c, "gwsec_probe").await;
    let p = purpose(&c, "gwsec_probe", "1 hour", None).await;
    let landing = format!("/t/{}", issue(&c, &p, "landing").await);
    let gw = Gateway::start(&url, &[]);
    assert_eq!(
        http::get(gw.addr, &landing).status,
        200,
        "a pool connection"
    );
    assert_eq!(http::get(gw.addr, "/healthz").status, 200);

    // New logins refused, and the probe's connection (its last query was SELECT 1) ended: the
    // database is unreachable for the probe.
    c.batch_execute(&format!("ALTER ROLE {role} NOLOGIN"))
        .await
        .unwrap();
    c.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE usename = $1 AND query = 'SELECT 1'",
        &[&role],
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut status = 200;
    while started.elapsed() < Duration::from_secs(5) && status != 503 {
        status = http::get(gw.addr, "/healthz").status;
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(status, 503, "after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(3), "promptly");

    c.batch_execute(&format!("ALTER ROLE {role} LOGIN"))
        .await
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) && status != 200 {
        status = http::get(gw.addr, "/healthz").status;
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(status, 200, "back after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(3), "promptly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_their_own_listener() {
    let c = connect().await;
    let (_, url) = gateway::login_role(&c, "gwsec_metrics").await;
    let gw = Gateway::start(&url, &["--metrics-listen", "127.0.0.1:0"]);
    let metrics = gw.metrics_addr.expect("the metrics address is logged");
    assert_ne!(metrics, gw.addr);
    assert_eq!(http::get(gw.addr, "/healthz").status, 200);
    let main = http::get(gw.addr, "/metrics");
    assert_eq!(main.status, 404, "not on the main listener");
    assert!(!main.body.contains("linktoken_gateway_"));
    let own = http::get(metrics, "/metrics");
    assert_eq!(own.status, 200);
    assert!(own
        .body
        .contains("linktoken_gateway_requests_total{route=\"healthz\",status=\"200\"} 1"));
    for path in ["/healthz", "/t/ltk_x", "/static/style.css", "/"] {
        assert_eq!(
            http::get(metrics, path).status,
            404,
            "{path}: only /metrics there"
        );
    }
    // Control: without the flag, /metrics is on the main listener.
    let shared = Gateway::start(&url, &[]);
    assert_eq!(shared.metrics_addr, None);
    assert_eq!(http::get(shared.addr, "/metrics").status, 200);
}

#[test]
fn a_public_url_that_is_no_origin_stops_the_start() {
    let out = std::process::Command::new(gateway::binary())
        .args([
            "--database-url",
            "host=127.0.0.1 user=nobody",
            "--listen",
            "127.0.0.1:0",
            "--public-url",
            "links.example.org",
        ])
        .env_remove("LINKTOKEN_DATABASE_URL")
        .output()
        .expect("run the gateway");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--public-url"));
}
