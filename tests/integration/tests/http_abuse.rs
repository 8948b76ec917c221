//! Abuse of the HTTP front end over raw sockets against the real gateway: slow heads (slowloris),
//! slow bodies, bodies over the limit, oversized heads and malformed or smuggling-shaped
//! requests. Each gets a 4xx (or, where HTTP/1.1 allows it, the connection closed without an
//! answer) and the connection closed; never a 5xx, never two requests out of one message; and
//! normal requests keep being served meanwhile and afterwards. The framing faults the gateway's
//! request screen refuses (Content-Length with Transfer-Encoding, two lengths, bare LF) and
//! those hyper refuses behind it (bad chunks, bare CR, NUL, obs-fold) must be answered 400,
//! also after a good request on the same connection, whose answer comes first and whole.

use linktoken_integration::gateway::{login_role, Gateway};
use linktoken_integration::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What came back on one connection.
struct Seen {
    /// Status of every response, in order.
    statuses: Vec<u16>,
    /// Everything received, as text.
    text: String,
    /// The server closed the connection (EOF or reset) before `limit` ran out.
    closed: bool,
    /// Time until it closed (or until `limit`).
    took: Duration,
}

/// Statuses, closed and time only: the text may hold a token (a form's action), and tokens never
/// go into a failure message.
impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seen")
            .field("statuses", &self.statuses)
            .field("bytes", &self.text.len())
            .field("closed", &self.closed)
            .field("took", &self.took)
            .finish()
    }
}

/// Reads until the server closes the connection or `limit` has passed.
fn read_all(mut s: TcpStream, started: Instant, limit: Duration) -> Seen {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let closed = loop {
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            break false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break false
            }
            Err(_) => break true, // reset
        }
    };
    let text = String::from_utf8_lossy(&buf).into_owned();
    let statuses = text
        .match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect();
    Seen {
        statuses,
        text,
        closed,
        took: started.elapsed(),
    }
}

/// Sends `bytes` in one go (the server may close before taking them all) and reads.
fn exchange(addr: SocketAddr, bytes: &[u8], limit: Duration) -> Seen {
    let started = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    let _ = s.write_all(bytes);
    read_all(s, started, limit)
}

/// A normal request on its own connection: its status, or 0 without an answer.
fn normal(addr: SocketAddr, path: &str) -> u16 {
    http::try_request(addr, "GET", path, &[], b"").map_or(0, |r| r.status)
}

const FORM: &str = "Content-Type: application/x-www-form-urlencoded";
/// A good request that keeps the connection open.
const GOOD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

/// Gateway flags for the malformed-request tests: a long head timeout, so a connection the
/// gateway leaves open stays open past the read limit (and a close is the gateway's decision).
const PATIENT: [&str; 6] = [
    "--header-timeout-ms",
    "30000",
    "--body-timeout-ms",
    "1000",
    "--failed-lookups-per-minute",
    "1000000",
];

