//! The delivery loop: wait for messages (LISTEN linktoken_outbox, and a poll every
//! --poll-interval), claim a batch, and for each message open, compose, send and mark it.
//!
//! Logs name messages by id and purpose only: never the token, the code, the address or the
//! SMTP credentials. Errors from the SMTP server are scrubbed of the address, token and code
//! before they reach the log or last_error.
//!
//! A stop (SIGTERM, SIGINT) ends the loop after the message being sent: a send in flight gets
//! up to --shutdown-grace to finish and is then marked sent; one that takes longer is abandoned
//! and rescheduled at once (next_attempt_at = now). Messages claimed but not started are handed
//! back. A mailer killed between the server's acceptance and the mark leaves the message
//! claimed: it is sent again when its lease ends (at least once, never marked sent unsent).

use super::cli::Run;
use super::compose::{Sender, Templates, Unsendable};
use super::keys::Keyring;
use super::outbox::{self, Claimed, Scope};
use super::smtp::Smtp;
use crate::db::with_causes;
use crate::tls::Connector;
use linktoken_core::mail;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio_postgres::{AsyncMessage, Client};

const CHANNEL: &str = "linktoken_outbox";

/// The database: the worker's connection, made again after it is lost.
struct Database {
    pg: tokio_postgres::Config,
    tls: Connector,
    client: Option<Client>,
    /// The last attempt failed (log only changes).
    down: bool,
}

impl Database {
    async fn client(&mut self) -> Option<&Client> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            match self.pg.connect(self.tls.clone()).await {
                Ok((client, connection)) => {
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    if self.down {
                        eprintln!("mailer: database answers again");
                    }
                    self.down = false;
                    self.client = Some(client);
                }
                Err(e) => {
                    if !self.down {
                        eprintln!("warn: mailer: database unavailable: {}", with_causes(&e));
                    }
                    self.down = true;
                    return None;
                }
            }
        }
        self.client.as_ref()
    }

    fn failed(&mut self, e: &tokio_postgres::Error) {
        eprintln!("warn: mailer: database error: {}", with_causes(e));
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
        }
    }
}

