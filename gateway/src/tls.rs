//! TLS to PostgreSQL, as the connection string's `sslmode` and `sslrootcert` say (libpq's
//! meaning: <https://www.postgresql.org/docs/15/libpq-ssl.html>).
//!
//! tokio-postgres 0.7 knows only `sslmode=disable|prefer|require` and refuses `sslrootcert`.
//! So [`configure`] takes both keys out of the string (`linktoken_core::conninfo`), lets
//! tokio-postgres parse the rest, sets its sslmode (`require` for verify-ca and verify-full),
//! and does the verification itself, in the rustls certificate verifier:
//!
//! * prefer, require: no certificate check (the handshake's signatures are still checked);
//!   require with an existing root file (sslrootcert, or `~/.postgresql/root.crt`) checks the
//!   chain, as libpq does;
//! * verify-ca: the chain up to a root of sslrootcert, not the name;
//! * verify-full: the chain and that the certificate is for the host connected to (a DNS name
//!   or an IP address SAN).
//!
//! `sslrootcert=system` uses the operating system's trust store through rustls-native-certs
//! (on Debian, /etc/ssl/certs from the ca-certificates package). Root files are read once, at
//! startup. The TLS stack is rustls 0.23 (ring) through tokio-postgres-rustls.
//!
//! A failed handshake is logged as one line, `warn: database unavailable: TLS: <what>
//! (sslmode=…, sslrootcert=…)`, and surfaces as a connection error (503 for the request). The
//! connection string itself is never logged: it may hold a password.

use linktoken_core::conninfo::{self, Negotiation, Roots, TlsPlan, Verify};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use tokio_postgres::config::Host;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::Socket;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The TLS stream type (tokio-postgres-rustls' stream over a tokio-postgres socket).
pub type Stream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;
type InnerConnect = <MakeRustlsConnect as MakeTlsConnect<Socket>>::TlsConnect;

/// Parses the connection string and builds the TLS connector for it. Errors name the setting
/// or the file at fault, never the connection string.
pub fn configure(database_url: &str) -> Result<(tokio_postgres::Config, Connector), String> {
    let found = conninfo::extract(database_url).map_err(|e| e.to_string())?;
    let mut pg: tokio_postgres::Config = found.rest.parse().map_err(|e| format!("{e}"))?;
    let home = std::env::home_dir();
    let plan = conninfo::plan(
        found.sslmode,
        found.sslrootcert.as_deref(),
        home.as_deref(),
        |p| std::fs::metadata(p).is_ok(),
    )
    .map_err(|e| e.to_string())?;
    if let Some(file) = &plan.missing_root_file {
        eprintln!(
            "warn: sslrootcert file \"{}\" does not exist: sslmode=require encrypts but does not \
             verify the server certificate (as libpq); use sslmode=verify-full to insist",
            file.display()
        );
    }
    if pg.get_hosts().is_empty() && !pg.get_hostaddrs().is_empty() {
        // tokio-postgres uses `host` as the TLS server name and gives up on TLS without one.
        // libpq needs a host only to check the name (verify-full); otherwise the address
        // stands in for it, as the name rustls is given (nothing checks it).
        if plan.verify == Verify::ChainAndName {
            return Err(format!(
                "sslmode={}: give host= (the name to check the server certificate against), \
                 not only hostaddr=",
                plan.sslmode
            ));
        }
        for addr in pg.get_hostaddrs().to_vec() {
            pg.host(addr.to_string());
        }
    }
    let all_unix =
        !pg.get_hosts().is_empty() && pg.get_hosts().iter().all(|h| matches!(h, Host::Unix(_)));
    pg.ssl_mode(match plan.negotiation {
        // libpq does not use TLS on Unix-domain sockets whatever sslmode says; tokio-postgres
        // would ask for it there and fail with require.
        _ if all_unix => tokio_postgres::config::SslMode::Disable,
        Negotiation::Disable => tokio_postgres::config::SslMode::Disable,
        Negotiation::Prefer => tokio_postgres::config::SslMode::Prefer,
        Negotiation::Require => tokio_postgres::config::SslMode::Require,
    });
    let connector = Connector::new(&plan)?;
    Ok((pg, connector))
}

/// `sslmode=…, sslrootcert=…`: what the log lines name.
fn describe_plan(plan: &TlsPlan) -> String {
    match &plan.roots {
        Some(roots) => format!("sslmode={}, sslrootcert={roots}", plan.sslmode),
        None => format!("sslmode={}", plan.sslmode),
    }
}

fn load_roots(plan: &TlsPlan) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match &plan.roots {
        None => {}
        Some(Roots::System) => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                return Err(format!(
                    "sslmode={}: sslrootcert=system: no usable root certificate in the system's \
                     trust store{why}",
                    plan.sslmode
                ));
            }
        }
        Some(Roots::File(path)) => load_root_file(&mut store, path, plan)?,
    }
    Ok(store)
}

