//! The one way the tests run the gateway's binary as a child process (the gateway itself, the
//! mailer, the CLI): its stderr captured line by line, bounded waits for a log line or the
//! exit, SIGTERM or SIGKILL, and on drop the process stopped and its log kept under
//! `LINKTOKEN_TEST_LOG_DIR/<name>-<pid>.log` for the run's scan for leaked tokens.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the bounded waits below wait at most.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Process {
    name: &'static str,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `cmd` (stdout discarded, stderr captured); `name` names it in messages and in
    /// the kept log's file name.
    pub fn start(name: &'static str, mut cmd: Command) -> Process {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start the {name}: {e}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        Process { name, child, log }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits (at most [`WAIT`]) for a log line `pred` returns Some for; panics with the log if
    /// the process exits first or the line never comes.
    pub fn wait_for<T>(&mut self, what: &str, pred: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(found) = self.log().iter().find_map(|l| pred(l)) {
                return found;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{what}: the {} exited ({status}): {:#?}",
                    self.name,
                    self.log()
                );
            }
            assert!(Instant::now() < deadline, "{what}: {:#?}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (at most [`WAIT`]) for a log line matching `pred`; that line.
    pub fn wait_log(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_for(what, |l| pred(l).then(|| l.to_owned()))
    }

    pub fn signal_term(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Its exit status once it has exited within `limit`, else None.
    pub fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits (at most [`WAIT`]) for it to exit; its status. Panics with the log otherwise.
    pub fn wait_exit(&mut self) -> ExitStatus {
        match self.exited_within(WAIT) {
            Some(status) => status,
            None => panic!("the {} did not exit: {:#?}", self.name, self.log()),
        }
    }

    /// SIGKILL: it dies at once, in-flight work and open transactions included.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal_term();
            if self.exited_within(Duration::from_secs(15)).is_none() {
                self.kill();
            }
        }
        if let Ok(dir) = std::env::var("LINKTOKEN_TEST_LOG_DIR") {
            let _ = std::fs::create_dir_all(&dir);
            let file = format!("{dir}/{}-{}.log", self.name, self.child.id());
            let _ = std::fs::write(file, self.log().join("\n"));
        }
    }
}
