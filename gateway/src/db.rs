//! The gateway's database access: one transaction per request, a fixed prelude that hands the
//! client's address and user agent to the audit log, one fixed prepared statement per route,
//! and an explicit COMMIT before the caller may answer.

use crate::config::Config;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use linktoken_core::page::Page;
use std::time::Duration;
use tokio_postgres::error::SqlState;

/// Who is asking, for linktoken.events.
pub struct ClientContext {
    pub ip: String,
    pub user_agent: String,
}

#[derive(Debug)]
pub enum DbError {
    /// No connection (pool wait timeout, database down, connection lost): 503.
    Unavailable(String),
    /// The purpose's action (or the form check) refused the input: 422 with this message.
    Rejected(String),
    /// The database is not set up for the call (55000 object_not_in_prerequisite_state, e.g.
    /// no mailer key for linktoken.request): 503, the cause in the log.
    NotReady(String),
    /// Anything else: 500, details only in the log.
    Failed(String),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> DbError {
        let Some(db) = e.as_db_error() else {
            // No server answer at all: the connection is gone.
            return DbError::Unavailable(with_causes(&e));
        };
        let code = db.code().code();
        // Class 22 (data exception) and 23 (integrity constraint violation) from an action or the
        // form check, and plain RAISE (P0001): the person can correct the input. As PostgREST
        // maps them, 4xx; the gateway answers 422 with the message.
        if code.starts_with("22") || code.starts_with("23") || code == "P0001" {
            DbError::Rejected(db.message().to_owned())
        } else if code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57P")
            || db.code() == &SqlState::QUERY_CANCELED
        {
            DbError::Unavailable(format!("{code}: {}", db.message()))
        } else if db.code() == &SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE {
            DbError::NotReady(format!("{code}: {}", db.message()))
        } else {
            DbError::Failed(format!("{code}: {}", db.message()))
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> DbError {
        DbError::Unavailable(with_causes(&e))
    }
}

/// An error with the errors that caused it, for the log: "db error" alone hides that the server
/// refused the login, or why a TLS handshake failed. (Neither a connection string nor a
/// password is part of these messages.)
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// What a link click finds.
pub struct Landing {
    pub status: String,
    pub purpose: Option<String>,
    pub page: Page,
}

/// What a typed code did.
pub struct CodeRedemption {
    pub status: String,
    pub result: Option<serde_json::Value>,
}

/// What a form post did.
pub struct Redemption {
    pub status: String,
    pub purpose: Option<String>,
    pub result: Option<serde_json::Value>,
    pub page: Page,
}

const PRELUDE: &str = "SELECT pg_catalog.set_config('linktoken.client_ip', $1, true), \
                              pg_catalog.set_config('linktoken.user_agent', $2, true), \
                              pg_catalog.set_config('statement_timeout', $3, true)";
const PEEK: &str = "SELECT status, page::text, purpose FROM linktoken.gateway_peek($1, $2)";
const CODE_PAGE: &str = "SELECT linktoken.gateway_code_page($1)::text";
const REDEEM_CODE: &str = "SELECT status, result::text \
                           FROM linktoken.redeem_code($1, $2, $3, $4::text::jsonb)";
const REQUEST_PAGE: &str = "SELECT linktoken.gateway_request_page($1)::text";
const REQUEST: &str = "SELECT linktoken.request($1, $2, $3)";
const REDEEM: &str =
    "SELECT status, result::text, page::text, purpose FROM linktoken.gateway_redeem($1, $2::text::jsonb, $3)";

pub struct Db {
    pool: Pool,
    statement_timeout: String,
}

fn page_from(text: Option<String>) -> Page {
    text.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| Page::from_json(&v).ok())
        .unwrap_or_default()
}

impl Db {
    pub fn new(cfg: &Config) -> Result<Db, String> {
        // sslmode and sslrootcert as libpq reads them; TLS through rustls (see tls.rs).
        let (mut pg, tls) =
            crate::tls::configure(&cfg.database_url).map_err(|e| format!("--database-url: {e}"))?;
        pg.application_name("linktoken-gateway");
        pg.connect_timeout(Duration::from_secs(2));
        let manager = Manager::from_config(
            pg,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(cfg.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(cfg.pool_wait()))
            .create_timeout(Some(Duration::from_secs(3)))
            .recycle_timeout(Some(Duration::from_secs(2)))
            .build()
            .map_err(|e| format!("database pool: {e}"))?;
        let statement_ms = cfg.request_timeout_ms.saturating_sub(500).max(100);
        Ok(Db {
            pool,
            statement_timeout: format!("{statement_ms}ms"),
        })
    }

    pub fn status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }

    /// Starts the request's transaction and runs the prelude that hands the client's address
    /// and user agent to the audit log and bounds every statement's time.
    async fn begin<'c>(
        &self,
        client: &'c mut deadpool_postgres::Client,
        read_only: bool,
        ctx: &ClientContext,
    ) -> Result<deadpool_postgres::Transaction<'c>, DbError> {
        let tx = client
            .build_transaction()
            .read_only(read_only)
            .start()
            .await?;
        let prelude = tx.prepare_cached(PRELUDE).await?;
        tx.execute(
            &prelude,
            &[&ctx.ip, &ctx.user_agent, &self.statement_timeout],
        )
        .await?;
        Ok(tx)
    }

    /// A connection for the health probe (health.rs): made by the pool's own manager, so with
    /// the same settings and TLS as every pool connection, but outside the pool, so probing
    /// never takes or waits for a connection that a request needs.
    pub async fn dedicated_connection(
        &self,
    ) -> Result<deadpool_postgres::ClientWrapper, tokio_postgres::Error> {
        use deadpool::managed::Manager as _;
        self.pool.manager().create().await
    }

    /// Gives up a [`Db::dedicated_connection`] (its statement cache leaves the manager's list).
    pub fn release_dedicated(&self, mut conn: deadpool_postgres::ClientWrapper) {
        use deadpool::managed::Manager as _;
        self.pool.manager().detach(&mut conn);
    }

    /// A link click: READ ONLY, so nothing about the token can change.
    pub async fn peek(
        &self,
        token: &str,
        bind: Option<&str>,
        ctx: &ClientContext,
    ) -> Result<Landing, DbError> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client, true, ctx).await?;
        let stmt = tx.prepare_cached(PEEK).await?;
        let row = tx.query_one(&stmt, &[&token, &bind]).await?;
        let landing = Landing {
            status: row.get(0),
            purpose: row.get(2),
            page: page_from(row.get(1)),
        };
        tx.commit().await?;
        Ok(landing)
    }

    /// A form post: redeems in one transaction and returns only after COMMIT succeeded.
    pub async fn redeem(
        &self,
        token: &str,
        form: &str,
        bind: Option<&str>,
        ctx: &ClientContext,
    ) -> Result<Redemption, DbError> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client, false, ctx).await?;
        let stmt = tx.prepare_cached(REDEEM).await?;
        let row = tx.query_one(&stmt, &[&token, &form, &bind]).await?;
        let result: Option<String> = row.get(1);
        let redemption = Redemption {
            status: row.get(0),
            purpose: row.get(3),
            result: result.and_then(|r| serde_json::from_str(&r).ok()),
            page: page_from(row.get(2)),
        };
        tx.commit().await?;
        Ok(redemption)
    }

    /// The typed-code form's page for a purpose, None if it has no codes. READ ONLY.
    pub async fn code_page(
        &self,
        purpose: &str,
        ctx: &ClientContext,
    ) -> Result<Option<Page>, DbError> {
        self.purpose_page(CODE_PAGE, purpose, ctx).await
    }

    /// The request form's page for a purpose, None if it has no resolver (or no such purpose).
    /// READ ONLY.
    pub async fn request_page(
        &self,
        purpose: &str,
        ctx: &ClientContext,
    ) -> Result<Option<Page>, DbError> {
        self.purpose_page(REQUEST_PAGE, purpose, ctx).await
    }

    /// A page that one of the gateway_*_page functions (`sql`) finds for a purpose. READ ONLY.
    async fn purpose_page(
        &self,
        sql: &str,
        purpose: &str,
        ctx: &ClientContext,
    ) -> Result<Option<Page>, DbError> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client, true, ctx).await?;
        let stmt = tx.prepare_cached(sql).await?;
        let page: Option<String> = tx.query_one(&stmt, &[&purpose]).await?.get(0);
        tx.commit().await?;
        Ok(page.map(|p| page_from(Some(p))))
    }

    /// A typed code: redeems in one transaction (wrong codes are counted, so it commits either
    /// way) and returns only after COMMIT succeeded.
    pub async fn redeem_code(
        &self,
        purpose: &str,
        subject: &str,
        code: &str,
        form: &str,
        ctx: &ClientContext,
    ) -> Result<CodeRedemption, DbError> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client, false, ctx).await?;
        let stmt = tx.prepare_cached(REDEEM_CODE).await?;
        let row = tx
            .query_one(&stmt, &[&purpose, &subject, &code, &form])
            .await?;
        let result: Option<String> = row.get(1);
        let redemption = CodeRedemption {
            status: row.get(0),
            result: result.and_then(|r| serde_json::from_str(&r).ok()),
        };
        tx.commit().await?;
        Ok(redemption)
    }

    /// A request for a link: in one transaction, the purpose's request page (None: no resolver,
    /// nothing called) and linktoken.request, which answers the same for every identifier.
    /// Returns only after COMMIT succeeded.
    pub async fn request(
        &self,
        purpose: &str,
        identifier: &str,
        bind: &str,
        ctx: &ClientContext,
    ) -> Result<Option<Page>, DbError> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client, false, ctx).await?;
        let page_stmt = tx.prepare_cached(REQUEST_PAGE).await?;
        let Some(page) = tx.query_one(&page_stmt, &[&purpose]).await?.get(0) else {
            return Ok(None);
        };
        let stmt = tx.prepare_cached(REQUEST).await?;
        tx.execute(&stmt, &[&purpose, &identifier, &bind]).await?;
        tx.commit().await?;
        Ok(Some(page_from(Some(page))))
    }
}
