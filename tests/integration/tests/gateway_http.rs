//! The real gateway process against the real database: routes, statuses, headers, limits,
//! one-click unsubscribe, mail-scanner behaviour, a 50-way POST race, and its log.

use linktoken_integration::gateway::{self, Gateway};
use linktoken_integration::http::{self, Reply};
use linktoken_integration::*;
use std::net::SocketAddr;
use tokio_postgres::Client;

/// A login role that is only IN ROLE linktoken_gateway, and a connection string for it.
async fn gateway_role(admin: &Client) -> String {
    gateway::login_role(admin, "gwhttp").await.1
}

/// A purpose with a password form (12+ characters, repeated) and an action that stores it.
async fn reset_purpose(c: &Client) -> (String, String) {
    let (p, schema) = purpose_with_action(
        c,
        "gwreset",
        "CREATE TABLE {schema}.done (subject text, password text);",
        "IF form->>'password' = 'rejected-by-action' THEN
           RAISE EXCEPTION 'The action says no.' USING ERRCODE = 'P0001';
         END IF;
         INSERT INTO {schema}.done VALUES (subject, form->>'password');
         RETURN jsonb_build_object('session', jsonb_build_object('name', 'sid', 'value', 'abc123', 'max_age', 60));",
    )
    .await;
    c.execute(
        r#"SELECT linktoken.set_page($1, '{"title": "Choose a new password", "button": "Set password",
            "fields": [{"name": "password", "type": "password", "label": "New password", "required": true, "minlength": 12},
                       {"name": "password2", "type": "password", "label": "Repeat it", "required": true, "same_as": "password"}]}')"#,
        &[&p],
    )
    .await
    .unwrap();
    (p, schema)
}

const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("cache-control", "no-store"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("x-robots-tag", "noindex"),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
];

fn assert_security_headers(r: &Reply, what: &str) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(r.header(name), Some(value), "{what}: header {name}");
    }
}

fn path(token: &str) -> String {
    format!("/t/{token}")
}