fn load_root_file(store: &mut RootCertStore, path: &Path, plan: &TlsPlan) -> Result<(), String> {
    let mode = plan.sslmode;
    let file = path.display();
    let pem = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "sslmode={mode}: root certificate file \"{file}\" does not exist; give \
             sslrootcert=FILE (PEM), use sslrootcert=system, or choose an sslmode that does not \
             verify the server certificate"
        ),
        _ => format!("sslmode={mode}: cannot read root certificate file \"{file}\": {e}"),
    })?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| {
            format!("sslmode={mode}: root certificate file \"{file}\" is not valid PEM: {e}")
        })?;
        store.add(cert).map_err(|e| {
            format!("sslmode={mode}: root certificate file \"{file}\" holds an unusable certificate: {e}")
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(format!(
            "sslmode={mode}: root certificate file \"{file}\" holds no PEM certificate"
        ));
    }
    Ok(())
}

/// Checks the server certificate as the plan says.
#[derive(Debug)]
struct Verifier {
    verify: Verify,
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.verify == Verify::Nothing {
            // prefer/require: encryption without authentication, as in libpq. The handshake
            // signatures below are still checked against this certificate's key.
            return Ok(ServerCertVerified::assertion());
        }
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        if self.verify == Verify::ChainAndName {
            rustls::client::verify_server_name(&cert, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// tokio-postgres' `MakeTlsConnect` over tokio-postgres-rustls, with the plan's verifier and
/// one clear log line per failed handshake.
#[derive(Clone)]
pub struct Connector {
    with_sni: MakeRustlsConnect,
    /// For host names rustls cannot use as a server name (no name check in these modes).
    without_sni: MakeRustlsConnect,
    verify: Verify,
    context: Arc<str>,
}

impl Connector {
    fn new(plan: &TlsPlan) -> Result<Connector, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(Verifier {
            verify: plan.verify,
            roots: load_roots(plan)?,
            provider: provider.clone(),
        });
        let config = |sni: bool| -> Result<ClientConfig, String> {
            let mut c = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS setup: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(verifier.clone())
                .with_no_client_auth();
            // What libpq 17 sends; PostgreSQL 17 requires it for sslnegotiation=direct, older
            // servers ignore it.
            c.alpn_protocols = vec![b"postgresql".to_vec()];
            c.enable_sni = sni;
            Ok(c)
        };
        Ok(Connector {
            with_sni: MakeRustlsConnect::new(config(true)?),
            without_sni: MakeRustlsConnect::new(config(false)?),
            verify: plan.verify,
            context: describe_plan(plan).into(),
        })
    }
}

impl MakeTlsConnect<Socket> for Connector {
    type Stream = Stream;
    type TlsConnect = Connect;
    type Error = Infallible;

    fn make_tls_connect(&mut self, host: &str) -> Result<Connect, Infallible> {
        let usable = ServerName::try_from(host).is_ok();
        let inner = if usable || self.verify == Verify::ChainAndName {
            // verify-full with an unusable name fails in the handshake, with a clear line.
            MakeTlsConnect::<Socket>::make_tls_connect(&mut self.with_sni, host)?
        } else {
            MakeTlsConnect::<Socket>::make_tls_connect(&mut self.without_sni, "invalid")?
        };
        Ok(Connect {
            inner,
            host: host.to_owned(),
            context: self.context.clone(),
        })
    }
}

/// One connection's handshake.
pub struct Connect {
    inner: InnerConnect,
    host: String,
    context: Arc<str>,
}

impl TlsConnect<Socket> for Connect {
    type Stream = Stream;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, TlsError>> + Send>>;

    fn connect(self, socket: Socket) -> Self::Future {
        let Connect {
            inner,
            host,
            context,
        } = self;
        let handshake = inner.connect(socket);
        Box::pin(async move {
            handshake.await.map_err(|e| {
                let err = TlsError(format!("{} ({context})", describe_failure(&e, &host)));
                eprintln!("warn: database unavailable: TLS: {}", err.0);
                err
            })
        })
    }
}

/// A failed handshake, described for people.
#[derive(Debug)]
pub struct TlsError(String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

fn describe_failure(e: &std::io::Error, host: &str) -> String {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return describe_rustls(tls, host);
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the handshake".to_owned()
        }
        std::io::ErrorKind::InvalidInput => {
            format!("host name {host:?} cannot be used as a TLS server name")
        }
        _ => e.to_string(),
    }
}

fn describe_rustls(e: &rustls::Error, host: &str) -> String {
    let rustls::Error::InvalidCertificate(c) = e else {
        return e.to_string();
    };
    match c {
        CertificateError::NotValidForName => format!("certificate not valid for name {host:?}"),
        CertificateError::NotValidForNameContext { presented, .. } => format!(
            "certificate not valid for name {host:?} (it is for {})",
            readable_names(presented)
        ),
        CertificateError::UnknownIssuer => {
            "certificate signed by an unknown issuer (not by a trusted root)".to_owned()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate has expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate is not valid yet".to_owned()
        }
        CertificateError::BadSignature => "certificate has a bad signature".to_owned(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate is not for TLS servers (extended key usage)".to_owned()
        }
        _ => e.to_string(),
    }
}

/// webpki's `DnsName("localhost")`, `IpAddress(127.0.0.1)` as `DNS:localhost`, `IP:127.0.0.1`.
fn readable_names(presented: &[String]) -> String {
    if presented.is_empty() {
        return "no DNS or IP name".to_owned();
    }
    presented
        .iter()
        .map(|n| {
            if let Some(d) = n
                .strip_prefix("DnsName(\"")
                .and_then(|r| r.strip_suffix("\")"))
            {
                format!("DNS:{d}")
            } else if let Some(ip) = n
                .strip_prefix("IpAddress(")
                .and_then(|r| r.strip_suffix(')'))
            {
                format!("IP:{ip}")
            } else {
                n.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_postgres::config::SslMode;

    fn cfg(url: &str) -> tokio_postgres::Config {
        configure(url).unwrap_or_else(|e| panic!("{e}")).0
    }

    #[test]
    fn the_rest_reaches_tokio_postgres_in_both_forms() {
        let c = cfg("host=db port=6543 user=web dbname=app sslmode=require password='a b'");
        assert_eq!(c.get_ssl_mode(), SslMode::Require);
        assert_eq!(c.get_user(), Some("web"));
        assert_eq!(c.get_password(), Some(&b"a b"[..]));
        assert_eq!(c.get_ports(), [6543]);
        let c = cfg("postgres://web:pw@db:6543/app?sslmode=disable&application_name=x");
        assert_eq!(c.get_ssl_mode(), SslMode::Disable);
        assert_eq!(c.get_dbname(), Some("app"));
        assert_eq!(c.get_application_name(), Some("x"));
        // The default is prefer, as in libpq.
        assert_eq!(cfg("host=db").get_ssl_mode(), SslMode::Prefer);
        assert_eq!(cfg("postgres://db/app").get_ssl_mode(), SslMode::Prefer);
    }

    #[test]
    fn verify_modes_ask_tokio_postgres_for_require() {
        let dir = std::env::temp_dir().join(format!("linktoken-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, TEST_CA).unwrap();
        for mode in ["verify-ca", "verify-full"] {
            let c = cfg(&format!(
                "host=db sslmode={mode} sslrootcert={}",
                ca.display()
            ));
            assert_eq!(c.get_ssl_mode(), SslMode::Require);
            let url = format!(
                "postgres://web@db/app?sslmode={mode}&sslrootcert={}",
                ca.display()
            );
            assert_eq!(cfg(&url).get_ssl_mode(), SslMode::Require);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn startup_errors_name_the_file_and_never_the_password() {
        let err = |url: &str| configure(url).err().expect("an error");
        let e = err("host=db password=hunter2 sslmode=verify-full sslrootcert=/nonexistent/ca.pem");
        assert!(e.contains("\"/nonexistent/ca.pem\" does not exist"), "{e}");
        assert!(e.contains("verify-full"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = err("postgres://u:hunter2@db/app?sslmode=verify-ca&sslrootcert=%2Fnonexistent");
        assert!(e.contains("\"/nonexistent\""), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = err("host=db password=hunter2 sslmode=verify_full");
        assert!(e.contains("invalid sslmode value: \"verify_full\""), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        // A file that is not PEM.
        let dir = std::env::temp_dir().join(format!("linktoken-tls-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.pem");
        std::fs::write(&bad, "not a certificate\n").unwrap();
        let e = err(&format!(
            "host=db sslmode=verify-ca sslrootcert={}",
            bad.display()
        ));
        assert!(e.contains("holds no PEM certificate"), "{e}");
        // require with an existing file verifies against it: so a bad file is an error too.
        let e = err(&format!(
            "host=db sslmode=require sslrootcert={}",
            bad.display()
        ));
        assert!(e.contains(&bad.display().to_string()), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
        // Keys tokio-postgres does not know are still refused by it.
        assert!(configure("host=db sslcrl=/x").is_err());
    }

    #[test]
    fn require_with_a_missing_named_file_does_not_verify() {
        let (c, conn) =
            configure("host=db sslmode=require sslrootcert=/nonexistent/ca.pem").unwrap();
        assert_eq!(c.get_ssl_mode(), SslMode::Require);
        assert_eq!(conn.verify, Verify::Nothing);
        assert_eq!(&*conn.context, "sslmode=require");
    }

    #[test]
    fn hostaddr_alone_stands_in_for_the_host_unless_the_name_is_checked() {
        let c = cfg("hostaddr=10.0.0.5,10.0.0.6 sslmode=require");
        assert_eq!(
            c.get_hosts(),
            [Host::Tcp("10.0.0.5".into()), Host::Tcp("10.0.0.6".into())]
        );
        assert_eq!(c.get_hostaddrs().len(), 2);
        let c = cfg("host=db hostaddr=10.0.0.5");
        assert_eq!(c.get_hosts(), [Host::Tcp("db".into())]);
        let e = configure("hostaddr=10.0.0.5 sslmode=verify-full sslrootcert=system").err();
        assert!(e.is_some_and(|e| e.contains("give host=")));
    }

    #[test]
    fn unix_sockets_never_use_tls() {
        assert_eq!(
            cfg("host=/run/postgresql sslmode=require").get_ssl_mode(),
            SslMode::Disable
        );
        assert_eq!(
            cfg("host=/run/postgresql,db sslmode=require").get_ssl_mode(),
            SslMode::Require
        );
    }

    #[test]
    fn readable_failure_text() {
        let names = vec![
            "DnsName(\"localhost\")".to_owned(),
            "IpAddress(10.0.0.1)".to_owned(),
            "DirectoryName".to_owned(),
        ];
        assert_eq!(
            readable_names(&names),
            "DNS:localhost, IP:10.0.0.1, DirectoryName"
        );
        let e = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("127.0.0.1").unwrap().to_owned(),
            presented: vec!["DnsName(\"localhost\")".to_owned()],
        });
        assert_eq!(
            describe_rustls(&e, "127.0.0.1"),
            "certificate not valid for name \"127.0.0.1\" (it is for DNS:localhost)"
        );
        let e = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(describe_rustls(&e, "db").contains("unknown issuer"));
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        assert!(describe_failure(&io, "db").contains("unknown issuer"));
    }

    /// A self-signed CA certificate (P-256) whose key was thrown away; only loaded, never
    /// trusted by any connection.
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBwjCCAWmgAwIBAgIULi76Dl1tFphX4wohrWbyuAyGmrwwCgYIKoZIzj0EAwIw
LzEtMCsGA1UEAwwkbGlua3Rva2VuIHVuaXQgdGVzdHMgKGtleSBkaXNjYXJkZWQp
MB4XDTI2MTIwMjA3MTc1NVoXDTM2MTEyOTA3MTc1NVowLzEtMCsGA1UEAwwkbGlu
a3Rva2VuIHVuaXQgdGVzdHMgKGtleSBkaXNjYXJkZWQpMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEYJJbTaq+Xh67H9dLSRjWHIhpelb2R4WG2d0lLxx1rInmbtDY
Omp8Udo6CbzIV+R63oiZeWUPMwFuv3z/+rJr0aNjMGEwHQYDVR0OBBYEFNfL3cAy
6h3LNEOntK6tbPi/uv5HMB8GA1UdIwQYMBaAFNfL3cAy6h3LNEOntK6tbPi/uv5H
MA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgIEMAoGCCqGSM49BAMCA0cA
MEQCIGA6zqkUptZT6Ya7EMCm4MSnaQbB1l4ZWMW1F4Y3Qtu1AiBIuMyrJdZ2kSxf
VGogrciDb31m+w0lCCRyqQKIFkmsMQ==
-----END CERTIFICATE-----
";
}
