//! `smtp-sink --spool DIR [--for SECONDS]`: the tests' SMTP sink ([`linktoken_integration::smtp_sink`])
//! as a process, for `make demo` and the browser tests. It listens on a free port of 127.0.0.1,
//! prints `smtp-sink listening on smtp://127.0.0.1:PORT`, writes every message it accepts to
//! `DIR/<n>.eml`, and exits after SECONDS (default 12 hours) or on SIGTERM.

use linktoken_integration::smtp_sink::{Mode, SmtpSink};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

fn usage() -> ! {
    eprintln!("usage: smtp-sink --spool DIR [--for SECONDS]");
    std::process::exit(2);
}

fn main() {
    let mut spool: Option<PathBuf> = None;
    let mut seconds: u64 = 12 * 3600;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--spool" => spool = Some(args.next().unwrap_or_else(|| usage()).into()),
            "--for" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            _ => usage(),
        }
    }
    let sink = SmtpSink::start_with_spool(Mode::Accept, spool.unwrap_or_else(|| usage()));
    println!("smtp-sink listening on {}", sink.url());
    let _ = std::io::stdout().flush();
    std::thread::sleep(Duration::from_secs(seconds));
}