fn assert_no_token_in_log(gw: &Gateway, tokens: &[&str]) {
    let log = gw.log().join("\n");
    assert!(log.contains("access "), "the gateway wrote an access log");
    for t in tokens {
        assert!(!log.contains(&t[4..]), "the gateway log holds a raw token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landing_page_form_redeem_and_statuses() {
    let c = connect().await;
    let url = gateway_role(&c).await;
    let (p, schema) = reset_purpose(&c).await;
    let gw = Gateway::start(&url, &[]);
    let addr = gw.addr;
    let token = issue(&c, &p, "user:7").await;

    // GET shows the form and changes nothing; HEAD gives the same status and headers, no body.
    let page = http::get(addr, &path(&token));
    assert_eq!(page.status, 200);
    assert_security_headers(&page, "landing");
    assert!(
        page.body.contains("<form") && page.body.contains("method=\"post\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("Choose a new password"));
    assert!(!page.body.to_ascii_lowercase().contains("<script"));
    assert!(!page.body.to_ascii_lowercase().contains("http-equiv"));
    let head = http::request(addr, "HEAD", &path(&token), &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.body, "");
    assert_eq!(head.header("content-type"), page.header("content-type"));
    assert_eq!(peek_status(&c, &token, &p).await, "ok");

    // Input the purpose rejects: 422, the form again with the message, nothing consumed.
    let short = http::post_form(
        addr,
        &path(&token),
        &[("password", "short"), ("password2", "short")],
    );
    assert_eq!(short.status, 422);
    assert!(
        short.body.contains("at least 12 characters"),
        "{}",
        short.body
    );
    assert!(short.body.contains("<form"));
    assert_security_headers(&short, "422");
    let by_action = http::post_form(
        addr,
        &path(&token),
        &[
            ("password", "rejected-by-action"),
            ("password2", "rejected-by-action"),
        ],
    );
    assert_eq!(by_action.status, 422);
    assert!(by_action.body.contains("The action says no."));
    assert_eq!(peek_status(&c, &token, &p).await, "ok");

    // The real thing: success page with the action's session cookie.
    let good = [
        ("password", "correct horse battery"),
        ("password2", "correct horse battery"),
    ];
    let ok = http::post_form(addr, &path(&token), &good);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let cookie = ok.header("set-cookie").expect("session cookie");
    assert!(
        cookie.starts_with("sid=abc123")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
    );
    let stored: i64 = c
        .query_one(&format!("SELECT count(*) FROM {schema}.done"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);

    // Used now: 410 for GET and POST, saying it was already done.
    let again = http::get(addr, &path(&token));
    assert_eq!(again.status, 410);
    assert!(again.body.contains("already"), "{}", again.body);
    assert_eq!(http::post_form(addr, &path(&token), &good).status, 410);

    // Unknown and malformed tokens: 404; revoked: 410.
    let unknown = token::unknown();
    assert_eq!(http::get(addr, &path(&unknown)).status, 404);
    assert_eq!(http::get(addr, "/t/not-a-token").status, 404);
    let revoked = issue(&c, &p, "user:8").await;
    c.execute("SELECT linktoken.revoke($1)", &[&revoked])
        .await
        .unwrap();
    assert_eq!(http::get(addr, &path(&revoked)).status, 410);

    // Health and metrics.
    assert_eq!(http::get(addr, "/healthz").status, 200);
    let metrics = http::get(addr, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .body
        .contains("linktoken_gateway_requests_total{route=\"link\",status=\"200\"}"));
    assert!(metrics
        .body
        .contains("linktoken_gateway_redemptions_total{status=\"ok\"} 1"));
    assert!(!metrics.body.contains(&token[4..]));
    let css = http::get(addr, "/static/style.css");
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));

    assert_no_token_in_log(&gw, &[&token, &revoked]);
}

mod token {
    /// A well-formed token (valid checksum) that was never issued.
    pub fn unknown() -> String {
        linktoken_core::token::generate(32).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_methods() {
    let c = connect().await;
    let url = gateway_role(&c).await;
    let p = purpose(&c, "gwlim", "1 hour", Some(1)).await;
    let gw = Gateway::start(&url, &["--failed-lookups-per-minute", "3"]);
    let addr = gw.addr;
    let token = issue(&c, &p, "s").await;

    let put = http::request(addr, "PUT", &path(&token), &[], b"x");
    assert_eq!(put.status, 405);
    assert_eq!(put.header("allow"), Some("GET, HEAD, POST"));
    assert_security_headers(&put, "405");
    let json = http::request(
        addr,
        "POST",
        &path(&token),
        &["Content-Type: application/json"],
        b"{}",
    );
    assert_eq!(json.status, 415);
    let big = vec![b'a'; 70 * 1024];
    let too_big = http::request(
        addr,
        "POST",
        &path(&token),
        &["Content-Type: application/x-www-form-urlencoded"],
        &big,
    );
    assert_eq!(too_big.status, 413);
    // Chunked, no Content-Length, over the limit.
    let mut chunked = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
        path(&token)
    )
    .into_bytes();
    for _ in 0..70 {
        chunked.extend_from_slice(b"400\r\n");
        chunked.extend_from_slice(&[b'a'; 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = http::raw(addr, &chunked);
    // The gateway may answer 413 and close before reading everything; either way, 413.
    if let Ok(r) = r {
        assert_eq!(r.status, 413);
    }
    assert_eq!(
        peek_status(&c, &token, &p).await,
        "ok",
        "nothing consumed by any of it"
    );

    // Failed lookups from one address: 3 allowed, then 429 with Retry-After.
    for _ in 0..3 {
        assert_eq!(http::get(addr, "/t/ltk_nothing_here").status, 404);
    }
    let limited = http::get(addr, "/t/ltk_nothing_here");
    assert_eq!(limited.status, 429);
    assert!(
        limited
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_security_headers(&limited, "429");
    assert_eq!(http::get(addr, "/nowhere").status, 404);
    assert_eq!(
        http::request(addr, "POST", "/healthz", &[], b"").status,
        405
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_unsubscribe_rfc8058() {
    let c = connect().await;
    let url = gateway_role(&c).await;
    let p = purpose(&c, "gwunsub", "365 days", None).await;
    c.execute(
        r#"SELECT linktoken.set_page($1, '{"title": "Unsubscribe", "one_click": true}')"#,
        &[&p],
    )
    .await
    .unwrap();
    let gw = Gateway::start(&url, &[]);
    let addr = gw.addr;
    let token = issue(&c, &p, "list:1").await;
    // GET is a landing page that does not unsubscribe.
    assert_eq!(http::get(addr, &path(&token)).status, 200);
    let before: i32 = c
        .query_one(
            "SELECT use_count FROM linktoken.tokens WHERE purpose = $1",
            &[&p],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, 0);
    for _ in 0..2 {
        let r = http::request(
            addr,
            "POST",
            &path(&token),
            &["Content-Type: application/x-www-form-urlencoded"],
            b"List-Unsubscribe=One-Click",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("location"), None);
    }
    let multipart = b"--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
    let r = http::request(
        addr,
        "POST",
        &path(&token),
        &["Content-Type: multipart/form-data; boundary=XyZ"],
        multipart,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let after: i32 = c
        .query_one(
            "SELECT use_count FROM linktoken.tokens WHERE purpose = $1",
            &[&p],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(after, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_scanners_never_consume_a_link() {
    let c = connect().await;
    let url = gateway_role(&c).await;
    let p = purpose(&c, "gwscan", "1 hour", Some(1)).await;
    c.execute(r#"SELECT linktoken.set_page($1, '{"title": "Sign in", "confirm_label": "Yes, sign me in"}')"#, &[&p])
        .await
        .unwrap();
    let gw = Gateway::start(&url, &[]);
    let addr = gw.addr;
    let token = issue(&c, &p, "user:1").await;
    let old_chrome = "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/97.0.4692.71 Safari/537.36";

    // Safe Links style: HEAD, then two GETs without cookies, then a POST of the form as it is.
    assert_eq!(
        http::request(addr, "HEAD", &path(&token), &[old_chrome], b"").status,
        200
    );
    let first = http::request(addr, "GET", &path(&token), &[old_chrome], b"");
    assert_eq!(first.status, 200);
    std::thread::sleep(std::time::Duration::from_millis(134));
    assert_eq!(
        http::request(addr, "GET", &path(&token), &[old_chrome], b"").status,
        200
    );
    assert!(
        first.body.contains("name=\"confirm\""),
        "the page needs a confirmation: {}",
        first.body
    );
    let auto = http::request(
        addr,
        "POST",
        &path(&token),
        &[
            old_chrome,
            "Content-Type: application/x-www-form-urlencoded",
        ],
        b"",
    );
    assert_eq!(auto.status, 422, "a default-values submit is refused");
    assert_eq!(
        peek_status(&c, &token, &p).await,
        "ok",
        "after all scanner traffic the link is unused"
    );

    // Then the person.
    let human = http::post_form(addr, &path(&token), &[("confirm", "yes")]);
    assert_eq!(human.status, 200);
    assert_eq!(peek_status(&c, &token, &p).await, "used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_posts_one_success_no_5xx() {
    let c = connect().await;
    let url = gateway_role(&c).await;
    let p = purpose(&c, "gwrace", "1 hour", Some(1)).await;
    // All 50 come from one address, so the per-client in-flight cap (10 with this pool) is
    // lifted: this test is about the race, the cap has its own (gateway_security.rs).
    let gw = Gateway::start(
        &url,
        &["--pool-size", "20", "--max-in-flight-per-client", "0"],
    );
    let addr: SocketAddr = gw.addr;
    let token = issue(&c, &p, "user:1").await;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(50));
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let (barrier, path) = (barrier.clone(), path(&token));
            std::thread::spawn(move || {
                barrier.wait();
                http::post_form(addr, &path, &[("confirm", "yes")]).status
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 410).count(),
        49,
        "{statuses:?}"
    );
    assert_no_token_in_log(&gw, &[&token]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_gateway() {
    let c = connect().await;
    let url = gateway_role(&c).await;
    let mut gw = Gateway::start(&url, &[]);
    assert_eq!(http::get(gw.addr, "/healthz").status, 200);
    assert!(gw.terminate(), "the gateway exits on SIGTERM");
    assert!(gw.log().iter().any(|l| l.contains("shutting down")));
}

/// A purpose whose action takes `seconds` (pg_sleep), to hold a connection or a request open.
async fn slow_purpose(c: &Client, seconds: f64) -> String {
    purpose_with_action(
        c,
        "gwslow",
        "",
        &format!("PERFORM pg_sleep({seconds}); RETURN NULL;"),
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_pool_answers_503_fast_not_a_hang() {
    let c = connect().await;
    let url = gateway_role(&c).await;
    let p = slow_purpose(&c, 2.0).await;
    let gw = Gateway::start(&url, &["--pool-size", "1", "--pool-wait-ms", "300"]);
    let addr = gw.addr;
    let busy = issue(&c, &p, "busy").await;
    let other = issue(&c, &p, "other").await;
    // One slow redemption holds the only connection...
    let holder = std::thread::spawn(move || {
        http::post_form(addr, &format!("/t/{busy}"), &[("confirm", "yes")]).status
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    // ... so another request gets 503 after the pool wait, well before the holder finishes.
    let started = std::time::Instant::now();
    let r = http::get(addr, &path(&other));
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(holder.join().unwrap(), 200);
    // And once the connection is free again, service is normal.
    assert_eq!(http::get(addr, &path(&other)).status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_redemption_finish() {
    let c = connect().await;
    let url = gateway_role(&c).await;
    let p = slow_purpose(&c, 1.0).await;
    let mut gw = Gateway::start(&url, &[]);
    let addr = gw.addr;
    let token = issue(&c, &p, "inflight").await;
    let t = token.clone();
    let in_flight = std::thread::spawn(move || {
        http::post_form(addr, &format!("/t/{t}"), &[("confirm", "yes")]).status
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(gw.terminate(), "the gateway exits after SIGTERM");
    assert_eq!(
        in_flight.join().unwrap(),
        200,
        "the request in flight was answered"
    );
    assert_eq!(peek_status(&c, &token, &p).await, "used");
    // New connections are refused once it has stopped.
    assert!(std::net::TcpStream::connect(addr).is_err());
}
