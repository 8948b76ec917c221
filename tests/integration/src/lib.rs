//! Helpers for the integration tests: they run against the database named by
//! `LINKTOKEN_TEST_DATABASE_URL`, a superuser connection to a database where
//! `CREATE EXTENSION linktoken` has been run (`make test` creates one). Both forms libpq
//! accepts work: `host=127.0.0.1 port=5432 user=postgres dbname=linktoken_it` and
//! `postgres://postgres@127.0.0.1:5432/linktoken_it`.
//!
//! The tests of all files run in parallel in one database, so every test uses its own purpose
//! names, subjects, schemas and roles (see [`tag`]) and never asserts anything about rows it
//! did not create. Tokens only ever travel as bind parameters: PostgreSQL logs the text of a
//! failing statement, never its parameters.

pub mod cluster;
pub mod crash_check;
pub mod gateway;
pub mod http;
pub mod process;
pub mod smtp_sink;

use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{Barrier, Semaphore, SemaphorePermit};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

pub use tokio_postgres::Error;

const ENV: &str = "LINKTOKEN_TEST_DATABASE_URL";

/// The connection string. Unset is a failure, never a silent pass.
pub fn database_url() -> String {
    match std::env::var(ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "set {ENV}; run `make test` \
             (it must name a superuser connection to a database with the linktoken extension, \
             e.g. {ENV}=\"host=127.0.0.1 port=54321 user=postgres dbname=linktoken_it\")"
        ),
    }
}

/// The parsed connection string (key=value or postgres:// URL, as libpq accepts them).
pub fn config() -> Config {
    parse_config(&database_url())
}

fn parse_config(url: &str) -> Config {
    url.parse()
        .unwrap_or_else(|e| panic!("{ENV} is not a valid connection string ({e})"))
}

/// Where the test database is, for command-line tools such as pg_dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnParams {
    /// A host name or address, or the directory of a Unix socket.
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    pub password: Option<String>,
}

impl ConnParams {
    /// Parses either form of connection string; libpq's defaults fill what is missing
    /// (localhost, 5432, database named like the user).
    pub fn parse(url: &str) -> ConnParams {
        let cfg = parse_config(url);
        let host = match cfg.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_owned(),
        };
        let user = cfg.get_user().map(str::to_owned).unwrap_or_else(|| {
            panic!("{ENV} must name the user (user=... or postgres://USER@...)")
        });
        ConnParams {
            host,
            port: cfg.get_ports().first().copied().unwrap_or(5432),
            dbname: cfg.get_dbname().unwrap_or(&user).to_owned(),
            user,
            password: cfg
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
        }
    }

    pub fn from_env() -> ConnParams {
        ConnParams::parse(&database_url())
    }
}

/// Connects with the given config, driving the connection on the current runtime.
pub async fn connect_with(config: &Config) -> Client {
    let user = config.get_user().unwrap_or("?").to_owned();
    let (client, connection) = config
        .connect(NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {ENV} as {user}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A superuser connection to the test database.
pub async fn connect() -> Client {
    connect_with(&config()).await
}

/// A connection to the test database as another (login) role of the same cluster.
pub async fn connect_as(user: &str) -> Client {
    let mut config = config();
    config.user(user);
    connect_with(&config).await
}

/// The tests of one file (one process) may hold this many extra connections at once, so that
/// parallel races stay under a default `max_connections` of 100.
static CONNECTION_BUDGET: Semaphore = Semaphore::const_new(60);

/// Waits until `n` more connections may be opened; they may stay open while the permit lives.
pub async fn reserve_connections(n: u32) -> SemaphorePermit<'static> {
    assert!(
        n <= 60,
        "a single test may hold at most 60 extra connections"
    );
    CONNECTION_BUDGET
        .acquire_many(n)
        .await
        .expect("the connection budget is never closed")
}

/// Runs `work(i, client)` for i in 0..n, each on its own fresh superuser connection and in
/// its own task. All n connections are opened first; a barrier then releases the n calls at
/// the same moment. Returns the results in order of i.
pub async fn concurrently<T, F, Fut>(n: usize, work: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize, Client) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let _permit = reserve_connections(u32::try_from(n).expect("n fits u32")).await;
    let clients = futures::future::join_all((0..n).map(|_| connect())).await;
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, client)| {
            let barrier = barrier.clone();
            let call = work(i, client);
            tokio::spawn(async move {
                barrier.wait().await;
                call.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for task in futures::future::join_all(tasks).await {
        out.push(task.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())));
    }
    out
}

