//! Helpers for the integration tests: they run against the database named by
//! `LINKTOKEN_TEST_DATABASE_URL` (a superuser connection; `make test` creates it with the
//! extension). Tests run in parallel in one database, so each uses its own names.

use tokio_postgres::{Client, Config, NoTls};

/// The connection string, or a failure that says how to get one.
pub fn database_url() -> String {
    std::env::var("LINKTOKEN_TEST_DATABASE_URL")
        .expect("set LINKTOKEN_TEST_DATABASE_URL (a superuser connection to a database with the linktoken extension); `make test` does")
}

pub fn config() -> Config {
    database_url()
        .parse()
        .expect("LINKTOKEN_TEST_DATABASE_URL is not a valid connection string")
}

/// Connects with the given config, driving the connection on the runtime.
pub async fn connect_with(config: &Config) -> Client {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A superuser connection.
pub async fn connect() -> Client {
    connect_with(&config()).await
}

/// A connection as another (login) role of the same cluster.
pub async fn connect_as(user: &str) -> Client {
    let mut config = config();
    config.user(user);
    connect_with(&config).await
}

/// A short random tag that keeps the names of parallel tests apart (purpose names allow a-z0-9_).
pub fn tag() -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Defines a purpose `<prefix>_<tag>` and returns its name.
pub async fn purpose(client: &Client, prefix: &str, ttl: &str, max_uses: Option<i32>) -> String {
    let name = format!("{prefix}_{}", tag());
    client
        .execute(
            "SELECT linktoken.define_purpose($1, $2::text::interval, $3, false)",
            &[&name, &ttl, &max_uses],
        )
        .await
        .expect("define_purpose");
    name
}

pub async fn issue(client: &Client, purpose: &str, subject: &str) -> String {
    client
        .query_one("SELECT linktoken.issue($1, $2)", &[&purpose, &subject])
        .await
        .expect("issue")
        .get(0)
}

pub async fn peek_status(client: &Client, token: &str, purpose: &str) -> String {
    client
        .query_one(
            "SELECT status FROM linktoken.peek($1, $2)",
            &[&token, &purpose],
        )
        .await
        .expect("peek")
        .get(0)
}

pub async fn redeem_status(client: &Client, token: &str, purpose: &str) -> String {
    client
        .query_one(
            "SELECT status FROM linktoken.redeem($1, $2)",
            &[&token, &purpose],
        )
        .await
        .expect("redeem")
        .get(0)
}

/// The SQLSTATE of a failed statement.
pub fn sqlstate(err: &tokio_postgres::Error) -> String {
    err.as_db_error()
        .map(|e| e.code().code().to_owned())
        .unwrap_or_else(|| format!("not a database error: {err}"))
}
