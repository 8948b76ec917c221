//! The mailer's command line: `linktoken-gateway mailer keygen --key-file F` and
//! `linktoken-gateway mailer --database-url … --key-file F --smtp-url … --from … --public-url …`.
//! Every flag of the worker has an environment-variable fallback.

use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "linktoken-gateway mailer keygen",
    about = "Writes a new mailer private key to --key-file (mode 0600; an existing file is never \
             overwritten) and its public key as hex to <key-file>.pub, and prints the SQL that \
             makes the database seal messages to it."
)]
pub struct Keygen {
    /// Where to write the private key.
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,
}

/// A duration flag: `500ms`, `30s`, `5m`, `1h`, `1h 30m`; a bare number is seconds.
/// Duration flags: `500ms`, `30s`, `5m`, or a bare number of seconds.
fn duration(text: &str) -> Result<Duration, String> {
    crate::config::parse_duration_in(text, Duration::from_secs(1))
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "linktoken-gateway mailer",
    about = "Sends the mails of linktoken.outbox over SMTP.",
    long_about = "Sends the mails of linktoken.outbox over SMTP: waits for them (LISTEN \
                  linktoken_outbox and a periodic poll), claims a few at a time (FOR UPDATE SKIP \
                  LOCKED, so several mailers may run at once), opens their sealed part with the \
                  private key, sends a text and HTML mail, and marks them sent, or retries with \
                  backoff and gives up after --max-attempts. Connect as a login role that is only \
                  IN ROLE linktoken_mailer. `linktoken-gateway mailer keygen --key-file F` makes \
                  a key pair. See docs/gateway.md, section Mailer."
)]
pub struct Run {
    /// PostgreSQL connection string (key=value or postgres:// URL) for a role IN ROLE
    /// linktoken_mailer; sslmode and sslrootcert as for the gateway.
    #[arg(long, env = "LINKTOKEN_MAILER_DATABASE_URL")]
    pub database_url: String,

