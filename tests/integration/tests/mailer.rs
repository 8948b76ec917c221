//! `linktoken-gateway mailer` end to end: linktoken.request → the outbox → the mailer (the real
//! binary, as a login role that is only IN ROLE linktoken_mailer) → SMTP (an in-process sink,
//! `linktoken_integration::smtp_sink`) → a link or code from the mail, redeemed.
//!
//! The mailer key is one per database and the mailer sends whatever is due, so every test gets
//! a database of its own (created and dropped here) and nothing of other tests can interfere.

use linktoken_integration::gateway::binary;
use linktoken_integration::process::{Process, WAIT};
use linktoken_integration::smtp_sink::{Mode, Received, SmtpSink};
use linktoken_integration::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

const PUBLIC: &str = "https://links.example";

/// A database of its own with the extension, a resolver over app.users (anna = 1, ben = 2, and
/// user<n>@example.test = 100 + n), a login role for the mailer, and a key pair set as the
/// mailer key. Dropped (database, role, key files) when the test ends, passed or not.
struct Fixture {
    name: String,
    role: String,
    admin: Client,
    /// The mailer role's connection string.
    mailer_url: String,
    dir: PathBuf,
    key: PathBuf,
}

fn conninfo(user: &str, dbname: &str) -> String {
    let p = ConnParams::from_env();
    let mut s = format!(
        "host={} port={} user={user} dbname={dbname}",
        p.host, p.port
    );
    if let Some(pw) = p.password {
        s.push_str(&format!(
            " password='{}'",
            pw.replace('\\', "\\\\").replace('\'', "\\'")
        ));
    }
    s
}

