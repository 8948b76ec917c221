//! Stops, crashes and starts the test cluster (LINKTOKEN_TEST_CLUSTER_DIR) through
//! scripts/pg-cluster.sh. Only test binaries that run alone may do this: `cargo test` runs the
//! binaries one after another, but the tests inside one binary in parallel.

use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `scripts/pg-cluster.sh CMD DIR` (start, stop, crash, ...) and panics if it fails.
pub fn cluster(cmd: &str) {
    let dir = std::env::var("LINKTOKEN_TEST_CLUSTER_DIR")
        .expect("set LINKTOKEN_TEST_CLUSTER_DIR (the cluster directory); `make test` does");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg-cluster.sh");
    let out = Command::new(script)
        .args([cmd, &dir])
        .output()
        .expect("run pg-cluster.sh");
    assert!(
        out.status.success(),
        "pg-cluster.sh {cmd} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits (up to `limit`) until a new superuser connection works; returns whether it did.
pub async fn wait_until_accepting(limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok((client, conn)) = crate::config().connect(tokio_postgres::NoTls).await {
            tokio::spawn(conn);
            if client.simple_query("SELECT 1").await.is_ok() {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
