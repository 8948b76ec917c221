//! SMTP delivery through lettre over rustls: `--smtp-url` smtp://host[:port] (STARTTLS when the
//! server offers it, `?tls=required` to insist, `?tls=none` never) or smtps://host[:port] (TLS
//! from the first byte). Credentials come from LINKTOKEN_SMTP_USERNAME/LINKTOKEN_SMTP_PASSWORD
//! or the URL's user info; neither the URL nor the password is ever part of a message here.

use crate::db::with_causes;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::Path;
use std::time::Duration;

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    timeout: Duration,
    /// scheme://host:port, for the log (no user info).
    pub describe: String,
}

/// A failed delivery.
pub struct SendError {
    /// What went wrong (the server's answer or the connection's error); may quote the address.
    pub text: String,
}

fn decoded(part: &str, what: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| format!("--smtp-url: the {what} is not UTF-8 once percent-decoded"))
}

/// User and password: the environment first, else the URL.
fn credentials(url: &url::Url) -> Result<Option<Credentials>, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (user, password) = match (
        env("LINKTOKEN_SMTP_USERNAME"),
        env("LINKTOKEN_SMTP_PASSWORD"),
    ) {
        (Some(u), Some(p)) => (u, p),
        (Some(_), None) | (None, Some(_)) => {
            return Err(
                "set both LINKTOKEN_SMTP_USERNAME and LINKTOKEN_SMTP_PASSWORD, or neither".into(),
            )
        }
        (None, None) => match (url.username(), url.password()) {
            ("", None) => return Ok(None),
            (u, Some(p)) => (decoded(u, "user")?, decoded(p, "password")?),
            (_, None) => return Err("--smtp-url: a user without a password".into()),
        },
    };
    Ok(Some(Credentials::new(user, password)))
}

impl Smtp {
    pub fn new(
        smtp_url: &str,
        root_cert: Option<&Path>,
        timeout: Duration,
    ) -> Result<Smtp, String> {
        // The parse error never quotes the URL (it may hold a password).
        let url = url::Url::parse(smtp_url).map_err(|e| format!("--smtp-url: not a URL ({e})"))?;
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err("--smtp-url: no host".into()),
        };
        let tls_param = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let mut params = TlsParameters::builder(host.clone());
        if let Some(file) = root_cert {
            let pem = std::fs::read(file)
                .map_err(|e| format!("--smtp-root-cert {}: {e}", file.display()))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| format!("--smtp-root-cert {}: {e}", file.display()))?;
            params = params.add_root_certificate(cert);
        }
        let params = params
            .build_rustls()
            .map_err(|e| format!("SMTP TLS setup: {e}"))?;
        let (tls, port) = match (url.scheme(), tls_param.as_deref()) {
            ("smtps", None) => (Tls::Wrapper(params), 465),
            ("smtp", None | Some("opportunistic")) => (Tls::Opportunistic(params), 25),
            ("smtp", Some("required")) => (Tls::Required(params), 25),
            ("smtp", Some("none")) => (Tls::None, 25),
            ("smtp" | "smtps", Some(_)) => {
                return Err(
                    "--smtp-url: tls= may be required, opportunistic or none (smtp:// only)".into(),
                )
            }
            _ => return Err("--smtp-url: the scheme must be smtp:// or smtps://".into()),
        };
        let port = url.port().unwrap_or(port);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some(c) = credentials(&url)? {
            builder = builder.credentials(c);
        }
        Ok(Smtp {
            transport: builder.build(),
            timeout,
            describe: format!("{}://{host}:{port}", url.scheme()),
        })
    }

    /// Delivers one message: Ok once the server accepted it (250 after DATA).
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(SendError {
                text: with_causes(&e),
            }),
            Err(_) => Err(SendError {
                text: format!(
                    "no answer from the SMTP server within {}",
                    humantime::format_duration(self.timeout)
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(url: &str) -> Result<Smtp, String> {
        Smtp::new(url, None, Duration::from_secs(5))
    }

    #[test]
    fn urls() {
        assert_eq!(
            new("smtp://127.0.0.1:2525").unwrap().describe,
            "smtp://127.0.0.1:2525"
        );
        assert_eq!(
            new("smtps://mail.example").unwrap().describe,
            "smtps://mail.example:465"
        );
        assert_eq!(new("smtp://[::1]").unwrap().describe, "smtp://::1:25");
        assert!(new("smtp://h?tls=required").is_ok());
        assert!(new("smtp://h?tls=maybe").err().unwrap().contains("tls="));
        assert!(new("http://h").err().unwrap().contains("scheme"));
        let e = new("smtp://user:hunter2@").err().unwrap();
        assert!(!e.contains("hunter2"), "{e}");
        let e = new("smtp://user@h").err().unwrap();
        assert!(e.contains("without a password"), "{e}");
        let ok = new("smtp://us%40er:hunter2@h:587").unwrap();
        assert_eq!(ok.describe, "smtp://h:587");
    }
}
