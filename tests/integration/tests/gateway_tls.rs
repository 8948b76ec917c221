//! The gateway connects to PostgreSQL over TLS as the connection string's sslmode and
//! sslrootcert say (libpq's meaning), against a real server with ssl=on.
//!
//! Its own cluster (under target/test-output, through scripts/pg-cluster.sh, destroyed at the
//! end, also on panic) with a throwaway CA: a server certificate for `DNS:localhost` only, and
//! a second, unrelated CA. pg_hba lets the gateway's role in over `hostssl` only and rejects
//! it on `hostnossl`, so a clear-text connection is refused: case 6 proves that the test would
//! notice clear text. The gateway's role logs in with SCRAM, so its password crosses only TLS.
//!
//! Needs LINKTOKEN_GATEWAY_BIN, the linktoken extension installed, openssl, and root or the
//! postgres OS user (pg-cluster.sh runs the server as postgres).

use linktoken_integration::cluster::{pg_cluster, repo_root};
use linktoken_integration::gateway::{self, Gateway};
use linktoken_integration::http;
use linktoken_integration::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const DB: &str = "linktoken_tls";

/// The test's cluster and certificates; destroys both when dropped (panics included).
struct TlsCluster {
    base: PathBuf,
    dir: PathBuf,
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        // Keep the server log for the run's scan for leaked tokens.
        if let Ok(logs) = std::env::var("LINKTOKEN_TEST_LOG_DIR") {
            let _ = std::fs::create_dir_all(&logs);
            let _ = std::fs::copy(
                self.dir.join("server.log"),
                Path::new(&logs).join("gateway-tls-server.log"),
            );
        }
        let dir = self.dir.display().to_string();
        let out = pg_cluster(&["destroy", &dir]);
        if !out.status.success() {
            eprintln!(
                "gateway_tls: pg-cluster.sh destroy {dir} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA certificate and key (P-256, two days).
fn make_ca(pki: &Path, name: &str, cn: &str) {
    let key = pki.join(format!("{name}.key"));
    let crt = pki.join(format!("{name}.crt"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={cn}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
    ]);
}

/// server.crt/server.key: signed by ca, for DNS:localhost only (no IP address).
fn make_server_cert(pki: &Path) {
    let p = |f: &str| pki.join(f).display().to_string();
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &p("server.key"),
        "-out",
        &p("server.csr"),
    ]);
    std::fs::write(
        pki.join("server.ext"),
        "subjectAltName=DNS:localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("server.csr"),
        "-CA",
        &p("ca.crt"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p("server.ext"),
        "-out",
        &p("server.crt"),
    ]);
}

fn postgres_uid() -> u32 {
    let out = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .expect("id -u postgres");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the postgres OS user exists")
}

/// Files the server reads: owned by postgres; the key 0600 (PostgreSQL insists).
fn give_to_postgres(path: &Path, mode: u32) {
    std::os::unix::fs::chown(path, Some(postgres_uid()), None).expect("chown to postgres");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

struct Setup {
    cluster: TlsCluster,
    port: u16,
    role: String,
    password: String,
    ca: PathBuf,
    other_ca: PathBuf,
}

impl Setup {
    /// A key=value connection string for the gateway's role.
    fn kv(&self, host: &str, tls: &str) -> String {
        format!(
            "host={host} port={} user={} password={} dbname={DB} {tls}",
            self.port, self.role, self.password
        )
    }

    /// A superuser connection over the cluster's Unix socket (local trust).
    async fn admin(&self, db: &str) -> tokio_postgres::Client {
        let mut c = tokio_postgres::Config::new();
        c.host_path(&self.cluster.dir)
            .port(self.port)
            .user("postgres")
            .dbname(db);
        connect_with(&c).await
    }
}

fn start_cluster() -> Setup {
    let base = repo_root()
        .join("target/test-output")
        .join(format!("gateway-tls-{}", std::process::id()));
    let dir = base.join("cluster");
    let pki = base.join("pki");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&pki).expect("create the test directories");
    for d in [&base, &pki] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let cluster = TlsCluster {
        base: base.clone(),
        dir: dir.clone(),
    };

    make_ca(&pki, "ca", "linktoken test CA");
    make_ca(&pki, "other-ca", "unrelated test CA");
    make_server_cert(&pki);
    give_to_postgres(&pki.join("server.key"), 0o600);
    give_to_postgres(&pki.join("server.crt"), 0o644);

    let role = format!("it_tls_{}", tag());
    let password = format!("pw{}", tag());
    let hba = pki.join("pg_hba.conf");
    std::fs::write(
        &hba,
        format!(
            "local     all all                   trust\n\
             hostssl   all {role} 127.0.0.1/32  scram-sha-256\n\
             hostnossl all {role} 127.0.0.1/32  reject\n\
             hostssl   all {role} ::1/128       scram-sha-256\n\
             hostnossl all {role} ::1/128       reject\n"
        ),
    )
    .unwrap();
    give_to_postgres(&hba, 0o644);

    let opt = |k: &str, f: &str| format!("{k}={}", pki.join(f).display());
    let (cert, key, hba_opt) = (
        opt("ssl_cert_file", "server.crt"),
        opt("ssl_key_file", "server.key"),
        opt("hba_file", "pg_hba.conf"),
    );
    let dir_s = dir.display().to_string();
    let out = pg_cluster(&[
        "start",
        &dir_s,
        "-c",
        "ssl=on",
        "-c",
        &cert,
        "-c",
        &key,
        "-c",
        &hba_opt,
        "-c",
        "password_encryption=scram-sha-256",
    ]);
    assert!(
        out.status.success(),
        "pg-cluster.sh start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("PGPORT="))
        .and_then(|p| p.trim().parse().ok())
        .expect("pg-cluster.sh prints PGPORT");
    Setup {
        cluster,
        port,
        role,
        password,
        ca: pki.join("ca.crt"),
        other_ca: pki.join("other-ca.crt"),
    }
}

/// GET `path` until it answers `want` (at most `limit`); returns the last status.
fn status_within(gw: &Gateway, path: &str, want: u16, limit: Duration) -> u16 {
    let deadline = Instant::now() + limit;
    loop {
        let status = http::get(gw.addr, path).status;
        if status == want || Instant::now() >= deadline {
            return status;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The first log line containing every needle (waiting at most 5 s for it).
fn log_line(gw: &Gateway, needles: &[&str]) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = gw
            .log()
            .into_iter()
            .find(|l| needles.iter().all(|n| l.contains(n)));
        if found.is_some() || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (ssl, version) of every backend of the gateway's role.
async fn gateway_backends(admin: &tokio_postgres::Client, role: &str) -> Vec<(bool, String)> {
    admin
        .query(
            "SELECT s.ssl, coalesce(s.version, '') FROM pg_catalog.pg_stat_ssl s \
             JOIN pg_catalog.pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'linktoken-gateway' AND a.usename = $1",
            &[&role],
        )
        .await
        .expect("pg_stat_ssl")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The gateway serves /healthz and the link, and its backends use TLS.
async fn assert_serves_over_tls(
    case: &str,
    gw: &Gateway,
    link: &str,
    admin: &tokio_postgres::Client,
    role: &str,
) {
    let health = status_within(gw, "/healthz", 200, Duration::from_secs(15));
    assert_eq!(health, 200, "{case}: /healthz; log: {:?}", gw.log());
    let landing = http::get(gw.addr, link);
    assert_eq!(
        landing.status,
        200,
        "{case}: GET /t/...; log: {:?}",
        gw.log()
    );
    let backends = gateway_backends(admin, role).await;
    assert!(!backends.is_empty(), "{case}: no gateway backend found");
    assert!(
        backends.iter().all(|(ssl, _)| *ssl),
        "{case}: a gateway backend without TLS: {backends:?}"
    );
    println!("{case}: /healthz 200, GET /t/ 200, backends {backends:?}");
}

/// The gateway answers 503 (health and link) and logs a line with every needle.
fn assert_refused(case: &str, gw: &Gateway, link: &str, needles: &[&str]) -> String {
    assert_eq!(
        http::get(gw.addr, "/healthz").status,
        503,
        "{case}: /healthz"
    );
    let landing = http::get(gw.addr, link);
    assert_eq!(landing.status, 503, "{case}: GET /t/...");
    let line = log_line(gw, needles)
        .unwrap_or_else(|| panic!("{case}: no log line with {needles:?}: {:?}", gw.log()));
    println!("{case}: /healthz 503, GET /t/ 503, log: {line}");
    line
}

fn assert_no_secret_logged(gw: &Gateway, secrets: &[&str]) {
    for line in gw.log() {
        for s in secrets {
            assert!(!line.contains(s), "the gateway logged a secret: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_connects_over_tls_as_sslmode_says() {
    let _ = gateway::binary(); // fails early and clearly when LINKTOKEN_GATEWAY_BIN is unset
    if let Some(home) = std::env::home_dir() {
        let default_root = home.join(".postgresql/root.crt");
        assert!(
            !default_root.exists(),
            "{} exists: with it sslmode=require verifies against it (libpq's rule), which \
             this test does not expect; move it away to run the test",
            default_root.display()
        );
    }
    let s = start_cluster();
    let postgres = s.admin("postgres").await;
    postgres
        .batch_execute(&format!("CREATE DATABASE {DB}"))
        .await
        .expect("create the test database");
    let admin = s.admin(DB).await;
    admin
        .batch_execute(&format!(
            "CREATE EXTENSION linktoken;
             ALTER DATABASE {DB} SET log_min_error_statement = panic;
             CREATE ROLE {} LOGIN PASSWORD '{}' IN ROLE linktoken_gateway",
            s.role, s.password
        ))
        .await
        .expect("create the extension and the gateway's role");
    let p = purpose(&admin, "tls", "1 hour", None).await;
    let token = issue(&admin, &p, "user:1").await;
    let link = format!("/t/{token}");
    let secrets = [token.as_str(), s.password.as_str()];
    let (ca, other_ca) = (s.ca.display().to_string(), s.other_ca.display().to_string());

    // (1) sslmode=require: encrypted, nothing verified (no root file anywhere).
    {
        let gw = Gateway::start(&s.kv("localhost", "sslmode=require"), &[]);
        assert_serves_over_tls("(1) require", &gw, &link, &admin, &s.role).await;
        assert_no_secret_logged(&gw, &secrets);
    }
    // (1b) no sslmode: libpq's default prefer takes TLS when the server offers it.
    {
        let gw = Gateway::start(&s.kv("127.0.0.1", ""), &[]);
        assert_serves_over_tls("(1b) default prefer", &gw, &link, &admin, &s.role).await;
    }
    // (2) verify-full against the right CA, for the name in the certificate; with
    // channel_binding=require, so SCRAM is bound to this TLS channel.
    {
        let tls = format!("sslmode=verify-full sslrootcert={ca} channel_binding=require");
        let gw = Gateway::start(&s.kv("localhost", &tls), &[]);
        assert_serves_over_tls("(2) verify-full", &gw, &link, &admin, &s.role).await;
        assert_no_secret_logged(&gw, &secrets);
    }
    // (3) verify-full against an unrelated CA: refused, one clear line.
    {
        let tls = format!("sslmode=verify-full sslrootcert={other_ca}");
        let gw = Gateway::start(&s.kv("localhost", &tls), &[]);
        let line = assert_refused(
            "(3) verify-full, wrong CA",
            &gw,
            &link,
            &[
                "warn: database unavailable: TLS: certificate signed by an unknown issuer",
                &format!("sslrootcert={other_ca}"),
                "sslmode=verify-full",
            ],
        );
        assert!(!line.contains(&s.password));
        assert_no_secret_logged(&gw, &secrets);
    }
    // (4) verify-full to 127.0.0.1, which the certificate does not name: refused.
    {
        let tls = format!("sslmode=verify-full sslrootcert={ca}");
        let gw = Gateway::start(&s.kv("127.0.0.1", &tls), &[]);
        assert_refused(
            "(4) verify-full, name mismatch",
            &gw,
            &link,
            &[
                "warn: database unavailable: TLS: certificate not valid for name \"127.0.0.1\"",
                "DNS:localhost",
                "(sslmode=verify-full",
            ],
        );
    }
    // (5) verify-ca to 127.0.0.1: the chain is checked, the name is not.
    {
        let tls = format!("sslmode=verify-ca sslrootcert={ca}");
        let gw = Gateway::start(&s.kv("127.0.0.1", &tls), &[]);
        assert_serves_over_tls("(5) verify-ca, 127.0.0.1", &gw, &link, &admin, &s.role).await;
        // ... and with the wrong CA it is refused.
        let tls = format!("sslmode=verify-ca sslrootcert={other_ca}");
        let gw = Gateway::start(&s.kv("127.0.0.1", &tls), &[]);
        assert_refused(
            "(5b) verify-ca, wrong CA",
            &gw,
            &link,
            &[
                "TLS: certificate signed by an unknown issuer",
                "sslmode=verify-ca",
            ],
        );
    }
    // (6) positive control: clear text is refused by the server (hostnossl reject), so a
    // gateway that did not use TLS would fail these cases.
    {
        let gw = Gateway::start(&s.kv("localhost", "sslmode=disable"), &[]);
        assert_refused(
            "(6) disable (clear text)",
            &gw,
            &link,
            &["warn: database unavailable"],
        );
        assert_no_secret_logged(&gw, &secrets);
        // The gateway logs only "db error" for it; the server says why it refused.
        let why = format!(
            "pg_hba.conf rejects connection for host \"127.0.0.1\", user \"{}\", database \"{DB}\", no encryption",
            s.role
        );
        let server_log = s.cluster.dir.join("server.log");
        let deadline = Instant::now() + Duration::from_secs(5);
        let line = loop {
            let text = std::fs::read_to_string(&server_log).unwrap_or_default();
            if let Some(l) = text.lines().find(|l| l.contains(&why)) {
                break l.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "(6): the server did not log {why:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        println!("(6) server log: {line}");
    }
    // (7) the URL form, sslrootcert percent-encoded.
    {
        let encoded = ca.replace('/', "%2F");
        let url = format!(
            "postgres://{}:{}@localhost:{}/{DB}?sslmode=verify-full&sslrootcert={encoded}",
            s.role, s.password, s.port
        );
        let gw = Gateway::start(&url, &[]);
        assert_serves_over_tls("(7) URL, verify-full", &gw, &link, &admin, &s.role).await;
        assert_no_secret_logged(&gw, &secrets);
        // The URL form's name check works too.
        let url = format!(
            "postgresql://{}:{}@127.0.0.1:{}/{DB}?sslrootcert={ca}&sslmode=verify-full",
            s.role, s.password, s.port
        );
        let gw = Gateway::start(&url, &[]);
        assert_refused(
            "(7b) URL, verify-full, name mismatch",
            &gw,
            &link,
            &["TLS: certificate not valid for name \"127.0.0.1\""],
        );
    }
    // (8) libpq's compatibility rule: require with a root file verifies the chain.
    {
        let tls = format!("sslmode=require sslrootcert={other_ca}");
        let gw = Gateway::start(&s.kv("localhost", &tls), &[]);
        assert_refused(
            "(8) require + sslrootcert (acts as verify-ca)",
            &gw,
            &link,
            &[
                "TLS: certificate signed by an unknown issuer",
                "sslmode=require",
            ],
        );
    }
    // (9) sslrootcert=system: the system's roots do not include the throwaway CA.
    {
        let gw = Gateway::start(&s.kv("localhost", "sslrootcert=system"), &[]);
        assert_refused(
            "(9) system roots",
            &gw,
            &link,
            &[
                "TLS: certificate signed by an unknown issuer",
                "sslmode=verify-full, sslrootcert=system",
            ],
        );
    }
    // (10) verify-full without a readable root file: the gateway does not start, and says
    // which file.
    {
        let missing = s.cluster.base.join("pki/missing.crt").display().to_string();
        let url = s.kv(
            "localhost",
            &format!("sslmode=verify-full sslrootcert={missing}"),
        );
        let out = Command::new(gateway::binary())
            .args(["--database-url", &url, "--listen", "127.0.0.1:0"])
            .env_remove("LINKTOKEN_DATABASE_URL")
            .output()
            .expect("run the gateway");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "(10): {stderr}");
        assert!(
            stderr.contains(&format!(
                "root certificate file \"{missing}\" does not exist"
            )),
            "(10): {stderr}"
        );
        assert!(
            !stderr.contains(&s.password),
            "(10): the password was printed"
        );
        println!("(10) missing root file: exit 2, {}", stderr.trim());
    }
    drop(admin);
    drop(postgres);
}
