//! Starts the real gateway binary (LINKTOKEN_GATEWAY_BIN) on 127.0.0.1 with a free port and
//! captures its log; stops it (SIGTERM, then kill) when dropped.

use crate::process::Process;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

pub struct Gateway {
    pub addr: SocketAddr,
    /// Where /metrics is served when started with `--metrics-listen`.
    pub metrics_addr: Option<SocketAddr>,
    process: Process,
}

pub fn binary() -> String {
    std::env::var("LINKTOKEN_GATEWAY_BIN")
        .expect("set LINKTOKEN_GATEWAY_BIN to the linktoken-gateway binary; `make test` does")
}

impl Gateway {
    /// Starts the gateway connecting with `database_url`, with extra flags.
    pub fn start(database_url: &str, extra: &[&str]) -> Gateway {
        let mut cmd = Command::new(binary());
        cmd.args(["--database-url", database_url, "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("LINKTOKEN_DATABASE_URL");
        let mut process = Process::start("gateway", cmd);
        let addr = process.wait_for("the gateway to start", |l| {
            l.strip_prefix("linktoken-gateway listening on http://")?
                .parse()
                .ok()
        });
        // Printed before the main address, so it is known once that one is.
        let metrics_addr = process.log().iter().find_map(|l| {
            l.strip_prefix("linktoken-gateway serving /metrics on http://")?
                .parse()
                .ok()
        });
        Gateway {
            addr,
            metrics_addr,
            process,
        }
    }

    /// Everything the gateway has logged so far.
    pub fn log(&self) -> Vec<String> {
        self.process.log()
    }

    /// SIGKILL: the process dies at once, in-flight requests and open transactions included.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit; returns whether it exited.
    pub fn terminate(&mut self) -> bool {
        self.process.signal_term();
        self.process
            .exited_within(Duration::from_secs(15))
            .is_some()
    }
}

/// A new login role that is only IN ROLE linktoken_gateway (named `it_<prefix>_<tag>`), and
/// the connection string for the gateway to use it. Returns (role, connection string).
pub async fn login_role(admin: &tokio_postgres::Client, prefix: &str) -> (String, String) {
    let role = format!("it_{prefix}_{}", crate::tag());
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN IN ROLE linktoken_gateway"
        ))
        .await
        .expect("create the gateway's login role");
    let cfg = crate::config();
    let host = match &cfg.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    let url = format!(
        "host={host} port={} user={role} dbname={}",
        cfg.get_ports()[0],
        cfg.get_dbname()
            .expect("the test database URL names a database")
    );
    (role, url)
}
