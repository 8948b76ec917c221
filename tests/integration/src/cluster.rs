//! Clusters in the tests, always through scripts/pg-cluster.sh (the one way scripts, the demo
//! and the tests make, start and stop clusters): [`pg_cluster`] for a test's own cluster, and
//! [`cluster`] to stop, crash and start the shared test cluster (LINKTOKEN_TEST_CLUSTER_DIR).
//! Only test binaries that run alone may do the latter: `cargo test` runs the binaries one
//! after another, but the tests inside one binary in parallel.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// Runs `scripts/pg-cluster.sh ARGS...` and returns what it did.
pub fn pg_cluster(args: &[&str]) -> Output {
    Command::new(repo_root().join("scripts/pg-cluster.sh"))
        .args(args)
        .output()
        .expect("run scripts/pg-cluster.sh")
}

/// Runs `scripts/pg-cluster.sh CMD DIR` (start, stop, crash, ...) on the shared test cluster
/// and panics if it fails.
pub fn cluster(cmd: &str) {
    let dir = std::env::var("LINKTOKEN_TEST_CLUSTER_DIR")
        .expect("set LINKTOKEN_TEST_CLUSTER_DIR (the cluster directory); `make test` does");
    let out = pg_cluster(&[cmd, &dir]);
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
