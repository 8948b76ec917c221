//! `linktoken-gateway mailer`: delivers the mails of linktoken.outbox (issue 12).
//!
//! * [`cli`]: the flags (`mailer keygen --key-file F`, `mailer --database-url … --smtp-url …`).
//! * [`keys`]: writing a key pair, reading the private keys the mailer holds.
//! * [`outbox`]: the statements on linktoken.outbox (claim with SKIP LOCKED, mark, retry, give up).
//! * [`compose`]: templates and the mail (text + HTML, Message-ID, RFC 8058 headers).
//! * [`smtp`]: delivery through lettre over rustls.
//! * [`worker`]: the loop (LISTEN + poll, batches, backoff, graceful stop).
//!
//! Templates, backoff and key file formats are pure logic in `linktoken_core::mail`.

mod cli;
mod compose;
mod keys;
mod outbox;
mod smtp;
mod worker;

use clap::Parser;

/// Runs the mailer with the process's arguments (`linktoken-gateway mailer …`) and exits.
pub async fn main() {
    // args[0] is the binary, args[1] "mailer"; the name for usage lines stands for both.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = if args.get(1).is_some_and(|a| a == "keygen") {
        args[1] = "linktoken-gateway mailer keygen".into();
        keys::keygen_main(cli::Keygen::parse_from(&args[1..]))
    } else {
        args[0] = "linktoken-gateway mailer".into();
        worker::run(cli::Run::parse_from(&args)).await
    };
    std::process::exit(code);
}