/// LISTEN on a connection of its own; every notification (and every reconnection, which may
/// have missed some) wakes the worker. Reconnects after 1 s, up to 30 s apart.
async fn listen(
    pg: tokio_postgres::Config,
    tls: Connector,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut delay = Duration::from_secs(1);
    loop {
        if let Ok((client, mut connection)) = pg.connect(tls.clone()).await {
            let waker = wake.clone();
            let mut driver = tokio::spawn(async move {
                while let Some(message) =
                    std::future::poll_fn(|cx| connection.poll_message(cx)).await
                {
                    match message {
                        Ok(AsyncMessage::Notification(_)) => waker.notify_one(),
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            });
            if client
                .batch_execute(&format!("LISTEN {CHANNEL}"))
                .await
                .is_ok()
            {
                delay = Duration::from_secs(1);
                wake.notify_one();
                tokio::select! {
                    _ = &mut driver => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
            driver.abort();
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Sets the flag on SIGTERM or SIGINT. The handlers are installed before this returns.
fn stop_on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    let signal = crate::shutdown::signal();
    tokio::spawn(async move {
        signal.await;
        eprintln!("mailer: stopping after the mail being sent");
        let _ = tx.send(true);
    });
    rx
}

struct Worker {
    args: Run,
    db: Database,
    keys: Keyring,
    scope: Scope,
    sender: Sender,
    smtp: Smtp,
    stop: watch::Receiver<bool>,
    /// Messages already reported as sealed to a key this mailer does not hold.
    reported: HashSet<i64>,
}

enum Outcome {
    Sent,
    Failed(String),
    /// Stopped while sending, after the grace period.
    Abandoned,
}

impl Worker {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sends, racing a stop: after a stop the send gets --shutdown-grace more.
    async fn deliver(&self, message: lettre::Message) -> Outcome {
        let mut stop = self.stop.clone();
        let grace = self.args.shutdown_grace;
        let deadline = async move {
            let _ = stop.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            sent = self.smtp.send(message) => match sent {
                Ok(()) => Outcome::Sent,
                Err(e) => Outcome::Failed(e.text),
            },
            _ = deadline => Outcome::Abandoned,
        }
    }

    /// Runs one outbox update, reconnecting and trying again (a few times) when the database
    /// is unreachable; false if it never succeeded.
    async fn update(&mut self, what: Update<'_>) -> bool {
        for attempt in 0..5 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let Some(db) = self.db.client().await else {
                continue;
            };
            let done = match &what {
                Update::Sent(id) => outbox::mark_sent(db, *id).await,
                Update::Retry(id, error, wait) => outbox::retry_later(db, *id, error, *wait).await,
                Update::GiveUp(id, error) => outbox::give_up(db, *id, error).await,
                Update::Release(ids) => outbox::release(db, ids).await,
            };
            match done {
                Ok(()) => return true,
                Err(e) => self.db.failed(&e),
            }
        }
        false
    }

    async fn give_up(&mut self, m: &Claimed, reason: &str) {
        eprintln!(
            "warn: mailer: message {} (purpose {}): not sent: {reason}",
            m.id, m.purpose
        );
        self.update(Update::GiveUp(m.id, reason)).await;
    }

    /// One claimed message, from opening to its mark.
    async fn process(&mut self, m: &Claimed) {
        let max = self.args.max_attempts;
        if u32::try_from(m.attempts).unwrap_or(0) > max {
            return self
                .give_up(m, &format!("gave up after {max} attempts"))
                .await;
        }
        if m.expired {
            return self.give_up(m, "expired before it was sent").await;
        }
        let Some(secret) = self.keys.open(&m.fingerprint, &m.sealed) else {
            return self
                .give_up(
                    m,
                    "its sealed part does not open with the key of its fingerprint",
                )
                .await;
        };
        let message = match self.sender.compose(m, &secret) {
            Ok(message) => message,
            Err(Unsendable(reason)) => return self.give_up(m, &reason).await,
        };
        let mut secrets = vec![
            (m.address.trim(), "<address>"),
            (secret.token.as_str(), "<token>"),
        ];
        if let Some(code) = &secret.code {
            secrets.push((code.as_str(), "<code>"));
        }
        match self.deliver(message).await {
            Outcome::Sent => {
                if self.update(Update::Sent(m.id)).await {
                    eprintln!(
                        "mailer: sent message {} (purpose {}, attempt {})",
                        m.id, m.purpose, m.attempts
                    );
                } else {
                    eprintln!(
                        "error: mailer: message {} (purpose {}) was sent but cannot be marked \
                         sent: it will be sent again when its lease ends",
                        m.id, m.purpose
                    );
                }
            }
            Outcome::Failed(text) => {
                let text = mail::scrub(&text, &secrets);
                let attempts = u32::try_from(m.attempts).unwrap_or(u32::MAX);
                if attempts >= max {
                    let reason = format!("gave up after {attempts} attempts: {text}");
                    self.give_up(m, &reason).await;
                } else {
                    let wait =
                        mail::backoff(attempts, self.args.backoff_base, self.args.backoff_max);
                    eprintln!(
                        "warn: mailer: message {} (purpose {}): attempt {attempts} of {max} failed: \
                         {text}; next try in {}",
                        m.id,
                        m.purpose,
                        humantime::format_duration(wait)
                    );
                    self.update(Update::Retry(m.id, &text, wait)).await;
                }
            }
            Outcome::Abandoned => {
                eprintln!(
                    "warn: mailer: message {} (purpose {}): sending interrupted by the stop; left for a retry",
                    m.id, m.purpose
                );
                self.update(Update::Retry(
                    m.id,
                    "interrupted by a mailer stop while sending",
                    Duration::ZERO,
                ))
                .await;
            }
        }
    }

    /// Reports, once each, due messages sealed to a key this mailer does not hold.
    async fn report_foreign(&mut self) {
        let Some(db) = self.db.client().await else {
            return;
        };
        match outbox::foreign_keys(db, &self.scope).await {
            Ok(rows) => {
                for (id, purpose, fingerprint) in rows {
                    if self.reported.len() < 100_000 && self.reported.insert(id) {
                        eprintln!(
                            "warn: mailer: message {id} (purpose {purpose}) is sealed to key \
                             fingerprint {}, which this mailer does not hold (key fingerprint \
                             unknown): left for a mailer that holds it",
                            hex::encode(fingerprint)
                        );
                    }
                }
            }
            Err(e) => self.db.failed(&e),
        }
    }

    /// One claim and its messages; whether the batch was full (more may be due).
    async fn round(&mut self) -> bool {
        self.report_foreign().await;
        let Some(db) = self.db.client().await else {
            return false;
        };
        let batch = match outbox::claim(db, &self.scope, self.args.batch, self.args.lease).await {
            Ok(batch) => batch,
            Err(e) => {
                self.db.failed(&e);
                return false;
            }
        };
        let full = batch.len() == self.args.batch as usize;
        for (i, m) in batch.iter().enumerate() {
            if self.stopping() {
                let rest: Vec<i64> = batch[i..].iter().map(|m| m.id).collect();
                self.update(Update::Release(&rest)).await;
                return false;
            }
            self.process(m).await;
        }
        full
    }
}

enum Update<'a> {
    Sent(i64),
    Retry(i64, &'a str, Duration),
    GiveUp(i64, &'a str),
    Release(&'a [i64]),
}

/// `linktoken-gateway mailer …`: exit status.
pub async fn run(args: Run) -> i32 {
    let stop = stop_on_signal();
    let setup = || -> Result<Worker, String> {
        args.check()?;
        let keys = Keyring::load(&args.key_file)?;
        let templates = Templates::load(args.templates.as_deref())?;
        let sender = Sender::new(&args.from, &args.public_url, templates)?;
        let smtp = Smtp::new(
            &args.smtp_url,
            args.smtp_root_cert.as_deref(),
            args.smtp_timeout,
        )?;
        let (mut pg, tls) = crate::tls::configure(&args.database_url)
            .map_err(|e| format!("--database-url: {e}"))?;
        pg.application_name("linktoken-mailer");
        pg.connect_timeout(Duration::from_secs(5));
        let scope = Scope {
            fingerprints: keys.fingerprints(),
            purposes: (!args.purpose.is_empty()).then(|| args.purpose.clone()),
        };
        Ok(Worker {
            args: args.clone(),
            db: Database {
                pg,
                tls,
                client: None,
                down: false,
            },
            keys,
            scope,
            sender,
            smtp,
            stop: stop.clone(),
            reported: HashSet::new(),
        })
    };
    let mut worker = match setup() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("linktoken-gateway mailer: {e}");
            return 2;
        }
    };
    let wake = Arc::new(Notify::new());
    tokio::spawn(listen(
        worker.db.pg.clone(),
        worker.db.tls.clone(),
        wake.clone(),
        stop.clone(),
    ));
    eprintln!(
        "linktoken-gateway mailer running: SMTP {}, keys {}, purposes {}, {} template(s)",
        worker.smtp.describe,
        worker
            .scope
            .fingerprints
            .iter()
            .map(hex::encode)
            .collect::<Vec<_>>()
            .join(" "),
        worker
            .scope
            .purposes
            .as_ref()
            .map_or("all".to_owned(), |p| p.join(" ")),
        worker.sender.templates.count()
    );
    let mut stop_wait = stop.clone();
    while !worker.stopping() {
        if worker.round().await {
            continue;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(worker.args.poll_interval) => {}
            _ = stop_wait.wait_for(|s| *s) => {}
        }
    }
    eprintln!("linktoken-gateway mailer: stopped");
    0
}