/// Runs `mailer keygen` for `file`; returns the public key's hex.
fn keygen(file: &Path) -> String {
    let out = Command::new(binary())
        .args(["mailer", "keygen", "--key-file"])
        .arg(file)
        .output()
        .expect("run mailer keygen");
    assert!(
        out.status.success(),
        "keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(format!("{}.pub", file.display()))
        .expect("the .pub file")
        .trim()
        .to_owned()
}

impl Fixture {
    async fn new(prefix: &str) -> Fixture {
        let t = tag();
        let name = format!("lt_mailer_{prefix}_{t}");
        let role = format!("it_mailer_{prefix}_{t}");
        let main = connect().await;
        main.batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the database");
        main.batch_execute(&format!(
            "CREATE ROLE {role} LOGIN IN ROLE linktoken_mailer"
        ))
        .await
        .expect("create the mailer role");
        let admin_url = conninfo(&ConnParams::from_env().user, &name);
        let admin = connect_with(&admin_url.parse().unwrap()).await;
        admin
            .batch_execute(
                "CREATE EXTENSION linktoken;
                 CREATE SCHEMA app;
                 CREATE TABLE app.users (id int PRIMARY KEY, email text NOT NULL);
                 INSERT INTO app.users VALUES (1, 'anna@example.org'), (2, 'ben@example.org');
                 INSERT INTO app.users SELECT 100 + n, 'user' || n || '@example.test' FROM generate_series(1, 200) n;
                 CREATE FUNCTION app.find_user(identifier text, OUT subject text, OUT address text)
                 LANGUAGE plpgsql SECURITY DEFINER SET search_path = app, pg_catalog, pg_temp AS $$
                 BEGIN
                     SELECT u.id::text, u.email INTO subject, address FROM app.users u
                     WHERE lower(u.email) = lower(btrim(identifier));
                 END $$;",
            )
            .await
            .expect("set up the database");
        let dir = std::env::temp_dir().join(format!("linktoken-mailer-test-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("mailer.key");
        let public = keygen(&key);
        admin
            .execute(
                "SELECT linktoken.set_mailer_key(decode($1, 'hex'))",
                &[&public],
            )
            .await
            .expect("set the mailer key");
        Fixture {
            mailer_url: conninfo(&role, &name),
            name,
            role,
            admin,
            dir,
            key,
        }
    }

    /// A purpose `<prefix>` requested through the resolver, one hour, with a page.
    async fn purpose(&self, prefix: &str, extra: &str, page: &str) -> String {
        let p = format!("{prefix}_{}", tag());
        self.admin
            .batch_execute(&format!(
                "SELECT linktoken.define_purpose('{p}', '1 hour', resolver => 'app.find_user(text)'{extra});
                 SELECT linktoken.set_page('{p}', '{page}');"
            ))
            .await
            .expect("define the purpose");
        p
    }

    async fn request(&self, purpose: &str, identifier: &str) {
        self.admin
            .execute("SELECT linktoken.request($1, $2)", &[&purpose, &identifier])
            .await
            .expect("request");
    }

    /// The outbox row of `address`: (sent, attempts, last_error, given_up).
    async fn row(&self, address: &str) -> Row {
        let r = self
            .admin
            .query_one(
                "SELECT sent_at IS NOT NULL, attempts, last_error, next_attempt_at = 'infinity',
                        next_attempt_at <= now(), id
                 FROM linktoken.outbox WHERE address = $1",
                &[&address],
            )
            .await
            .expect("the outbox row");
        Row {
            sent: r.get(0),
            attempts: r.get(1),
            last_error: r.get(2),
            given_up: r.get(3),
            due: r.get(4),
            id: r.get(5),
        }
    }

    /// Waits (bounded) until the row of `address` satisfies `cond`.
    async fn wait_row(&self, address: &str, what: &str, cond: impl Fn(&Row) -> bool) -> Row {
        let deadline = Instant::now() + WAIT;
        loop {
            let row = self.row(address).await;
            if cond(&row) {
                return row;
            }
            assert!(Instant::now() < deadline, "{what}: still {row:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn mailer(&self, sink: &SmtpSink, extra: &[&str]) -> Mailer {
        let key = self.key.display().to_string();
        let mut args = vec!["--key-file", &key];
        args.extend_from_slice(extra);
        Mailer::start(&self.mailer_url, &sink.url(), &args)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let (name, role) = (self.name.clone(), self.role.clone());
        // Drop runs inside the test's runtime; a thread of its own may block on a new one.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let c = connect().await;
                let _ = c
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
                let _ = c
                    .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
                    .await;
            });
        })
        .join();
    }
}

#[derive(Debug)]
#[allow(dead_code)]
struct Row {
    sent: bool,
    attempts: i32,
    last_error: Option<String>,
    given_up: bool,
    due: bool,
    id: i64,
}

/// The mailer binary as a child process, its stderr captured; SIGKILLed if still running when
/// dropped, its log kept in LINKTOKEN_TEST_LOG_DIR for the test run's secret scan.
/// A running mailer (tests/integration/src/process.rs: its log kept, stopped when dropped).
struct Mailer(Process);

impl Mailer {
    fn start(database_url: &str, smtp_url: &str, extra: &[&str]) -> Mailer {
        let mut cmd = Command::new(binary());
        cmd.args(["mailer", "--database-url", database_url])
            .args(["--smtp-url", smtp_url])
            .args(["--from", "Example Links <links@example.test>"])
            .args(["--public-url", PUBLIC])
            .args(["--poll-interval", "200ms", "--backoff-base", "200ms"])
            .args([
                "--backoff-max",
                "1s",
                "--smtp-timeout",
                "5s",
                "--lease",
                "60s",
            ])
            .args(extra)
            .env_remove("LINKTOKEN_SMTP_USERNAME")
            .env_remove("LINKTOKEN_SMTP_PASSWORD");
        let mut m = Mailer(Process::start("mailer", cmd));
        m.wait_log("the mailer to start", |l| {
            l.starts_with("linktoken-gateway mailer running")
        });
        m
    }

    fn log(&self) -> Vec<String> {
        self.0.log()
    }

    /// Waits (bounded) for a log line matching `pred`; panics with the log if it never comes.
    fn wait_log(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.0.wait_log(what, pred)
    }

    fn signal_term(&self) {
        self.0.signal_term()
    }

    /// Waits (bounded) for the process to exit; its status.
    fn wait_exit(&mut self) -> ExitStatus {
        self.0.wait_exit()
    }

    /// SIGTERM, then the exit status.
    fn stop(&mut self) -> ExitStatus {
        self.signal_term();
        self.wait_exit()
    }
}

/// The token of a mail: every link to `{PUBLIC}/t/` in it names the same one.
fn token_of(mail: &Received) -> String {
    let tokens = mail.after(&format!("{PUBLIC}/t/"));
    assert!(!tokens.is_empty(), "no link in the mail: {}", mail.data);
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "different links in one mail"
    );
    assert_token_shape(&tokens[0]);
    tokens[0].clone()
}

