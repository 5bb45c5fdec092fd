//! Real third-party servers and libraries the tests talk to, each private to its test
//! and bound to 127.0.0.1: localstripe, a stateful Stripe-compatible server (PyPI
//! `localstripe`, started through `scripts/run-localstripe.py`), and the Standard
//! Webhooks reference library (PyPI `standardwebhooks`), which checks our signatures.
//!
//! Their Python environment is made on first use, outside the clone
//! (`/var/tmp/palisade-tools/peers-venv-2`, pinned versions), or taken from
//! `PALISADE_TEST_PYTHON`; without Python or PyPI the tests that need it fail, saying so.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What the peers' Python environment holds.
const PACKAGES: [&str; 3] = [
    "localstripe==1.15.10",
    "stripe==16.1.0",
    "standardwebhooks==1.1.0",
];
/// Numbered for its package list: a new list makes a new environment beside the old.
const VENV: &str = "/var/tmp/palisade-tools/peers-venv-2";

/// A Python that can import the packages.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Ok(p) = std::env::var("PALISADE_TEST_PYTHON") {
                return PathBuf::from(p);
            }
            let python = PathBuf::from(VENV).join("bin/python");
            if !imports(&python) {
                make_venv();
            }
            assert!(
                imports(&python),
                "{VENV} cannot import localstripe, stripe and standardwebhooks"
            );
            python
        })
        .clone()
}

fn imports(python: &PathBuf) -> bool {
    Command::new(python)
        .args(["-c", "import localstripe, stripe, standardwebhooks"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes the environment beside its final place and moves it there, so a concurrent
/// test process finds either none or a whole one.
fn make_venv() {
    let building = format!("{VENV}.{}", std::process::id());
    let _ = std::fs::remove_dir_all(&building);
    let ok = Command::new("python3")
        .args(["-m", "venv", &building])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 -m venv failed: the localstripe and webhook tests need Python 3"
    );
    let ok = Command::new(format!("{building}/bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(PACKAGES)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "pip install {PACKAGES:?} failed: the localstripe and webhook tests need PyPI"
    );
    if std::fs::rename(&building, VENV).is_err() {
        // Another process finished first.
        let _ = std::fs::remove_dir_all(&building);
    }
}

/// A localstripe of the test's own; killed on drop.
pub struct LocalStripe {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl LocalStripe {
    pub fn start() -> LocalStripe {
        let mut s = LocalStripe {
            child: None,
            port: palisade_store::testing::free_port().port(),
            dir: tempfile::tempdir().expect("tempdir"),
        };
        s.restart();
        s
    }

    /// `http://127.0.0.1:<port>`: `STRIPE_API_BASE`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server; its state stays for [`LocalStripe::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Starts the server (again) on the same port and state, and waits until it listens.
    pub fn restart(&mut self) {
        self.stop();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/run-localstripe.py"
        );
        let state = self.dir.path().join("state.pickle");
        let child = Command::new(python())
            .arg(script)
            .args(["--port", &self.port.to_string()])
            .arg("--state")
            .arg(&state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start localstripe");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "localstripe did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `method` on `path` (`/v1/…`, or localstripe's `/_config/…`) with a form body:
    /// the JSON answer, which must be a success.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
    ) -> serde_json::Value {
        let res = crate::harness::client()
            .request(method, format!("{}{path}", self.url()))
            .basic_auth(SECRET_KEY, Some(""))
            .form(form)
            .send()
            .await
            .expect("localstripe");
        let status = res.status();
        let text = res.text().await.expect("localstripe's answer");
        assert!(status.is_success(), "localstripe {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    /// `GET /v1/<path>` as Stripe's API answers it.
    pub async fn get(&self, path: &str) -> serde_json::Value {
        crate::harness::client()
            .get(format!("{}/v1/{path}", self.url()))
            .basic_auth(SECRET_KEY, Some(""))
            .send()
            .await
            .expect("localstripe")
            .json()
            .await
            .expect("localstripe's JSON")
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The secret key the tests give palisade (localstripe takes any).
pub const SECRET_KEY: &str = "sk_test_palisade";