/// A short random tag that keeps the names of parallel tests apart (a-z0-9 only, so it fits
/// purpose names, schema names and role names unquoted).
pub fn tag() -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).expect("random bytes");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Defines a purpose `<prefix>_<tag>` (ttl as PostgreSQL interval text, max_uses NULL =
/// unlimited, no re-issue revocation) and returns its name.
pub async fn purpose(client: &Client, prefix: &str, ttl: &str, max_uses: Option<i32>) -> String {
    let name = format!("{prefix}_{}", tag());
    client
        .execute(
            "SELECT linktoken.define_purpose($1, $2::text::interval, $3, false)",
            &[&name, &ttl, &max_uses],
        )
        .await
        .unwrap_or_else(|e| panic!("define_purpose {name}: {e}"));
    name
}

/// Issues a token and checks its shape: `ltk_` and 48 base64url characters.
pub async fn issue(client: &Client, purpose: &str, subject: &str) -> String {
    let token: String = client
        .query_one("SELECT linktoken.issue($1, $2)", &[&purpose, &subject])
        .await
        .unwrap_or_else(|e| panic!("issue({purpose}, {subject}): {e}"))
        .get(0);
    assert_token_shape(&token);
    token
}

pub fn assert_token_shape(token: &str) {
    let body = token.strip_prefix("ltk_");
    assert!(
        body.is_some_and(|b| b.len() == 48
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')),
        "issued token is not ltk_ + 48 base64url characters (length {})",
        token.len()
    );
}

pub async fn try_peek_status(client: &Client, token: &str, purpose: &str) -> Result<String, Error> {
    client
        .query_one(
            "SELECT status FROM linktoken.peek($1, $2)",
            &[&token, &purpose],
        )
        .await
        .map(|r| r.get(0))
}

pub async fn peek_status(client: &Client, token: &str, purpose: &str) -> String {
    try_peek_status(client, token, purpose)
        .await
        .unwrap_or_else(|e| panic!("peek: {}", describe(&e)))
}

pub async fn try_redeem_status(
    client: &Client,
    token: &str,
    purpose: &str,
) -> Result<String, Error> {
    client
        .query_one(
            "SELECT status FROM linktoken.redeem($1, $2)",
            &[&token, &purpose],
        )
        .await
        .map(|r| r.get(0))
}

pub async fn redeem_status(client: &Client, token: &str, purpose: &str) -> String {
    try_redeem_status(client, token, purpose)
        .await
        .unwrap_or_else(|e| panic!("redeem: {}", describe(&e)))
}

/// SHA-256 of a token as lower-case hex, computed by PostgreSQL (what token_hash must hold).
pub async fn sha256_hex(client: &Client, token: &str) -> String {
    client
        .query_one(
            "SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')",
            &[&token],
        )
        .await
        .expect("sha256")
        .get(0)
}

/// The SQLSTATE of a failed statement.
pub fn sqlstate(err: &Error) -> String {
    err.as_db_error()
        .map(|e| e.code().code().to_owned())
        .unwrap_or_else(|| format!("not a database error: {err}"))
}

/// `SQLSTATE: message` of a failed statement, for assertion messages.
pub fn describe(err: &Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => format!("not a database error: {err}"),
    }
}

/// Asserts that a statement fails with SQLSTATE 42501 (insufficient_privilege).
pub fn assert_denied<T: std::fmt::Debug>(what: &str, result: Result<T, Error>) {
    match result {
        Ok(v) => panic!("{what}: expected permission denied (42501), but it succeeded: {v:?}"),
        Err(e) => assert_eq!(sqlstate(&e), "42501", "{what}: {}", describe(&e)),
    }
}

/// The pg_dump of the server's PostgreSQL major: LINKTOKEN_TEST_PG_BIN (the server's bin
/// directory, set by `make test` for every major it tests), else Debian's 15.
pub fn pg_dump_binary() -> PathBuf {
    let bin = std::env::var("LINKTOKEN_TEST_PG_BIN")
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_owned());
    PathBuf::from(bin).join("pg_dump")
}

/// A purpose `<prefix>_<tag>` (one hour, one use) whose action is `it_<prefix>_<tag>.act(subject
/// text, payload jsonb, form jsonb) RETURNS jsonb`: PL/pgSQL `body` (between BEGIN and END),
/// SECURITY DEFINER with a pinned search_path, as linktoken requires. `tables` is run first (DDL
/// for what the action writes). `{schema}` in either is replaced by the schema's name.
/// Returns (purpose, schema).
pub async fn purpose_with_action(
    c: &Client,
    prefix: &str,
    tables: &str,
    body: &str,
) -> (String, String) {
    let schema = format!("it_{prefix}_{}", tag());
    let tables = tables.replace("{schema}", &schema);
    let body = body.replace("{schema}", &schema);
    c.batch_execute(&format!(
        "CREATE SCHEMA {schema};
         {tables}
         CREATE FUNCTION {schema}.act(subject text, payload jsonb, form jsonb) RETURNS jsonb
         LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_catalog, pg_temp AS $$
         BEGIN {body} END $$;"
    ))
    .await
    .expect("create the action");
    let purpose = format!("{prefix}_{}", tag());
    let action = format!("{schema}.act(text,jsonb,jsonb)");
    c.execute(
        "SELECT linktoken.define_purpose($1, '1 hour', action => $2::text::regprocedure)",
        &[&purpose, &action],
    )
    .await
    .expect("define the purpose");
    (purpose, schema)
}

#[cfg(test)]
mod tests {
    use super::ConnParams;

    #[test]
    fn key_value_form() {
        let p = ConnParams::parse("host=127.0.0.1 port=54321 user=postgres dbname=linktoken_it");
        assert_eq!(
            p,
            ConnParams {
                host: "127.0.0.1".into(),
                port: 54321,
                user: "postgres".into(),
                dbname: "linktoken_it".into(),
                password: None,
            }
        );
    }

    #[test]
    fn url_form() {
        let p = ConnParams::parse("postgres://alice:s3cret@db.example:6543/linktoken_it");
        assert_eq!(
            p,
            ConnParams {
                host: "db.example".into(),
                port: 6543,
                user: "alice".into(),
                dbname: "linktoken_it".into(),
                password: Some("s3cret".into()),
            }
        );
        let p = ConnParams::parse("postgresql://postgres@127.0.0.1/x");
        assert_eq!((p.port, p.dbname.as_str()), (5432, "x"));
    }

    #[test]
    fn unix_socket_and_defaults() {
        let p = ConnParams::parse("host=/tmp/pg user=postgres");
        assert_eq!(
            (p.host.as_str(), p.port, p.dbname.as_str()),
            ("/tmp/pg", 5432, "postgres")
        );
    }
}
