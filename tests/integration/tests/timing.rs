//! Timing side channel: do response times tell a token that was never issued apart from one
//! that was?
//!
//! Method (dudect-style, see docs/security-testing.md): response-time samples of six classes of
//! token, taken in rounds in which the classes come in a fresh random order (so drift in machine
//! load hits all classes alike), at the SQL level (`linktoken.peek` and `linktoken.redeem` as
//! prepared statements on one connection) and over HTTP (GET of the real gateway's landing
//! page). Each class is compared with the random class by Welch's t-statistic, on all samples
//! and on the samples below the pair's 90th percentile (dudect's cropping, which removes the
//! heavy tail that scheduling noise adds).
//!
//! Classes: `random` (well-formed, never issued), `unknown` (an issued token with its last two
//! secret bytes changed and the checksum recomputed: one lookup away from a real row),
//! `expired`, `used`, `revoked`, and `malformed` (a random token with one character changed:
//! wrong checksum).
//!
//! Asserted: |t| < T_MAX for `unknown` against `random`: both answer `invalid`, and the time
//! must not say more. Reported only: `expired`, `used` and `revoked` answer with their own
//! status, so their time may differ without telling more than the answer does; `malformed` is
//! refused before any lookup on public information (anyone can compute the checksum), so it is
//! faster by design, and over HTTP (no database round trip at all) it serves as the positive
//! control: the samples must show that difference with |t| >= T_MAX, or the run was too noisy
//! to prove anything and fails.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use linktoken_core::token;
use linktoken_integration::gateway::{login_role, Gateway};
use linktoken_integration::http;
use linktoken_integration::*;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// dudect and `cuts` call a leak at |t| > 10: with thousands of samples a real difference of a
/// few percent of the response time gives t in the tens, while |t| < 10 is what interleaved
/// samples of one process give even on a busy machine (a 4.5 threshold, dudect's "maybe",
/// would be crossed by scheduler noise alone now and then).
const T_MAX: f64 = 10.0;
/// Rounds (one sample of every class each) and time limits per measurement.
const SQL_ROUNDS: usize = 3000;
const SQL_TIME: Duration = Duration::from_secs(18);
const HTTP_ROUNDS: usize = 600;
const HTTP_TIME: Duration = Duration::from_secs(15);
const WARMUP_ROUNDS: usize = 50;
/// Fewer samples than this per class and the figures mean nothing: fail rather than pass.
const MIN_SAMPLES: usize = 300;
/// Issued tokens per stateful class, cycled through (so no single row stays hot).
const POOL: usize = 64;

/// One measurement at a time: the tests of this file would otherwise load the machine for each
/// other, and their samples would measure that.
static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Random,
    Unknown,
    Expired,
    Used,
    Revoked,
    Malformed,
}

const CLASSES: [Class; 6] = [
    Class::Random,
    Class::Unknown,
    Class::Expired,
    Class::Used,
    Class::Revoked,
    Class::Malformed,
];

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Random => "random",
            Class::Unknown => "unknown",
            Class::Expired => "expired",
            Class::Used => "used",
            Class::Revoked => "revoked",
            Class::Malformed => "malformed",
        }
    }

    /// The status linktoken answers for this class.
    fn status(self) -> &'static str {
        match self {
            Class::Random | Class::Unknown | Class::Malformed => "invalid",
            Class::Expired => "expired",
            Class::Used => "used",
            Class::Revoked => "revoked",
        }
    }

    /// Classes whose time must not differ from a random token's (same status, and a lookup
    /// that differs only in secret bits).
    fn asserted(self) -> bool {
        self == Class::Unknown
    }
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("random bytes");
    u64::from_le_bytes(b)
}

/// The classes in a fresh random order (Fisher-Yates).
fn shuffled() -> [Class; 6] {
    let mut order = CLASSES;
    for i in (1..order.len()).rev() {
        order.swap(i, (random_u64() % (i as u64 + 1)) as usize);
    }
    order
}

/// Where the tokens of each class come from. Tokens exist only in memory and as bind
/// parameters.
struct Tokens {
    base_secret: Vec<u8>,
    expired: Vec<String>,
    used: Vec<String>,
    revoked: Vec<String>,
    next: usize,
}