async fn setup(prefix: &str, flags: &[&str]) -> (tokio_postgres::Client, String, Gateway) {
    let c = connect().await;
    let (_, url) = login_role(&c, prefix).await;
    let p = purpose(&c, prefix, "1 hour", Some(1)).await;
    let gw = Gateway::start(&url, flags);
    (c, p, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_4xx_and_a_closed_connection() {
    let (c, p, gw) = setup("abuse", &PATIENT).await;
    let addr = gw.addr;
    let token = issue(&c, &p, "victim").await;
    let smuggled = issue(&c, &p, "smuggled").await;
    let link = format!("/t/{token}");
    let limit = Duration::from_secs(10);

    // The control: a well-formed request on a kept-alive connection is answered and the
    // connection stays open for a second one.
    let two = exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        limit,
    );
    assert_eq!(two.statuses, [200, 200], "keep-alive works: {two:?}");

    // A second request hidden in the body by Content-Length, read as chunked: the chunked body
    // is empty, so the visible request is a form without confirmation, and the hidden one
    // (which would redeem `smuggled`) must never run.
    let hidden = format!(
        "POST /t/{smuggled} HTTP/1.1\r\nHost: x\r\n{FORM}\r\nContent-Length: 12\r\n\r\nconfirm=yes"
    );
    let te_body = format!("0\r\n\r\n{hidden}");
    let cl = format!("Content-Length: {}\r\n", te_body.len());
    let te = "Transfer-Encoding: chunked\r\n";
    let head = |fields: &str| format!("POST {link} HTTP/1.1\r\nHost: x\r\n{FORM}\r\n{fields}\r\n");
    // Refused by the request screen or by hyper behind it (a chunked body's fault by the
    // handler that reads it): exactly one answer, a 400, then the connection closed.
    let screened: Vec<(&str, Vec<u8>)> = vec![
        (
            "Content-Length then Transfer-Encoding",
            format!("{}{te_body}", head(&format!("{cl}{te}"))).into_bytes(),
        ),
        (
            "Transfer-Encoding then Content-Length",
            format!("{}{te_body}", head(&format!("{te}{cl}"))).into_bytes(),
        ),
        (
            "two different Content-Lengths",
            format!(
                "{}confirm=yes",
                head("Content-Length: 11\r\nContent-Length: 12\r\n")
            )
            .into_bytes(),
        ),
        (
            "two equal Content-Lengths",
            format!(
                "{}confirm=yes",
                head("Content-Length: 11\r\nContent-Length: 11\r\n")
            )
            .into_bytes(),
        ),
        (
            "bad chunk size",
            format!("{}zz\r\nconfirm=yes\r\n0\r\n\r\n", head(te)).into_bytes(),
        ),
        (
            "chunk size overflow",
            format!("{}ffffffffffffffffff\r\nconfirm=yes\r\n0\r\n\r\n", head(te)).into_bytes(),
        ),
        (
            "chunk data without CRLF",
            format!("{}b\r\nconfirm=yesXX0\r\n\r\n", head(te)).into_bytes(),
        ),
        (
            "NUL in a header",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n".to_vec(),
        ),
        (
            "NUL in the request line",
            b"GET /health\0z HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "bare CR in a header",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n".to_vec(),
        ),
        (
            "obs-fold",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n".to_vec(),
        ),
        (
            "bare LF line ends",
            b"GET /healthz HTTP/1.1\nHost: x\nConnection: close\n\n".to_vec(),
        ),
        (
            "one header ending in a bare LF",
            b"GET /healthz HTTP/1.1\r\nHost: x\nX-A: a\r\n\r\n".to_vec(),
        ),
        (
            "a head ending in a bare LF",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\n".to_vec(),
        ),
        (
            "bare LF hiding a Content-Length",
            format!(
                "POST {link} HTTP/1.1\r\nHost: x\r\n{FORM}\r\nX-A: a\nContent-Length: 5\r\n{te}\r\n{te_body}"
            )
            .into_bytes(),
        ),
    ];
    for (name, bytes) in &screened {
        let seen = exchange(addr, bytes, limit);
        assert!(
            seen.statuses == [400] && seen.closed,
            "{name}: one 400, connection closed: {seen:?}"
        );
        // After a good request on the same connection: its answer first and whole, then the 400.
        let seen = exchange(addr, &[GOOD, bytes.as_slice()].concat(), limit);
        assert!(
            seen.statuses == [200, 400] && seen.closed,
            "{name} after a good request: {seen:?}"
        );
        let ok_end = seen.text.find("\r\n\r\nok\n").expect("the healthz answer");
        assert!(
            seen.text.rfind("HTTP/1.1 400") > Some(ok_end),
            "{name}: the 400 after the whole 200: {seen:?}"
        );
        assert_eq!(
            normal(addr, "/healthz"),
            200,
            "{name}: normal service goes on"
        );
    }

    // Handled by hyper or the handlers: at most one answer, one of `allowed`, then closed.
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        (
            "negative Content-Length",
            head("Content-Length: -1\r\n").into_bytes(),
            &[400],
        ),
        (
            "gzip, chunked",
            format!("{}0\r\n\r\n", head("Transfer-Encoding: gzip, chunked\r\n")).into_bytes(),
            &[400],
        ),
        (
            "two Transfer-Encoding fields",
            format!(
                "{}0\r\n\r\n",
                head("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n")
            )
            .into_bytes(),
            &[400],
        ),
        (
            "Transfer-Encoding in HTTP/1.0",
            format!("POST {link} HTTP/1.0\r\nHost: x\r\n{FORM}\r\n{te}\r\n0\r\n\r\n").into_bytes(),
            &[400],
        ),
        (
            "invalid method",
            b"G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            &[400],
        ),
        (
            "overlong URI",
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(20_000)).into_bytes(),
            &[414, 431],
        ),
        (
            "101 headers",
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
                (0..100)
                    .map(|i| format!("X-{i}: y\r\n"))
                    .collect::<String>()
            )
            .into_bytes(),
            &[431],
        ),
        (
            "a 20 KB header",
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(20_000)
            )
            .into_bytes(),
            &[431],
        ),
        (
            "Content-Length over the limit",
            format!("{}confirm=yes", head("Content-Length: 1000000\r\n")).into_bytes(),
            &[413],
        ),
        (
            "Expect: 100-continue, length over the limit",
            head("Expect: 100-continue\r\nContent-Length: 1000000\r\n").into_bytes(),
            &[413],
        ),
    ];
    for (name, bytes, allowed) in &cases {
        let seen = exchange(addr, bytes, limit);
        assert!(
            seen.statuses.len() <= 1,
            "{name}: one message, at most one answer: {seen:?}"
        );
        if let Some(status) = seen.statuses.first() {
            assert!(
                allowed.contains(status),
                "{name}: expected {allowed:?}: {seen:?}"
            );
        }
        assert!(
            seen.closed,
            "{name}: the gateway closes the connection: {seen:?}"
        );
        assert_eq!(
            normal(addr, "/healthz"),
            200,
            "{name}: normal service goes on"
        );
    }
    // Operators see the screen's refusals by reason (NUL and obs-fold are hyper's now).
    let metrics = http::get(addr, "/metrics").body;
    for reason in ["length_and_chunked", "two_lengths", "bare_lf"] {
        assert!(
            metrics.contains(&format!(
                "linktoken_gateway_malformed_requests_total{{reason=\"{reason}\"}}"
            )),
            "{reason} counted: {metrics}"
        );
    }

    // Chunked over the limit, no length at all: sent chunk by chunk until the gateway answers.
    let mut s = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    let _ = s.write_all(head(te).as_bytes());
    let chunk = format!("400\r\n{}\r\n", "a".repeat(1024));
    s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    for _ in 0..200 {
        if s.peek(&mut [0u8; 1]).is_ok() || s.write_all(chunk.as_bytes()).is_err() {
            break;
        }
    }
    let seen = read_all(s, started, limit);
    // Closing with unread bytes may reset the connection before the 413 arrives.
    assert!(
        seen.statuses.iter().all(|s| *s == 413) && seen.closed,
        "chunked over the limit: {seen:?}"
    );

    assert_eq!(
        peek_status(&c, &token, &p).await,
        "ok",
        "nothing redeemed the visible token"
    );
    assert_eq!(
        peek_status(&c, &smuggled, &p).await,
        "ok",
        "the request hidden in a body never ran"
    );
    assert_eq!(
        http::post_form(addr, &link, &[("confirm", "yes")]).status,
        200,
        "and the link still works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_get_408_and_a_closed_connection() {
    let (c, p, gw) = setup("abuseslow", &PATIENT).await;
    let addr = gw.addr;
    let token = issue(&c, &p, "slow").await;
    let head = |fields: &str| {
        format!("POST /t/{token} HTTP/1.1\r\nHost: x\r\n{FORM}\r\n{fields}\r\n").into_bytes()
    };
    let bodies: [(&str, Vec<u8>, &[u8]); 2] = [
        ("Content-Length", head("Content-Length: 100\r\n"), b"confi"),
        (
            "chunked",
            head("Transfer-Encoding: chunked\r\n"),
            b"5\r\nconfi\r\n",
        ),
    ];
    for (name, head, part) in bodies {
        let started = Instant::now();
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&head).unwrap();
        // A byte every 300 ms: never idle long, but the body takes far longer than allowed.
        let mut open = true;
        for b in part {
            open = open && s.write_all(&[*b]).is_ok();
            std::thread::sleep(Duration::from_millis(300));
        }
        let seen = read_all(s, started, Duration::from_secs(10));
        assert_eq!(
            seen.statuses,
            [408],
            "{name}: {seen:?} (still writing: {open})"
        );
        assert!(
            seen.closed && seen.took < Duration::from_secs(6),
            "{name}: closed within the body timeout (1 s) and slack: {seen:?}"
        );
    }
    assert_eq!(peek_status(&c, &token, &p).await, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_and_others_served() {
    let (c, p, gw) = setup(
        "abuseloris",
        &["--header-timeout-ms", "1000", "--pool-size", "4"],
    )
    .await;
    let addr = gw.addr;
    let token = issue(&c, &p, "loris").await;
    let landing = format!("/t/{token}");
    // Three kinds, 50 of each: far more connections than the pool or the runtime's threads.
    let started = Instant::now();
    let slow: Vec<_> = (0..150)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let t0 = Instant::now();
                match i % 3 {
                    0 => {} // connect, send nothing
                    1 => {
                        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
                    }
                    _ => {
                        // One byte every 250 ms, for up to 10 s.
                        s.set_nonblocking(true).unwrap();
                        for b in b"GET /healthz HTTP/1.1\r\nHost: xxxxxxxxxxxxxxxxxxxxx\r\n" {
                            if s.write_all(&[*b]).is_err() || matches!(s.read(&mut [0u8; 1]), Ok(0))
                            {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(250));
                        }
                        s.set_nonblocking(false).unwrap();
                    }
                }
                (i % 3, read_all(s, t0, Duration::from_secs(10)))
            })
        })
        .collect();
    // Meanwhile, and afterwards, normal requests are served.
    let mut normal_statuses = Vec::new();
    while started.elapsed() < Duration::from_millis(2500) {
        normal_statuses.push(normal(addr, &landing));
        normal_statuses.push(normal(addr, "/healthz"));
        std::thread::sleep(Duration::from_millis(50));
    }
    for t in slow {
        let (kind, seen) = t.join().unwrap();
        assert!(
            seen.statuses.iter().all(|s| (400..500).contains(s)),
            "kind {kind}: no answer but a 4xx to an unfinished head: {seen:?}"
        );
        assert!(
            seen.closed && seen.took < Duration::from_secs(6),
            "kind {kind}: closed within the head timeout (1 s) and slack: {seen:?}"
        );
    }
    assert!(
        normal_statuses.iter().all(|s| *s == 200),
        "normal requests during the attack: {normal_statuses:?}"
    );
    assert_eq!(normal(addr, &landing), 200);
    assert_eq!(
        http::post_form(addr, &landing, &[("confirm", "yes")]).status,
        200
    );
}
