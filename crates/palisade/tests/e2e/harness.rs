//! The real `palisade` binary on a free loopback port, its commands run to completion,
//! and a TCP proxy in front of PostgreSQL that a test can slow down or cut off.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `palisade serve`, stopped (SIGKILL) on drop if the test did not stop it.
pub struct Server {
    pub addr: SocketAddr,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `palisade serve` in a fresh working directory (so its SQLite file is its
    /// own) with `env` added to a clean configuration.
    pub fn start(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
        cmd.arg("serve")
            .current_dir(dir.path())
            .env("PORT", "0")
            .env("LOG_LEVEL", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn palisade");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = listening_addr(&line) {
                    let _ = tx.send(addr);
                }
                sink.lock().expect("logs").push(line);
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("logs").push(line);
            }
        });
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "palisade did not start listening; output:\n{}",
                    logs.lock().expect("logs").join("\n")
                );
            }
        };
        Server {
            addr,
            child,
            logs,
            _dir: dir,
        }
    }

    /// The process's resident set size now, in bytes (Linux).
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS")
            * 1024
    }

    /// The server's working directory (its SQLite file, its development keys in `data`).
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn logs(&self) -> String {
        self.logs.lock().expect("logs").join("\n")
    }

    /// Waits (at most 5 s) until a log line containing `needle` has been written: lines
    /// leave the server in batches, a few milliseconds after they are logged.
    pub fn wait_for_log(&self, needle: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !self.logs().contains(needle) {
            assert!(
                std::time::Instant::now() < deadline,
                "no log line contains {needle:?}; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Sends SIGKILL: the process dies at once, finishing nothing.
    pub fn kill(&self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit (at most `limit`); returns its exit code.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "palisade did not exit within {limit:?}; output:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening_addr(line: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    (v["message"] == "listening").then(|| v["addr"].as_str()?.parse().ok())?
}

/// A client that never follows redirects and has a short timeout.
pub fn client() -> reqwest::Client {
    // reqwest is built without a TLS provider of its own; the server uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

pub async fn status_of(url: &str) -> Option<reqwest::StatusCode> {
    client().get(url).send().await.ok().map(|r| r.status())
}

/// Polls `url` until it answers `want`, for at most `limit`.
pub async fn wait_for(url: &str, want: reqwest::StatusCode, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if status_of(url).await == Some(want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url} did not answer {want} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the `palisade` binary to completion with `args` and `env`.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
    cmd.args(args).current_dir(dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run palisade")
}

/// Runs the `palisade` binary to completion with `args`, `env` and `stdin` as its input.
pub fn run_with_stdin(args: &[&str], env: &[(&str, &str)], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
    cmd.args(args)
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn palisade");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("run palisade")
}

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pass,
    /// Every chunk from the database waits this long.
    Slow(Duration),
    /// Existing connections are cut and new ones refused.
    Down,
}

/// A TCP proxy in front of a database server, under the test's control.
pub struct FaultProxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
}

impl FaultProxy {
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let (mode, watcher) = watch::channel(Mode::Pass);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *watcher.borrow() == Mode::Down {
                    continue; // dropped: the connection closes at once
                }
                tokio::spawn(relay(client, upstream, watcher.clone()));
            }
        });
        FaultProxy { addr, mode }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = cr.read(&mut buf).await {
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let slow = mode.clone();
    let down = async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = sr.read(&mut buf).await {
            let current = *slow.borrow();
            if let Mode::Slow(d) = current {
                tokio::time::sleep(d).await;
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let cut = async {
        while mode.changed().await.is_ok() {
            if *mode.borrow() == Mode::Down {
                return;
            }
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = up => {},
        () = down => {},
        () = cut => {},
    }
}

/// The socket address of the `TEST_DATABASE_URL` server.
pub fn postgres_socket_addr() -> SocketAddr {
    let url = palisade_store::testing::test_database_url();
    let after_at = url.split('@').next_back().expect("url");
    let host_port = after_at.split('/').next().expect("host");
    let with_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    std::net::ToSocketAddrs::to_socket_addrs(&with_port.replace("localhost", "127.0.0.1"))
        .expect("resolve TEST_DATABASE_URL host")
        .next()
        .expect("an address")
}

/// `url` pointed at `addr` instead of its own host and port.
pub fn via(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (userinfo, rest) = match rest.split_once('@') {
        Some((u, r)) => (format!("{u}@"), r),
        None => (String::new(), rest),
    };
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
    format!("{scheme}://{userinfo}{addr}{path}")
}

/// Sends `request` as raw bytes on a new connection; returns all the server answered
/// before closing it.
pub fn raw_exchange(server: &Server, request: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // The server may answer and close before it has read everything.
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Asserts `res` is a problem+json answer with `status` and `code`, its standard
/// members there (a `detail` included) and its `request_id` the one echoed in
/// `X-Request-ID`; returns its body.
pub async fn assert_problem(
    res: reqwest::Response,
    status: reqwest::StatusCode,
    code: &str,
) -> serde_json::Value {
    assert_eq!(res.status(), status, "{code}");
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "{code}"
    );
    let request_id = res.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: serde_json::Value = res.json().await.expect("problem body");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["request_id"], request_id.as_str(), "{body}");
    assert!(
        body["title"].is_string() && body["type"].is_string(),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "no detail: {body}"
    );
    body
}
