//! Command-line flags, each with an environment-variable fallback.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "linktoken-gateway",
    version,
    about = "Landing pages and form redemption for linktoken links.",
    long_about = "Serves GET/HEAD /t/{token} (a landing page: looks the token up, changes nothing) and \
                  POST /t/{token} (redeems it through linktoken.gateway_redeem), the typed-code form \
                  GET/POST /code/{purpose}, plus /healthz and /metrics. \
                  Connect it as a login role that is only IN ROLE linktoken_gateway."
)]
pub struct Config {
    /// PostgreSQL connection string (key=value or postgres:// URL) for a role IN ROLE linktoken_gateway.
    #[arg(long, env = "LINKTOKEN_DATABASE_URL")]
    pub database_url: String,

    /// Address to listen on.
    #[arg(long, env = "LINKTOKEN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Serve /metrics on this address instead, e.g. 127.0.0.1:9090 (the main listener then
    /// answers 404 for /metrics). Unset: /metrics on the main listener.
    #[arg(long, env = "LINKTOKEN_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Public scheme and host the links point at, e.g. https://links.example.org. State-changing
    /// POSTs from browsers must come from this origin. With https, responses carry HSTS, session
    /// cookies are Secure with the __Host- prefix, and only __Host-linktoken_bind is read.
    #[arg(
        long,
        env = "LINKTOKEN_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: String,

    /// Directory with template overrides (landing.html, success.html, status.html, error.html,
    /// base.html); templates are autoescaped.
    #[arg(long, env = "LINKTOKEN_TEMPLATES")]
    pub templates: Option<PathBuf>,

    /// Take the client address from the last X-Forwarded-For entry (only behind a proxy that sets it).
    #[arg(long, env = "LINKTOKEN_TRUST_PROXY")]
    pub trust_proxy: bool,

    /// Most database connections.
    #[arg(long, env = "LINKTOKEN_POOL_SIZE", default_value_t = 16)]
    pub pool_size: usize,

    /// How long a request may wait for a database connection before it gets 503 (milliseconds).
    #[arg(long, env = "LINKTOKEN_POOL_WAIT_MS", default_value_t = 2000)]
    pub pool_wait_ms: u64,

    /// Whole-request deadline, database included (milliseconds).
    #[arg(long, env = "LINKTOKEN_REQUEST_TIMEOUT_MS", default_value_t = 10000)]
    pub request_timeout_ms: u64,

    /// How long a client may take to send the request head (milliseconds). Also how long an
    /// idle keep-alive connection stays open.
    #[arg(long, env = "LINKTOKEN_HEADER_TIMEOUT_MS", default_value_t = 10000)]
    pub header_timeout_ms: u64,

    /// How long a client may take to send a request body (milliseconds); slower bodies get 408.
    #[arg(long, env = "LINKTOKEN_BODY_TIMEOUT_MS", default_value_t = 5000)]
    pub body_timeout_ms: u64,

    /// Failed lookups (unknown, expired, used, revoked, malformed) one client address may make
    /// per minute before it gets 429.
    #[arg(
        long,
        env = "LINKTOKEN_FAILED_LOOKUPS_PER_MINUTE",
        default_value_t = 30
    )]
    pub failed_lookups_per_minute: u32,

    /// Requests one client (an IPv4 address or an IPv6 /64) may have in flight at once on the
    /// routes that use the database; more get 429 at once. 0: no cap. Default: half the pool
    /// size, at least 2.
    #[arg(long, env = "LINKTOKEN_MAX_IN_FLIGHT_PER_CLIENT", value_name = "N")]
    pub max_in_flight_per_client: Option<usize>,

    /// Link requests (POST /request/{purpose}) one client (an IPv4 address or an IPv6 /64)
    /// may make per minute, in a burst of the same size; more get 429.
    #[arg(long, env = "LINKTOKEN_REQUESTS_PER_MINUTE", default_value_t = 10)]
    pub requests_per_minute: u32,

    /// The least time every POST /request/{purpose} takes to answer, so that the time does not
    /// tell whether the identifier is known (a known one issues a token and queues a mail).
    /// `300ms`, `1s`, or a number of milliseconds; keep it above the slowest request().
    #[arg(
        long,
        env = "LINKTOKEN_REQUEST_MIN_DURATION",
        default_value = "300ms",
        value_name = "DURATION",
        value_parser = parse_duration
    )]
    pub request_min_duration: Duration,

    /// How long in-flight requests may take to finish after SIGTERM (milliseconds).
    #[arg(long, env = "LINKTOKEN_SHUTDOWN_GRACE_MS", default_value_t = 10000)]
    pub shutdown_grace_ms: u64,
}

impl Config {
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }
    /// The per-client in-flight cap, None for none. Half the pool leaves the other half to
    /// everyone else; at least 2, so a double-clicked button is not refused.
    pub fn in_flight_cap(&self) -> Option<usize> {
        match self.max_in_flight_per_client {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some((self.pool_size / 2).max(2)),
        }
    }
    pub fn pool_wait(&self) -> Duration {
        Duration::from_millis(self.pool_wait_ms)
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

/// `300ms`, `0.5s`, `1s 500ms` (humantime), or a bare number of milliseconds (`300`), as the
/// gateway's other time flags count.
fn parse_duration(text: &str) -> Result<Duration, String> {
    parse_duration_in(text, Duration::from_millis(1))
}

/// The one parser of duration flags (the gateway's and the mailer's): humantime text
/// (`300ms`, `0.5s`, `5m`), or a bare whole number of `bare_unit`s.
pub fn parse_duration_in(text: &str, bare_unit: Duration) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(n) = text.parse::<u32>() {
        return Ok(bare_unit * n);
    }
    humantime::parse_duration(text).map_err(|e| {
        format!(
            "{e} (e.g. 300ms, 0.5s, 5m, or a number of {})",
            if bare_unit >= Duration::from_secs(1) {
                "seconds"
            } else {
                "milliseconds"
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("300"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("1s 500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "ms", "-1", "fast", "300 ms please"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
