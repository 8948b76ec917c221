//! Starts the real gateway binary (LINKTOKEN_GATEWAY_BIN) on 127.0.0.1 with a free port and
//! captures its log; stops it (SIGTERM, then kill) when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Gateway {
    pub addr: SocketAddr,
    /// Where /metrics is served when started with `--metrics-listen`.
    pub metrics_addr: Option<SocketAddr>,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

pub fn binary() -> String {
    std::env::var("LINKTOKEN_GATEWAY_BIN")
        .expect("set LINKTOKEN_GATEWAY_BIN to the linktoken-gateway binary; `make test` does")
}

impl Gateway {
    /// Starts the gateway connecting with `database_url`, with extra flags.
    pub fn start(database_url: &str, extra: &[&str]) -> Gateway {
        let mut child = Command::new(binary())
            .args(["--database-url", database_url, "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("LINKTOKEN_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the gateway");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        // Printed before the main address, so it is known once that one is.
        let metrics = Arc::new(Mutex::new(None));
        let metrics_sink = metrics.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("linktoken-gateway listening on http://") {
                    let _ = tx.send(addr.to_owned());
                }
                if let Some(addr) =
                    line.strip_prefix("linktoken-gateway serving /metrics on http://")
                {
                    *metrics_sink.lock().unwrap() = addr.parse().ok();
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("the gateway did not start: {:?}", log.lock().unwrap()))
            .parse()
            .unwrap();
        let metrics_addr = *metrics.lock().unwrap();
        Gateway {
            addr,
            metrics_addr,
            child,
            log,
        }
    }

    /// Everything the gateway has logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL: the process dies at once, in-flight requests and open transactions included.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit; returns whether it exited.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
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

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Keep the log for the test run's scan for leaked tokens.
        if let Ok(dir) = std::env::var("LINKTOKEN_TEST_LOG_DIR") {
            let _ = std::fs::create_dir_all(&dir);
            let file = format!("{dir}/gateway-{}.log", self.child.id());
            let _ = std::fs::write(file, self.log().join("\n"));
        }
    }
}