/// The typed code of a mail (the built-in template says "enter the code 123456").
fn code_of(mail: &Received) -> Option<String> {
    mail.after("enter the code ").into_iter().next()
}

fn mail_to<'a>(mails: &'a [Received], address: &str) -> Vec<&'a Received> {
    mails
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == address))
        .collect()
}

/// No log line holds any of `secrets`.
fn assert_log_clean(log: &[String], secrets: &[&str]) {
    assert!(!log.is_empty());
    for s in secrets {
        assert!(!s.is_empty());
        for line in log {
            assert!(
                !line.to_lowercase().contains(&s.to_lowercase()),
                "the mailer's log holds a secret ({}…): {line}",
                &s[..4.min(s.len())]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requested_link_and_code_arrive_by_mail_and_redeem() {
    let f = Fixture::new("flow").await;
    let p = f
        .purpose(
            "login",
            ", code_digits => 6",
            r#"{"title": "Sign in", "mail_subject": "Your sign-in link for <Example>"}"#,
        )
        .await;
    let sink = SmtpSink::start(Mode::Accept);
    let mut mailer = f.mailer(&sink, &[]);
    f.request(&p, "anna@example.org").await;
    f.request(&p, "BEN@example.org ").await;
    f.request(&p, "nobody@example.org").await;
    let mails = sink.wait_for_messages(2, WAIT);
    let anna = mail_to(&mails, "anna@example.org");
    let ben = mail_to(&mails, "ben@example.org");
    assert_eq!((anna.len(), ben.len()), (1, 1), "one mail each");
    let (anna, ben) = (anna[0], ben[0]);

    // What the person sees: subject, sender, both parts, link, code, code form, expiry.
    assert_eq!(
        anna.header("Subject").as_deref(),
        Some("Your sign-in link for <Example>")
    );
    assert_eq!(anna.mail_from, "links@example.test");
    assert!(anna
        .header("Content-Type")
        .is_some_and(|c| c.starts_with("multipart/alternative")));
    let decoded = anna.decoded();
    assert!(decoded.contains("text/plain") && decoded.contains("text/html"));
    assert!(
        decoded.contains("Your sign-in link for &lt;Example&gt;"),
        "the subject is escaped in the HTML part"
    );
    assert!(decoded.contains(&format!("{PUBLIC}/code/{p}")));
    assert!(decoded.contains(" UTC"), "the expiry is in the mail");
    let message_id = anna.header("Message-ID").expect("a Message-ID");
    assert!(message_id.ends_with("@example.test>"), "{message_id}");
    assert_eq!(anna.header("List-Unsubscribe"), None);

    // The link from the mail redeems; the code from the other mail too.
    let token = token_of(anna);
    assert_eq!(peek_status(&f.admin, &token, &p).await, "ok");
    assert_eq!(redeem_status(&f.admin, &token, &p).await, "ok");
    assert_eq!(redeem_status(&f.admin, &token, &p).await, "used");
    let code = code_of(ben).expect("a code in the mail");
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    let status: String = f
        .admin
        .query_one(
            "SELECT status FROM linktoken.redeem_code($1, '2', $2)",
            &[&p, &code],
        )
        .await
        .expect("redeem_code")
        .get(0);
    assert_eq!(status, "ok");

    for address in ["anna@example.org", "ben@example.org"] {
        let row = f.row(address).await;
        assert!(
            row.sent && row.attempts == 1 && row.last_error.is_none(),
            "{row:?}"
        );
    }
    assert_eq!(mailer.stop().code(), Some(0));
    let log = mailer.log();
    assert_log_clean(
        &log,
        &[
            &token,
            &token_of(ben),
            &code,
            "anna@example.org",
            "ben@example.org",
        ],
    );
    assert!(log.iter().any(|l| l.contains(&format!("purpose {p}"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_retried_and_permanent_ones_given_up() {
    let f = Fixture::new("refuse").await;
    let p = f.purpose("retry", "", r#"{"title": "Verify"}"#).await;
    let sink = SmtpSink::start(Mode::Accept);
    let mut mailer = f.mailer(&sink, &["--max-attempts", "4"]);

    // Two "try later" answers, then accepted: delivered once, on the third attempt.
    sink.set_mode_for(2, Mode::RefuseRcpt(451));
    f.request(&p, "anna@example.org").await;
    let row = f
        .wait_row("anna@example.org", "delivered after two refusals", |r| {
            r.sent
        })
        .await;
    assert_eq!(row.attempts, 3, "{row:?}");
    let mails = sink.received();
    assert_eq!(mail_to(&mails, "anna@example.org").len(), 1);
    let log = mailer.log();
    assert_eq!(
        log.iter()
            .filter(|l| l.contains(&format!("message {}", row.id)) && l.contains("failed"))
            .count(),
        2,
        "{log:#?}"
    );
    assert!(log.iter().any(|l| l.contains("451")), "{log:#?}");

    // Permanent refusals after the data: every attempt refused, then given up; nothing sent.
    sink.set_mode(Mode::RefuseData(554));
    let before = sink.transactions();
    f.request(&p, "ben@example.org").await;
    let row = f
        .wait_row("ben@example.org", "given up", |r| r.given_up)
        .await;
    assert!(!row.sent && row.attempts == 4, "{row:?}");
    let error = row.last_error.unwrap();
    assert!(
        error.contains("gave up after 4 attempts") && error.contains("554"),
        "{error}"
    );
    assert_eq!(sink.transactions() - before, 4);
    assert!(mail_to(&sink.received(), "ben@example.org").is_empty());
    assert_eq!(mailer.stop().code(), Some(0));
    assert_log_clean(&mailer.log(), &["anna@example.org", "ben@example.org"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_or_drops_the_connection_gets_the_mail_later_once() {
    let f = Fixture::new("down").await;
    let p = f.purpose("down", "", r#"{"title": "Verify"}"#).await;
    let sink = SmtpSink::start_down(Mode::Accept);
    let mut mailer = f.mailer(&sink, &[]);
    f.request(&p, "anna@example.org").await;
    let row = f
        .wait_row("anna@example.org", "two failed connections", |r| {
            r.attempts >= 2
        })
        .await;
    assert!(!row.sent, "{row:?}");
    assert!(row.last_error.is_some(), "{row:?}");
    sink.up();
    let row = f
        .wait_row("anna@example.org", "delivered once the server is up", |r| {
            r.sent
        })
        .await;
    assert_eq!(mail_to(&sink.received(), "anna@example.org").len(), 1);

    // The connection dropped after the data, before the answer: not delivered, so sent again.
    sink.set_mode_for(1, Mode::DropAfterData);
    let before = sink.transactions();
    f.request(&p, "ben@example.org").await;
    let ben = f
        .wait_row(
            "ben@example.org",
            "delivered after a dropped connection",
            |r| r.sent,
        )
        .await;
    assert_eq!(ben.attempts, 2, "{ben:?}");
    assert_eq!(sink.transactions() - before, 2);
    assert_eq!(mailer.stop().code(), Some(0));
    // Nothing arrives twice, nothing is lost.
    let mails = sink.received();
    assert_eq!(mail_to(&mails, "anna@example.org").len(), 1);
    assert_eq!(mail_to(&mails, "ben@example.org").len(), 1);
    assert_eq!(mails.len(), 2);
    assert!(row.attempts >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_mailers_deliver_every_message_exactly_once() {
    const N: usize = 24;
    let f = Fixture::new("two").await;
    let p = f.purpose("two", "", r#"{"title": "Verify"}"#).await;
    let sink = SmtpSink::start(Mode::Accept);
    let mut a = f.mailer(&sink, &["--batch", "2"]);
    let mut b = f.mailer(&sink, &["--batch", "2"]);
    for n in 1..=N {
        f.request(&p, &format!("user{n}@example.test")).await;
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let unsent: i64 = f
            .admin
            .query_one(
                "SELECT count(*) FROM linktoken.outbox WHERE sent_at IS NULL",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if unsent == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{unsent} messages still unsent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.stop().code(), Some(0));
    assert_eq!(b.stop().code(), Some(0));
    let mails = sink.received();
    assert_eq!(mails.len(), N, "every message once, none twice");
    for n in 1..=N {
        assert_eq!(
            mail_to(&mails, &format!("user{n}@example.test")).len(),
            1,
            "user{n}"
        );
    }
    let mut tokens: Vec<String> = mails.iter().map(token_of).collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), N);
    let sent = |m: &Mailer| {
        m.log()
            .iter()
            .filter(|l| l.starts_with("mailer: sent message"))
            .count()
    };
    assert_eq!(sent(&a) + sent(&b), N);
    println!("mailer a sent {}, mailer b sent {}", sent(&a), sent(&b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_while_sending_finishes_the_mail_or_leaves_it_for_a_retry() {
    let f = Fixture::new("stop").await;
    let p = f.purpose("stop", "", r#"{"title": "Verify"}"#).await;
    let sink = SmtpSink::start(Mode::Stall);

    // SIGTERM while the server holds its answer, which comes within the grace: sent and marked.
    let mut mailer = f.mailer(&sink, &["--shutdown-grace", "20s"]);
    f.request(&p, "anna@example.org").await;
    sink.wait_for_stalled(1, WAIT);
    mailer.signal_term();
    mailer.wait_log("the stop", |l| l.contains("stopping after the mail"));
    sink.release();
    assert_eq!(mailer.wait_exit().code(), Some(0));
    let row = f.row("anna@example.org").await;
    assert!(row.sent && row.attempts == 1, "{row:?}");
    assert_eq!(mail_to(&sink.received(), "anna@example.org").len(), 1);

    // The answer takes longer than the grace: abandoned, not marked, due again at once.
    let mut mailer = f.mailer(&sink, &["--shutdown-grace", "1s"]);
    f.request(&p, "ben@example.org").await;
    sink.wait_for_stalled(1, WAIT);
    mailer.signal_term();
    assert_eq!(mailer.wait_exit().code(), Some(0));
    let row = f.row("ben@example.org").await;
    assert!(!row.sent && !row.given_up && row.due, "{row:?}");
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or("")
            .contains("interrupted"),
        "{row:?}"
    );
    // The held transaction finds its client gone and delivers nothing.
    sink.set_mode(Mode::Accept);
    sink.release();
    let mut next = f.mailer(&sink, &[]);
    let row = f
        .wait_row("ben@example.org", "sent by the next mailer", |r| r.sent)
        .await;
    assert_eq!(row.attempts, 2);
    assert_eq!(next.stop().code(), Some(0));
    assert_eq!(mail_to(&sink.received(), "ben@example.org").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_purposes_get_the_rfc_8058_headers_and_others_not() {
    let f = Fixture::new("oneclick").await;
    let unsubscribe = f
        .purpose(
            "unsub",
            "",
            r#"{"title": "Unsubscribe", "one_click": true}"#,
        )
        .await;
    let plain = f.purpose("plain", "", r#"{"title": "Verify"}"#).await;
    let sink = SmtpSink::start(Mode::Accept);
    let mut mailer = f.mailer(&sink, &[]);
    f.request(&unsubscribe, "anna@example.org").await;
    f.request(&plain, "ben@example.org").await;
    let mails = sink.wait_for_messages(2, WAIT);
    let anna = mail_to(&mails, "anna@example.org")[0];
    let ben = mail_to(&mails, "ben@example.org")[0];
    let token = token_of(anna);
    assert_eq!(
        anna.header("List-Unsubscribe"),
        Some(format!("<{PUBLIC}/t/{token}>"))
    );
    assert_eq!(
        anna.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(ben.header("List-Unsubscribe"), None);
    assert_eq!(ben.header("List-Unsubscribe-Post"), None);
    // No other header carries the token (positive control: List-Unsubscribe does).
    let other_headers = |m: &Received| {
        m.head()
            .replace("\r\n ", " ")
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("list-unsubscribe:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(anna.head().contains(&token));
    assert!(!other_headers(anna).contains("ltk_"));
    assert!(!other_headers(ben).contains("ltk_"));
    mailer.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailer_role_suffices_and_unknown_keys_are_left_alone() {
    let f = Fixture::new("keys").await;
    let p = f.purpose("keys", "", r#"{"title": "Verify"}"#).await;
    // The mailer's role can read the outbox and nothing else (positive control: the outbox).
    let as_mailer = connect_with(&f.mailer_url.parse().unwrap()).await;
    as_mailer
        .query("SELECT id FROM linktoken.outbox", &[])
        .await
        .expect("the mailer role reads the outbox");
    assert_denied(
        "tokens",
        as_mailer.query("SELECT * FROM linktoken.tokens", &[]).await,
    );
    assert_denied(
        "sealed",
        as_mailer
            .execute("UPDATE linktoken.outbox SET sealed = '\\x00'", &[])
            .await,
    );

    // A mailer holding another key: the message is neither sent nor marked; the log says so.
    let wrong = f.dir.join("wrong.key");
    keygen(&wrong);
    let sink = SmtpSink::start(Mode::Accept);
    let mut mailer = Mailer::start(
        &f.mailer_url,
        &sink.url(),
        &["--key-file", &wrong.display().to_string()],
    );
    f.request(&p, "anna@example.org").await;
    let id = f.row("anna@example.org").await.id;
    let line = mailer.wait_log("the unknown key reported", |l| {
        l.contains(&format!("message {id} ")) && l.contains("key fingerprint unknown")
    });
    assert!(line.contains(&format!("purpose {p}")), "{line}");
    let row = f.row("anna@example.org").await;
    assert!(
        !row.sent && row.attempts == 0 && row.last_error.is_none() && row.due,
        "untouched: {row:?}"
    );
    assert_eq!(mailer.stop().code(), Some(0));
    assert!(sink.received().is_empty());

    // Rotation: a new key for new messages; a mailer with both keys sends the old and the new.
    let new_key = f.dir.join("new.key");
    let public = keygen(&new_key);
    f.admin
        .execute(
            "SELECT linktoken.set_mailer_key(decode($1, 'hex'))",
            &[&public],
        )
        .await
        .unwrap();
    f.request(&p, "ben@example.org").await;
    let mut both = f.mailer(&sink, &["--key-file", &new_key.display().to_string()]);
    let mails = sink.wait_for_messages(2, WAIT);
    assert_eq!(mail_to(&mails, "anna@example.org").len(), 1);
    assert_eq!(mail_to(&mails, "ben@example.org").len(), 1);
    assert_eq!(both.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_errors_hold_no_token_code_or_address() {
    let f = Fixture::new("logs").await;
    let p = f
        .purpose("logs", ", code_digits => 8", r#"{"title": "Sign in"}"#)
        .await;
    // Refusals that quote the address (as real servers do), up to giving up.
    let sink = SmtpSink::start(Mode::RefuseRcpt(550));
    let mut mailer = f.mailer(&sink, &["--max-attempts", "2"]);
    f.request(&p, "Anna@Example.org").await;
    let anna = f
        .wait_row("anna@example.org", "given up", |r| r.given_up)
        .await;
    let error = anna.last_error.unwrap();
    // Positive control: the server's answer is there, with the address replaced.
    assert!(
        error.contains("(550)") && error.contains("5.1.1 <<address>>: mailbox refused"),
        "{error}"
    );
    assert!(
        !error.to_lowercase().contains("anna@example.org"),
        "{error}"
    );
    // Then accepted: a mail with a link and a code.
    sink.set_mode(Mode::Accept);
    f.request(&p, "ben@example.org").await;
    let mails = sink.wait_for_messages(1, WAIT);
    let token = token_of(&mails[0]);
    let code = code_of(&mails[0]).expect("a code");
    assert_eq!(code.len(), 8);
    assert_eq!(mailer.stop().code(), Some(0));
    let log = mailer.log();
    let refusals: Vec<&String> = log.iter().filter(|l| l.contains("550")).collect();
    assert_eq!(refusals.len(), 2, "{log:#?}");
    assert!(
        refusals.iter().all(|l| l.contains("<address>")),
        "{refusals:#?}"
    );
    assert!(log.iter().any(|l| l.starts_with("mailer: sent message")));
    assert_log_clean(
        &log,
        &[
            &token,
            &code,
            "anna@example.org",
            "ben@example.org",
            "links.example/t/",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_messages_are_given_up_unsent() {
    let f = Fixture::new("expired").await;
    let short = format!("short_{}", tag());
    f.admin
        .batch_execute(&format!(
            "SELECT linktoken.define_purpose('{short}', '1 second', resolver => 'app.find_user(text)')"
        ))
        .await
        .unwrap();
    let long = f.purpose("long", "", r#"{"title": "Verify"}"#).await;
    f.request(&short, "anna@example.org").await;
    f.request(&long, "ben@example.org").await;
    // No mailer yet: wait until the short one has expired.
    let deadline = Instant::now() + WAIT;
    loop {
        let expired: bool = f
            .admin
            .query_one(
                "SELECT expires_at < now() FROM linktoken.outbox WHERE address = 'anna@example.org'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if expired {
            break;
        }
        assert!(Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sink = SmtpSink::start(Mode::Accept);
    let mut mailer = f.mailer(&sink, &[]);
    let ben = f.wait_row("ben@example.org", "sent", |r| r.sent).await;
    let anna = f
        .wait_row("anna@example.org", "given up", |r| r.given_up)
        .await;
    assert!(!anna.sent, "{anna:?}");
    assert!(anna.last_error.unwrap().contains("expired"));
    assert!(ben.sent);
    assert_eq!(mailer.stop().code(), Some(0));
    let mails = sink.received();
    assert_eq!(mails.len(), 1);
    assert_eq!(mail_to(&mails, "ben@example.org").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purpose_filter_leaves_other_purposes_alone() {
    let f = Fixture::new("filter").await;
    let mine = f.purpose("mine", "", r#"{"title": "Verify"}"#).await;
    let other = f.purpose("other", "", r#"{"title": "Verify"}"#).await;
    let sink = SmtpSink::start(Mode::Accept);
    let mut mailer = f.mailer(&sink, &["--purpose", &mine]);
    f.request(&other, "ben@example.org").await;
    f.request(&mine, "anna@example.org").await;
    f.wait_row("anna@example.org", "sent", |r| r.sent).await;
    assert_eq!(mailer.stop().code(), Some(0));
    let ben = f.row("ben@example.org").await;
    assert!(!ben.sent && ben.attempts == 0, "{ben:?}");
    assert_eq!(sink.received().len(), 1);
}

#[test]
fn keygen_writes_a_private_file_and_a_public_hex_and_never_overwrites() {
    let dir = std::env::temp_dir().join(format!("linktoken-keygen-it-{}", tag()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("mailer.key");
    let out = Command::new(binary())
        .args(["mailer", "keygen", "--key-file"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let public = std::fs::read_to_string(dir.join("mailer.key.pub")).unwrap();
    let hex = public.trim();
    assert_eq!(hex.len(), 64);
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "SELECT linktoken.set_mailer_key(decode('{hex}', 'hex'));"
        )),
        "{stdout}"
    );
    let private = std::fs::read(&key).unwrap();
    assert!(!String::from_utf8_lossy(&private).contains(hex));
    // A second run refuses and leaves both files as they were.
    let again = Command::new(binary())
        .args(["mailer", "keygen", "--key-file"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&key).unwrap(), private);
    assert_eq!(
        std::fs::read_to_string(dir.join("mailer.key.pub")).unwrap(),
        public
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_from_a_directory_and_bad_ones_stop_the_mailer() {
    let f = Fixture::new("tmpl").await;
    let p = f
        .purpose(
            "tmpl",
            "",
            r#"{"title": "Verify", "mail_subject": "Check <this>"}"#,
        )
        .await;
    let dir = f.dir.join("templates");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{p}.subject")), "[{purpose}] {subject}\n").unwrap();
    std::fs::write(
        dir.join(format!("{p}.txt")),
        "Hello!\nLINK={link}\nCODE={code}\nuntil {expires}\n",
    )
    .unwrap();
    // A typo in a placeholder: the mailer does not start, and says where.
    let bad = f.dir.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("x.html"), "<p>{lnik}</p>").unwrap();
    let out = Command::new(binary())
        .args(["mailer", "--database-url", &f.mailer_url, "--key-file"])
        .arg(&f.key)
        .args([
            "--smtp-url",
            "smtp://127.0.0.1:9",
            "--from",
            "a@example.test",
        ])
        .args(["--public-url", PUBLIC, "--templates"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("x.html") && err.contains("{lnik}"), "{err}");

    let sink = SmtpSink::start(Mode::Accept);
    let templates = dir.display().to_string();
    let mut mailer = f.mailer(&sink, &["--templates", &templates]);
    f.request(&p, "anna@example.org").await;
    let mails = sink.wait_for_messages(1, WAIT);
    assert_eq!(
        mails[0].header("Subject"),
        Some(format!("[{p}] Check <this>"))
    );
    let text = mails[0].decoded();
    assert!(text.contains("Hello!") && text.contains(" UTC"), "{text}");
    assert!(
        !text.contains("CODE="),
        "no code line without a code: {text}"
    );
    let token = mails[0].after("LINK=https://links.example/t/");
    assert_eq!(token.len(), 1);
    assert_eq!(redeem_status(&f.admin, &token[0], &p).await, "ok");
    // The HTML part is still the built-in one, with the subject escaped.
    assert!(text.contains("Check &lt;this&gt;"), "{text}");
    assert_eq!(mailer.stop().code(), Some(0));
}