    /// A private key file from `mailer keygen`. Repeat it to hold old keys after a rotation
    /// (the environment variable takes a comma-separated list).
    #[arg(
        long,
        env = "LINKTOKEN_MAILER_KEY_FILE",
        value_name = "FILE",
        required = true,
        value_delimiter = ','
    )]
    pub key_file: Vec<PathBuf>,

    /// smtp://host[:port] (STARTTLS when the server offers it; ?tls=required to insist) or
    /// smtps://host[:port] (TLS from the start). User and password may be in the URL; better
    /// in LINKTOKEN_SMTP_USERNAME and LINKTOKEN_SMTP_PASSWORD, which take precedence.
    #[arg(long, env = "LINKTOKEN_SMTP_URL", value_name = "URL")]
    pub smtp_url: String,

    /// A PEM file of root certificates to trust for the SMTP server besides the system's.
    #[arg(long, env = "LINKTOKEN_SMTP_ROOT_CERT", value_name = "FILE")]
    pub smtp_root_cert: Option<PathBuf>,

    /// The sender, e.g. 'Example <no-reply@example.org>'.
    #[arg(long, env = "LINKTOKEN_MAILER_FROM", value_name = "ADDR")]
    pub from: String,

    /// The gateway's public URL, as in the gateway's --public-url: links are
    /// {public-url}/t/{token}, the code form {public-url}/code/{purpose}.
    #[arg(long, env = "LINKTOKEN_PUBLIC_URL", value_name = "URL")]
    pub public_url: String,

    /// Directory with per-purpose templates <purpose>.subject, <purpose>.txt, <purpose>.html
    /// (any of them; the built-in one fills the rest).
    #[arg(long, env = "LINKTOKEN_MAILER_TEMPLATES", value_name = "DIR")]
    pub templates: Option<PathBuf>,

    /// Send only the messages of this purpose (repeatable; the environment variable takes a
    /// comma-separated list). Default: every purpose.
    #[arg(
        long,
        env = "LINKTOKEN_MAILER_PURPOSE",
        value_name = "PURPOSE",
        value_delimiter = ','
    )]
    pub purpose: Vec<String>,

    /// Attempts per message before the mailer gives up on it.
    #[arg(long, env = "LINKTOKEN_MAILER_MAX_ATTEMPTS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_attempts: u32,

    /// How often to look for due messages besides notifications (retries, missed notifications).
    #[arg(long, env = "LINKTOKEN_MAILER_POLL_INTERVAL", default_value = "5s", value_parser = duration)]
    pub poll_interval: Duration,

    /// The wait after the first failed attempt; doubled after each further one.
    #[arg(long, env = "LINKTOKEN_MAILER_BACKOFF_BASE", default_value = "30s", value_parser = duration)]
    pub backoff_base: Duration,

    /// The longest wait between attempts.
    #[arg(long, env = "LINKTOKEN_MAILER_BACKOFF_MAX", default_value = "1h", value_parser = duration)]
    pub backoff_max: Duration,

    /// The longest one SMTP delivery (connect, TLS, every command) may take.
    #[arg(long, env = "LINKTOKEN_MAILER_SMTP_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub smtp_timeout: Duration,

    /// How long a claimed message stays reserved for this mailer; after that (a killed
    /// mailer) another one sends it. Must exceed --batch × --smtp-timeout.
    #[arg(long, env = "LINKTOKEN_MAILER_LEASE", default_value = "5m", value_parser = duration)]
    pub lease: Duration,

    /// Messages claimed at a time.
    #[arg(long, env = "LINKTOKEN_MAILER_BATCH", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub batch: u32,

    /// After SIGTERM/SIGINT, how long a mail being sent may take to finish before it is
    /// abandoned (and left for a retry).
    #[arg(long, env = "LINKTOKEN_MAILER_SHUTDOWN_GRACE", default_value = "30s", value_parser = duration)]
    pub shutdown_grace: Duration,
}

impl Run {
    /// Checks that need more than one flag.
    pub fn check(&self) -> Result<(), String> {
        let busiest = self.smtp_timeout.saturating_mul(self.batch);
        if self.lease <= busiest {
            return Err(format!(
                "--lease ({}) must exceed --batch × --smtp-timeout ({}): a batch still being \
                 sent must not be claimed by another mailer",
                humantime::format_duration(self.lease),
                humantime::format_duration(busiest)
            ));
        }
        if self.backoff_base.is_zero() || self.backoff_max < self.backoff_base {
            return Err("--backoff-base must be above zero and at most --backoff-max".into());
        }
        if self.poll_interval.is_zero() {
            return Err("--poll-interval must be above zero".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert!(duration("soon").is_err());
    }

    fn run(extra: &[&str]) -> Result<Run, clap::Error> {
        let mut args = vec![
            "mailer",
            "--database-url",
            "host=x",
            "--key-file",
            "k",
            "--smtp-url",
            "smtp://127.0.0.1:25",
            "--from",
            "a@example.org",
            "--public-url",
            "https://links.example",
        ];
        args.extend_from_slice(extra);
        Run::try_parse_from(args)
    }

    #[test]
    fn defaults_and_repeated_flags() {
        let r = run(&["--key-file", "old", "--purpose", "a", "--purpose", "b"]).unwrap();
        assert_eq!(r.key_file, [PathBuf::from("k"), PathBuf::from("old")]);
        assert_eq!(r.purpose, ["a", "b"]);
        assert_eq!(r.max_attempts, 8);
        assert!(r.check().is_ok());
    }

    #[test]
    fn the_lease_must_cover_a_batch() {
        let r = run(&["--lease", "60s", "--batch", "4", "--smtp-timeout", "20s"]).unwrap();
        assert!(r.check().unwrap_err().contains("--lease"));
        assert!(run(&["--max-attempts", "0"]).is_err());
    }
}
