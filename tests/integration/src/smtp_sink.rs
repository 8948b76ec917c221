//! A small SMTP server for the mailer's tests, in the test process: it listens on 127.0.0.1 on a
//! free port, keeps the messages it accepted in memory (and, if asked, one file each in a spool
//! directory), and can fail on purpose ([`Mode`]) or be down (its port closed). It stops when
//! dropped: every thread it runs checks a stop flag at least every 100 ms.
//!
//! It speaks just enough SMTP for lettre (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and
//! offers no STARTTLS and no AUTH. Threads and std sockets, no async runtime: it keeps working
//! while a test blocks its own thread (waiting for a child process, say).

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the sink answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Accept every message.
    Accept,
    /// Answer RCPT TO with this code (4xx: try later, 5xx: permanent).
    RefuseRcpt(u16),
    /// Read the whole message, then answer with this code instead of 250.
    RefuseData(u16),
    /// Read the whole message, then close the connection without answering.
    DropAfterData,
    /// Read the whole message, then hold the answer until [`SmtpSink::release`] (then accept,
    /// unless the client has gone away meanwhile) or the sink stops.
    Stall,
}

/// A message the sink accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent (headers and body, CRLF line ends, dot-stuffing undone).
    pub data: String,
}

impl Received {
    /// The header section.
    pub fn head(&self) -> &str {
        self.data.split("\r\n\r\n").next().unwrap_or("")
    }

