//! Not part of the API (hidden, may change in any release): a real
//! `nats-server` for this crate's doc tests and tests. Found through
//! `$NATS_SERVER`, the `PATH`, /usr/sbin, /usr/bin, /usr/local/bin; started
//! with JetStream on a free loopback port and a fresh store directory;
//! killed on drop. `kill` and `start_again` restart it on the same port
//! and store.
//!
//! When no binary is found, [`Server::start_or_skip`] prints "SKIPPED:
//! nats-server not available" and returns `None` (the test then returns),
//! unless `CHUNKQ_NATS_REQUIRED` is set (the CI stage sets it once it has
//! checked for the binary), in which case it panics: the tests never pass
//! silently without a server.

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A running `nats-server` (see the module documentation).
pub struct Server {
    bin: PathBuf,
    child: Option<Child>,
    /// Its loopback port.
    pub port: u16,
    /// Its directory (store and logs), removed on drop.
    pub dir: PathBuf,
    starts: usize,
}

fn find_binary() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        candidates.push(p.into());
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("nats-server")));
    }
    for d in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
        candidates.push(PathBuf::from(d).join("nats-server"));
    }
    candidates.into_iter().find(|p| {
        Command::new(p)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

impl Server {
    /// A running server, or `None` after printing why the test is skipped.
    pub fn start_or_skip(test: &str) -> Option<Server> {
        let Some(bin) = find_binary() else {
            if std::env::var_os("CHUNKQ_NATS_REQUIRED").is_some() {
                panic!("nats-server not available but CHUNKQ_NATS_REQUIRED is set");
            }
            // Straight to the file descriptor: the test harness captures
            // println!/eprintln! of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: nats-server not available ({test}); install it (apt-get install nats-server) or set NATS_SERVER"
            );
            return None;
        };
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "chunkq-nats-{}-{}-{test}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        let mut s = Server {
            bin,
            child: None,
            port: free_port(),
            dir,
            starts: 0,
        };
        s.spawn();
        Some(s)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = self.dir.join(format!("server-{}.log", self.starts));
        self.starts += 1;
        let child = Command::new(&self.bin)
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(self.dir.join("store"))
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        // Ready once the port accepts and the log says so.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && fs::read_to_string(&log).is_ok_and(|l| l.contains("Server is ready"));
            if ready {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                let l = fs::read_to_string(&log).unwrap_or_default();
                panic!("nats-server exited with {status}:\n{l}");
            }
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL: no clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same store.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none());
        // The old process is gone; wait until its port is free again.
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