impl Tokens {
    async fn make(c: &Client, purpose: &str) -> Tokens {
        let base = issue(c, purpose, &format!("timing-base-{}", tag())).await;
        let raw = URL_SAFE_NO_PAD
            .decode(&base[token::PREFIX.len()..])
            .expect("an issued token is base64url");
        let base_secret = raw[..raw.len() - 4].to_vec();
        let batch =
            |what: &'static str| (0..POOL).map(move |i| format!("timing-{what}-{i}-{}", tag()));
        let mut expired = vec![];
        for s in batch("expired") {
            let t: String = c
                .query_one(
                    "SELECT linktoken.issue($1, $2, ttl => '1 millisecond')",
                    &[&purpose, &s],
                )
                .await
                .unwrap()
                .get(0);
            expired.push(t);
        }
        let mut used = vec![];
        for s in batch("used") {
            let t = issue(c, purpose, &s).await;
            assert_eq!(redeem_status(c, &t, purpose).await, "ok");
            used.push(t);
        }
        let mut revoked = vec![];
        for s in batch("revoked") {
            let t = issue(c, purpose, &s).await;
            let done: bool = c
                .query_one("SELECT linktoken.revoke($1)", &[&t])
                .await
                .unwrap()
                .get(0);
            assert!(done);
            revoked.push(t);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        Tokens {
            base_secret,
            expired,
            used,
            revoked,
            next: 0,
        }
    }

    fn get(&mut self, class: Class) -> String {
        self.next += 1;
        let i = self.next % POOL;
        match class {
            Class::Random => token::generate(32).expect("random bytes"),
            Class::Unknown => {
                let mut secret = self.base_secret.clone();
                let n = secret.len();
                let old = (secret[n - 2], secret[n - 1]);
                while (secret[n - 2], secret[n - 1]) == old {
                    let r = random_u64();
                    secret[n - 2] = r as u8;
                    secret[n - 1] = (r >> 8) as u8;
                }
                token::encode(&secret)
            }
            Class::Expired => self.expired[i].clone(),
            Class::Used => self.used[i].clone(),
            Class::Revoked => self.revoked[i].clone(),
            Class::Malformed => {
                let mut t = token::generate(32).expect("random bytes").into_bytes();
                let last = t.len() - 1;
                t[last] = if t[last] == b'A' { b'B' } else { b'A' };
                let t = String::from_utf8(t).expect("ASCII");
                assert!(token::validate(&t).is_err());
                t
            }
        }
    }
}

/// Response times of each class in microseconds, in CLASSES order.
type Samples = [Vec<f64>; 6];

fn index(class: Class) -> usize {
    CLASSES.iter().position(|&c| c == class).unwrap()
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// Welch's t-statistic of the means of a and b.
fn welch_t(a: &[f64], b: &[f64]) -> f64 {
    let (ma, va) = mean_var(a);
    let (mb, vb) = mean_var(b);
    (ma - mb) / (va / a.len() as f64 + vb / b.len() as f64).sqrt()
}

fn median(x: &[f64]) -> f64 {
    let mut s = x.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

/// The samples of a and b below the 90th percentile of both together.
fn cropped(a: &[f64], b: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut all: Vec<f64> = a.iter().chain(b).copied().collect();
    all.sort_by(f64::total_cmp);
    let limit = all[all.len() * 9 / 10];
    let keep = |x: &[f64]| {
        x.iter()
            .copied()
            .filter(|&v| v <= limit)
            .collect::<Vec<_>>()
    };
    (keep(a), keep(b))
}

/// Welch's t of x against y, on all samples and on the samples below their 90th percentile.
fn t_pair(x: &[f64], y: &[f64]) -> (f64, f64) {
    let (cx, cy) = cropped(x, y);
    (welch_t(x, y), welch_t(&cx, &cy))
}

/// One line per class against random; returns the failures of asserted classes.
fn report(what: &str, samples: &Samples) -> Vec<String> {
    let random = &samples[index(Class::Random)];
    println!(
        "{what}: {} samples per class; random: median {:.0} us, mean {:.0} us",
        random.len(),
        median(random),
        mean_var(random).0
    );
    println!("  class      median_us  mean_us  diff_mean_us   t_all  t_cropped  asserted");
    let mut failures = vec![];
    for class in CLASSES.into_iter().filter(|&c| c != Class::Random) {
        let x = &samples[index(class)];
        let (t_all, t_crop) = t_pair(x, random);
        let diff = mean_var(x).0 - mean_var(random).0;
        println!(
            "  {:<10} {:>9.0} {:>8.0} {:>13.1} {:>7.2} {:>10.2}  {}",
            class.name(),
            median(x),
            mean_var(x).0,
            diff,
            t_all,
            t_crop,
            if class.asserted() {
                "|t| < 10"
            } else {
                "no (status differs or by design)"
            }
        );
        if class.asserted() && (t_all.abs() >= T_MAX || t_crop.abs() >= T_MAX) {
            failures.push(format!(
                "{what}: {} vs random: t {t_all:.2} (cropped {t_crop:.2}), mean difference {diff:.1} us",
                class.name()
            ));
        }
    }
    failures
}

fn enough(what: &str, samples: &Samples) {
    for (class, x) in CLASSES.iter().zip(samples) {
        assert!(
            x.len() >= MIN_SAMPLES,
            "{what}: only {} samples of {} in the time limit (machine too busy to measure)",
            x.len(),
            class.name()
        );
    }
}

async fn measure_sql(c: &Client, sql: &str, purpose: &str, tokens: &mut Tokens) -> Samples {
    let stmt = c.prepare(sql).await.unwrap();
    let mut samples: Samples = Default::default();
    let deadline = Instant::now() + SQL_TIME;
    for round in 0..WARMUP_ROUNDS + SQL_ROUNDS {
        if Instant::now() > deadline {
            break;
        }
        // Tokens made before any is timed, so the client does the same work around each query.
        let round_tokens = shuffled().map(|class| (class, tokens.get(class)));
        for (class, tok) in round_tokens {
            let start = Instant::now();
            let row = c.query_one(&stmt, &[&tok, &purpose]).await;
            let elapsed = start.elapsed();
            let status: String = row.unwrap_or_else(|e| panic!("{}", describe(&e))).get(0);
            assert_eq!(status, class.status(), "{} ({sql})", class.name());
            if round >= WARMUP_ROUNDS {
                samples[index(class)].push(elapsed.as_secs_f64() * 1e6);
            }
        }
    }
    samples
}

fn measure_http(gw: &Gateway, mut tokens: Tokens) -> Samples {
    let mut samples: Samples = Default::default();
    let deadline = Instant::now() + HTTP_TIME;
    for round in 0..WARMUP_ROUNDS + HTTP_ROUNDS {
        if Instant::now() > deadline {
            break;
        }
        let round_paths = shuffled().map(|class| (class, format!("/t/{}", tokens.get(class))));
        for (class, path) in round_paths {
            let start = Instant::now();
            let reply = http::get(gw.addr, &path);
            let elapsed = start.elapsed();
            let want = if class.status() == "invalid" {
                404
            } else {
                410
            };
            assert_eq!(reply.status, want, "GET of a {} token", class.name());
            if round >= WARMUP_ROUNDS {
                samples[index(class)].push(elapsed.as_secs_f64() * 1e6);
            }
        }
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tokens_take_as_long_as_random_ones() {
    let _alone = MEASURING.lock().await;
    let admin = connect().await;
    let p = purpose(&admin, "timing", "1 hour", Some(1)).await;
    let mut tokens = Tokens::make(&admin, &p).await;
    let (role, url) = login_role(&admin, "timing").await;
    let gw_client = connect_as(&role).await;

    let mut failures = vec![];
    let peek = measure_sql(
        &gw_client,
        "SELECT status FROM linktoken.peek($1, $2)",
        &p,
        &mut tokens,
    )
    .await;
    enough("SQL peek", &peek);
    failures.extend(report("SQL peek", &peek));
    let redeem = measure_sql(
        &gw_client,
        "SELECT status FROM linktoken.redeem($1, $2)",
        &p,
        &mut tokens,
    )
    .await;
    enough("SQL redeem", &redeem);
    failures.extend(report("SQL redeem", &redeem));

    let gw = Gateway::start(&url, &["--failed-lookups-per-minute", "4000000000"]);
    let (gw, landing) = tokio::task::spawn_blocking(move || {
        let s = measure_http(&gw, tokens);
        (gw, s)
    })
    .await
    .unwrap();
    drop(gw);
    enough("HTTP GET /t/{token}", &landing);
    failures.extend(report("HTTP GET /t/{token}", &landing));

    drop(gw_client);
    let _ = admin.batch_execute(&format!("DROP ROLE {role}")).await;
    assert!(failures.is_empty(), "timing differs: {failures:#?}");

    // The method must be able to see a difference at all: a malformed token skips the
    // database round trip in the gateway (a few hundred microseconds), which these samples
    // must show as |t| >= 10. If not, the machine was too noisy for the check above to mean
    // anything, and that is a failure too.
    let malformed = &landing[index(Class::Malformed)];
    let random = &landing[index(Class::Random)];
    let (t_all, t_crop) = t_pair(malformed, random);
    let power = t_all.abs().max(t_crop.abs());
    assert!(
        power >= T_MAX,
        "too noisy to measure: a skipped database round trip gave only |t| = {power:.2}"
    );
}

// ---------------------------------------------------------------------------------------------
// The request form: POST /request/{purpose} with a known identifier issues a token, seals it and
// queues a mail; with an unknown one it only counts the request. The gateway pads every answer
// to --request-min-duration, so the time must not tell the two apart. Two classes, `known`
// (each sample a different known person, so none is throttled or capped) and `unknown` (a
// fresh address each time), in rounds in a fresh random order, compared with the Welch test
// above, never at the same time as the token measurement.
//
// The resolver sleeps 5 ms for known identifiers, as an application's slower lookup would, so
// the difference the padding must hide is large and certain. Positive control: the same
// classes on a gateway with --request-min-duration 0 must show it (|t| >= T_MAX), or the
// samples could not have seen a leak and the test fails.

/// The padding in this test: well above the known path's time (about 15 ms here, in the debug
/// build), small enough for enough samples.
const REQUEST_MIN_DURATION: &str = "60ms";
const REQUEST_ROUNDS: usize = 400;
const REQUEST_TIME: Duration = Duration::from_secs(45);
const REQUEST_WARMUP_ROUNDS: usize = 10;
const CONTROL_ROUNDS: usize = 300;
const CONTROL_TIME: Duration = Duration::from_secs(15);
/// Known people: more than both measurements can use.
const KNOWN_PEOPLE: usize = 1000;

/// A purpose with a resolver over KNOWN_PEOPLE users `known-<i>@<tag>.example`, sleeping 5 ms
/// for those it finds.
async fn request_purpose(c: &Client) -> (String, String) {
    let schema = format!("it_timing_rq_{}", tag());
    c.batch_execute(&format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.users (email text PRIMARY KEY);
         INSERT INTO {schema}.users SELECT 'known-' || i || '@{schema}.example'
           FROM generate_series(1, {KNOWN_PEOPLE}) i;
         CREATE FUNCTION {schema}.find(identifier text, OUT subject text, OUT address text)
         LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_catalog, pg_temp AS $$
         BEGIN
           SELECT u.email, u.email INTO subject, address FROM {schema}.users u WHERE u.email = identifier;
           IF FOUND THEN PERFORM pg_sleep(0.005); END IF;
         END $$;"
    ))
    .await
    .expect("create the resolver");
    let purpose = format!("timing_rq_{}", tag());
    c.execute(
        "SELECT linktoken.define_purpose($1, '1 hour', resolver => $2::text::regprocedure)",
        &[&purpose, &format!("{schema}.find(text)")],
    )
    .await
    .expect("define the purpose");
    // Any key will do (nothing here opens a message), but never replace another test's key.
    c.batch_execute(
        "SELECT linktoken.set_mailer_key(sha256('timing'))
         WHERE NOT EXISTS (SELECT FROM linktoken.mailer_keys WHERE retired_at IS NULL)",
    )
    .await
    .expect("a mailer key");
    (purpose, schema)
}

/// Response times of (known, unknown) requests, in microseconds; every answer must be the
/// same 200 page.
fn measure_requests(
    gw: &Gateway,
    purpose: &str,
    schema: &str,
    next_known: &mut usize,
    rounds: usize,
    time: Duration,
) -> [Vec<f64>; 2] {
    let path = format!("/request/{purpose}");
    let mut samples: [Vec<f64>; 2] = Default::default();
    let mut first_body: Option<String> = None;
    let deadline = Instant::now() + time;
    for round in 0..REQUEST_WARMUP_ROUNDS + rounds {
        if Instant::now() > deadline {
            break;
        }
        *next_known += 1;
        assert!(
            *next_known <= KNOWN_PEOPLE,
            "more samples than known people"
        );
        let identifiers = [
            format!("known-{next_known}@{schema}.example"),
            format!("unknown-{}@{schema}.example", tag()),
        ];
        let order = if random_u64().is_multiple_of(2) {
            [0, 1]
        } else {
            [1, 0]
        };
        for class in order {
            let start = Instant::now();
            let reply = http::post_form(gw.addr, &path, &[("identifier", &identifiers[class])]);
            let elapsed = start.elapsed();
            assert_eq!(reply.status, 200, "{}", reply.body);
            let first = first_body.get_or_insert_with(|| reply.body.clone());
            assert_eq!(&reply.body, first, "the same page for every identifier");
            if round >= REQUEST_WARMUP_ROUNDS {
                samples[class].push(elapsed.as_secs_f64() * 1e6);
            }
        }
    }
    samples
}

/// Prints the comparison; returns (t on all samples, t cropped).
fn report_requests(what: &str, [known, unknown]: &[Vec<f64>; 2]) -> (f64, f64) {
    for (name, x) in [("known", known), ("unknown", unknown)] {
        assert!(
            x.len() >= MIN_SAMPLES,
            "{what}: only {} samples of {name} in the time limit (machine too busy to measure)",
            x.len()
        );
    }
    let (t_all, t_crop) = t_pair(known, unknown);
    println!(
        "{what}: {} samples per class; known median {:.0} us, mean {:.0} us; unknown median {:.0} us, mean {:.0} us; t {t_all:.2}, cropped {t_crop:.2}",
        known.len(),
        median(known),
        mean_var(known).0,
        median(unknown),
        mean_var(unknown).0
    );
    (t_all, t_crop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_identifiers_take_as_long_as_unknown_ones() {
    let _alone = MEASURING.lock().await;
    let admin = connect().await;
    let (p, schema) = request_purpose(&admin).await;
    let (role, url) = login_role(&admin, "timing_rq").await;
    let unlimited = [
        "--requests-per-minute",
        "4000000000",
        "--max-in-flight-per-client",
        "0",
    ];
    let gateway = |min: &'static str| {
        let mut args = vec!["--request-min-duration", min];
        args.extend_from_slice(&unlimited);
        Gateway::start(&url, &args)
    };
    let padded_gw = gateway(REQUEST_MIN_DURATION);
    let control_gw = gateway("0");
    let (p2, schema2) = (p.clone(), schema.clone());
    let (padded, control, known_sent) = tokio::task::spawn_blocking(move || {
        let mut next_known = 0;
        let padded = measure_requests(
            &padded_gw,
            &p2,
            &schema2,
            &mut next_known,
            REQUEST_ROUNDS,
            REQUEST_TIME,
        );
        let control = measure_requests(
            &control_gw,
            &p2,
            &schema2,
            &mut next_known,
            CONTROL_ROUNDS,
            CONTROL_TIME,
        );
        (padded, control, next_known)
    })
    .await
    .unwrap();

    // Every known request really queued a mail (none was throttled or capped), and no other.
    let queued: i64 = admin
        .query_one(
            "SELECT count(*) FROM linktoken.outbox WHERE purpose = $1",
            &[&p],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(queued, known_sent as i64);
    let _ = admin
        .execute("DELETE FROM linktoken.outbox WHERE purpose = $1", &[&p])
        .await;
    let _ = admin.batch_execute(&format!("DROP ROLE {role}")).await;

    let (t_all, t_crop) = report_requests(
        &format!("HTTP POST /request, --request-min-duration {REQUEST_MIN_DURATION}"),
        &padded,
    );
    let (c_all, c_crop) = report_requests("HTTP POST /request, no padding (control)", &control);
    assert!(
        t_all.abs() < T_MAX && t_crop.abs() < T_MAX,
        "known and unknown identifiers differ in time: t {t_all:.2} (cropped {t_crop:.2})"
    );
    let power = c_all.abs().max(c_crop.abs());
    assert!(
        power >= T_MAX,
        "too noisy to measure: without padding a 5 ms slower resolver gave only |t| = {power:.2}"
    );
}