    /// Every header named `name` (any case), unfolded.
    pub fn headers(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut current: Option<String> = None;
        for line in self.head().split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(c) = current.as_mut() {
                    c.push(' ');
                    c.push_str(line.trim());
                }
                continue;
            }
            if let Some(c) = current.take() {
                out.push(c);
            }
            if let Some((n, v)) = line.split_once(':') {
                if n.eq_ignore_ascii_case(name) {
                    current = Some(v.trim().to_owned());
                }
            }
        }
        out.extend(current);
        out
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }

    /// The whole message with quoted-printable undone (soft line breaks removed, `=XX` decoded;
    /// the mailer's parts are 7bit or quoted-printable ASCII), to search for links and codes.
    pub fn decoded(&self) -> String {
        let joined = self.data.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Every run of token characters (A-Z a-z 0-9 - _) that follows `prefix` in the decoded
    /// message, in order.
    pub fn after(&self, prefix: &str) -> Vec<String> {
        let text = self.decoded();
        text.match_indices(prefix)
            .map(|(i, _)| {
                text[i + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect()
            })
            .collect()
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Messages whose data the sink read to the end, whatever it answered.
    transactions: usize,
    /// Transactions held in Stall mode right now.
    stalled: usize,
    /// Bumped by release().
    releases: u64,
}

struct Shared {
    mode: Mutex<Mode>,
    /// A mode for the next n transactions, before `mode` again.
    next: Mutex<Option<(Mode, usize)>>,
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
    up: AtomicBool,
    spool: Option<PathBuf>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// The mode for the transaction at hand; `consume` ends a transaction of a temporary one.
    fn mode(&self, consume: bool) -> Mode {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((mode, left)) = next.as_mut() {
            let mode = *mode;
            if consume {
                *left -= 1;
                if *left == 0 {
                    *next = None;
                }
            }
            return mode;
        }
        *self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

const TICK: Duration = Duration::from_millis(100);
/// A connection that says nothing for this long is closed.
const IDLE: Duration = Duration::from_secs(60);

impl SmtpSink {
    /// A sink on a free port of 127.0.0.1, up, in `mode`.
    pub fn start(mode: Mode) -> SmtpSink {
        SmtpSink::new(mode, None, true)
    }

    /// As [`SmtpSink::start`], writing each accepted message to `<spool>/<n>.eml` too.
    pub fn start_with_spool(mode: Mode, spool: PathBuf) -> SmtpSink {
        std::fs::create_dir_all(&spool).expect("create the spool directory");
        SmtpSink::new(mode, Some(spool), true)
    }

    /// A sink whose port is closed until [`SmtpSink::up`].
    pub fn start_down(mode: Mode) -> SmtpSink {
        SmtpSink::new(mode, None, false)
    }

    fn new(mode: Mode, spool: Option<PathBuf>, up: bool) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the SMTP sink");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            mode: Mutex::new(mode),
            next: Mutex::new(None),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            up: AtomicBool::new(up),
            spool,
        });
        let listener = if up { Some(listener) } else { None };
        let s = shared.clone();
        let acceptor = std::thread::spawn(move || accept_loop(s, addr, listener));
        SmtpSink {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `smtp://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// `mode` for the next `n` transactions (counted where the mode acts: at RCPT for
    /// RefuseRcpt, at the end of the data otherwise), then the mode set before.
    pub fn set_mode_for(&self, n: usize, mode: Mode) {
        *self.shared.next.lock().unwrap() = (n > 0).then_some((mode, n));
    }

    /// Closes the port: connections are refused (open ones are closed at their next command).
    pub fn down(&self) {
        self.shared.up.store(false, Ordering::SeqCst);
    }

    /// Opens the port again (the same one).
    pub fn up(&self) {
        self.shared.up.store(true, Ordering::SeqCst);
    }

    /// Lets stalled transactions answer.
    pub fn release(&self) {
        self.shared.state().releases += 1;
        self.shared.changed.notify_all();
    }

    /// The messages accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.state().received.clone()
    }

    /// Messages read to the end so far, accepted or not.
    pub fn transactions(&self) -> usize {
        self.shared.state().transactions
    }

    /// Waits (bounded) until `cond` holds for the state; panics with `what` if it never does.
    fn wait(&self, what: &str, timeout: Duration, cond: impl Fn(&State) -> bool) {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state();
        while !cond(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "SMTP sink: {what} within {timeout:?} (accepted {}, transactions {}, stalled {})",
                state.received.len(),
                state.transactions,
                state.stalled
            );
            state = self
                .shared
                .changed
                .wait_timeout(state, left.min(TICK))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until at least `n` messages were accepted; returns all accepted.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<Received> {
        self.wait(&format!("{n} message(s) accepted"), timeout, |s| {
            s.received.len() >= n
        });
        self.received()
    }

    /// Waits until at least `n` transactions were read to the end.
    pub fn wait_for_transactions(&self, n: usize, timeout: Duration) {
        self.wait(&format!("{n} transaction(s)"), timeout, |s| {
            s.transactions >= n
        });
    }

    /// Waits until `n` transactions are held in Stall mode.
    pub fn wait_for_stalled(&self, n: usize, timeout: Duration) {
        self.wait(&format!("{n} stalled transaction(s)"), timeout, |s| {
            s.stalled >= n
        });
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

fn accept_loop(shared: Arc<Shared>, addr: SocketAddr, mut listener: Option<TcpListener>) {
    let mut connections = Vec::new();
    while !shared.stopping() {
        let up = shared.up.load(Ordering::SeqCst);
        if !up {
            listener = None;
        } else if listener.is_none() {
            listener = TcpListener::bind(addr).ok();
        }
        let Some(l) = listener.as_ref() else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        l.set_nonblocking(true).expect("nonblocking listener");
        match l.accept() {
            Ok((stream, _)) => {
                let s = shared.clone();
                connections.push(std::thread::spawn(move || {
                    let _ = serve(&s, stream);
                }));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
        connections.retain(|c: &JoinHandle<()>| !c.is_finished());
    }
    drop(listener);
    for c in connections {
        let _ = c.join();
    }
}

/// Reads one line (up to LF); None when the client left, the sink stops or goes down, or the
/// connection is idle too long.
fn read_line(shared: &Shared, reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = Vec::new();
    let started = Instant::now();
    loop {
        if shared.stopping() || !shared.up.load(Ordering::SeqCst) || started.elapsed() > IDLE {
            return None;
        }
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return None,
            Ok(_) if line.ends_with(b"\n") => {
                return Some(String::from_utf8_lossy(&line).into_owned())
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    }
}

/// Has the client closed its side (or the connection failed)?
fn client_gone(stream: &TcpStream) -> bool {
    let _ = stream.set_nonblocking(true);
    let mut b = [0u8; 1];
    let gone = match stream.peek(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    gone
}

fn serve(shared: &Shared, stream: TcpStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(TICK))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    out.write_all(b"220 sink.test ESMTP linktoken test sink\r\n")?;
    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();
    while let Some(line) = read_line(shared, &mut reader) {
        let line = line.trim_end_matches(['\r', '\n']);
        let verb = line
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let arg = |prefix: &str| {
            line.get(prefix.len()..)
                .map(|a| {
                    a.trim()
                        .trim_start_matches('<')
                        .split('>')
                        .next()
                        .unwrap_or("")
                        .to_owned()
                })
                .unwrap_or_default()
        };
        match verb.as_str() {
            "EHLO" => out.write_all(b"250-sink.test\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n")?,
            "HELO" => out.write_all(b"250 sink.test\r\n")?,
            "MAIL" => {
                mail_from = Some(arg("MAIL FROM:"));
                rcpt_to.clear();
                out.write_all(b"250 2.1.0 OK\r\n")?;
            }
            "RCPT" => match shared.mode(matches!(shared.mode(false), Mode::RefuseRcpt(_))) {
                Mode::RefuseRcpt(code) => {
                    // As real servers do, the answer quotes the address.
                    let to = arg("RCPT TO:");
                    let text = if code < 500 {
                        format!("4.3.0 <{to}>: try again later (test sink)")
                    } else {
                        format!("5.1.1 <{to}>: mailbox refused (test sink)")
                    };
                    out.write_all(format!("{code} {text}\r\n").as_bytes())?;
                }
                _ => {
                    rcpt_to.push(arg("RCPT TO:"));
                    out.write_all(b"250 2.1.5 OK\r\n")?;
                }
            },
            "DATA" => {
                if mail_from.is_none() || rcpt_to.is_empty() {
                    out.write_all(b"503 5.5.1 MAIL and RCPT first\r\n")?;
                    continue;
                }
                out.write_all(b"354 end with <CRLF>.<CRLF>\r\n")?;
                let mut data = String::new();
                loop {
                    let Some(l) = read_line(shared, &mut reader) else {
                        return Ok(());
                    };
                    if l == ".\r\n" || l == ".\n" {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                }
                let message = Received {
                    mail_from: mail_from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut rcpt_to),
                    data,
                };
                if !finish(shared, &mut out, message)? {
                    return Ok(());
                }
            }
            "RSET" => {
                mail_from = None;
                rcpt_to.clear();
                out.write_all(b"250 2.0.0 OK\r\n")?;
            }
            "NOOP" => out.write_all(b"250 2.0.0 OK\r\n")?,
            "QUIT" => {
                out.write_all(b"221 2.0.0 bye\r\n")?;
                return Ok(());
            }
            _ => out.write_all(b"502 5.5.2 not implemented\r\n")?,
        }
    }
    Ok(())
}

/// Answers a message read to its end, as the mode says; false to close the connection.
fn finish(shared: &Shared, out: &mut TcpStream, message: Received) -> std::io::Result<bool> {
    shared.state().transactions += 1;
    shared.changed.notify_all();
    let mode = match shared.mode(false) {
        Mode::RefuseRcpt(_) => Mode::Accept,
        _ => shared.mode(true),
    };
    match mode {
        Mode::Accept | Mode::RefuseRcpt(_) => {}
        Mode::RefuseData(code) => {
            out.write_all(format!("{code} refused after DATA (test sink)\r\n").as_bytes())?;
            return Ok(true);
        }
        Mode::DropAfterData => {
            let _ = out.shutdown(std::net::Shutdown::Both);
            return Ok(false);
        }
        Mode::Stall => {
            let mut state = shared.state();
            let releases = state.releases;
            state.stalled += 1;
            shared.changed.notify_all();
            while state.releases == releases && !shared.stopping() {
                state = shared
                    .changed
                    .wait_timeout(state, TICK)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            state.stalled -= 1;
            drop(state);
            if shared.stopping() || client_gone(out) {
                return Ok(false);
            }
        }
    }
    let mut state = shared.state();
    if let Some(dir) = &shared.spool {
        let file = dir.join(format!("{}.eml", state.received.len() + 1));
        std::fs::write(file, &message.data)?;
    }
    state.received.push(message);
    drop(state);
    shared.changed.notify_all();
    out.write_all(b"250 2.0.0 OK queued\r\n")?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn talk(addr: SocketAddr, lines: &[&str]) -> Vec<String> {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut answers = Vec::new();
        let read = |r: &mut BufReader<TcpStream>| {
            let mut l = String::new();
            loop {
                l.clear();
                if r.read_line(&mut l).unwrap_or(0) == 0 {
                    return "closed".to_owned();
                }
                if l.as_bytes().get(3) != Some(&b'-') {
                    return l.trim_end().to_owned();
                }
            }
        };
        answers.push(read(&mut r));
        let mut in_data = false;
        for line in lines {
            out.write_all(format!("{line}\r\n").as_bytes()).unwrap();
            if in_data && *line != "." {
                continue;
            }
            in_data = *line == "DATA";
            answers.push(read(&mut r));
        }
        answers
    }

    const MAIL: &[&str] = &[
        "EHLO t",
        "MAIL FROM:<a@x.test>",
        "RCPT TO:<b@x.test>",
        "DATA",
        "Subject: hi",
        "",
        "..dot =3D line=",
        "two",
        ".",
        "QUIT",
    ];

    #[test]
    fn accepts_and_refuses_as_told() {
        let sink = SmtpSink::start(Mode::Accept);
        let a = talk(sink.addr, MAIL);
        assert!(a[0].starts_with("220"), "{a:?}");
        assert!(a[4].starts_with("354") && a[5].starts_with("250"), "{a:?}");
        let got = sink.wait_for_messages(1, Duration::from_secs(5));
        assert_eq!(got[0].rcpt_to, ["b@x.test"]);
        assert_eq!(got[0].header("subject").as_deref(), Some("hi"));
        assert_eq!(got[0].decoded(), "Subject: hi\r\n\r\n.dot = linetwo\r\n");
        sink.set_mode(Mode::RefuseRcpt(450));
        let a = talk(sink.addr, MAIL);
        assert!(a[3].starts_with("450"), "{a:?}");
        sink.set_mode(Mode::RefuseData(554));
        let a = talk(sink.addr, MAIL);
        assert!(a[5].starts_with("554"), "{a:?}");
        sink.set_mode(Mode::DropAfterData);
        let a = talk(sink.addr, MAIL);
        assert_eq!(a[5], "closed", "{a:?}");
        assert_eq!(sink.received().len(), 1);
        assert_eq!(sink.transactions(), 3);
        sink.set_mode(Mode::Accept);
        sink.set_mode_for(1, Mode::RefuseRcpt(550));
        let a = talk(sink.addr, MAIL);
        assert!(a[3].starts_with("550 5.1.1 <b@x.test>"), "{a:?}");
        let a = talk(sink.addr, MAIL);
        assert!(a[5].starts_with("250"), "{a:?}");
        assert_eq!(sink.received().len(), 2);
    }

    #[test]
    fn down_means_refused_connections() {
        let sink = SmtpSink::start_down(Mode::Accept);
        std::thread::sleep(Duration::from_millis(100));
        assert!(TcpStream::connect(sink.addr).is_err());
        sink.up();
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(sink.addr).is_err() {
            assert!(Instant::now() < deadline, "the sink never came up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
