//! Real third-party servers and libraries the tests talk to, each private to its test
//! and bound to 127.0.0.1: localstripe, a stateful Stripe-compatible server (PyPI
//! `localstripe`, started through `scripts/run-localstripe.py`), the Standard Webhooks
//! reference library (PyPI `standardwebhooks`), which checks our signatures, and an
//! SMTP server (PyPI `aiosmtpd`, with STARTTLS, delivering to a Maildir).
//!
//! Their Python environment is made on first use, outside the clone
//! (`/var/tmp/palisade-tools/peers-venv-3`, pinned versions), or taken from
//! `PALISADE_TEST_PYTHON`; without Python or PyPI the tests that need it fail, saying so.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What the peers' Python environment holds.
const PACKAGES: [&str; 4] = [
    "localstripe==1.15.10",
    "stripe==16.1.0",
    "standardwebhooks==1.1.0",
    "aiosmtpd==1.4.6",
];
/// Numbered for its package list: a new list makes a new environment beside the old.
const VENV: &str = "/var/tmp/palisade-tools/peers-venv-3";

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
                "{VENV} cannot import localstripe, stripe, standardwebhooks and aiosmtpd"
            );
            python
        })
        .clone()
}

fn imports(python: &PathBuf) -> bool {
    Command::new(python)
        .args([
            "-c",
            "import localstripe, stripe, standardwebhooks, aiosmtpd",
        ])
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
        kill(&mut self.child);
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
        wait_listening(self.port, "localstripe");
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

/// A mail as the SMTP server received it.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct ReceivedMail {
    pub to: String,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl ReceivedMail {
    /// The token of the first link in the text part.
    pub fn token(&self) -> String {
        let start = self.text.find("#token=").expect("a link with a token") + 7;
        self.text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }
}

/// An aiosmtpd of the test's own on 127.0.0.1, delivering to a Maildir; with STARTTLS
/// (a certificate from an authority of its own, in [`SmtpServer::ca_file`]) unless
/// started plain. Killed on drop.
pub struct SmtpServer {
    child: Option<Child>,
    pub port: u16,
    tls: bool,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    pub fn start(tls: bool) -> SmtpServer {
        let mut s = SmtpServer::unstarted(tls);
        s.restart();
        s
    }

    /// A server on a port of its own that is not listening yet.
    pub fn unstarted(tls: bool) -> SmtpServer {
        let s = SmtpServer {
            child: None,
            port: palisade_store::testing::free_port().port(),
            tls,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(s.dir.path().join("maildir").join(sub)).expect("maildir");
        }
        if tls {
            s.make_certificates();
        }
        s
    }

    /// `SMTP_URL` (and `SMTP_CA_FILE` with TLS) for palisade.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        if self.tls {
            vec![
                ("SMTP_URL", format!("smtp://127.0.0.1:{}", self.port)),
                ("SMTP_CA_FILE", self.ca_file().display().to_string()),
            ]
        } else {
            vec![(
                "SMTP_URL",
                format!("smtp://127.0.0.1:{}?tls=none", self.port),
            )]
        }
    }

    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A certificate authority, and a certificate for 127.0.0.1 it signed.
    fn make_certificates(&self) {
        let d = self.dir.path();
        std::fs::write(
            d.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .expect("extensions");
        let steps: [&[&str]; 3] = [
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Palisade test CA",
            ],
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "leaf.pem",
                "-days",
                "2",
                "-extfile",
                "leaf.ext",
            ],
        ];
        for args in steps {
            let ok = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "openssl {args:?} failed: the mail tests need openssl");
        }
    }

    /// Kills the server; its Maildir stays for [`SmtpServer::restart`].
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts the server (again) on the same port and Maildir, and waits until it
    /// listens.
    pub fn restart(&mut self) {
        self.stop();
        let d = self.dir.path();
        let mut cmd = Command::new(python());
        cmd.args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port));
        if self.tls {
            cmd.arg("--tlscert")
                .arg(d.join("leaf.pem"))
                .arg("--tlskey")
                .arg(d.join("leaf.key"));
        }
        cmd.args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(d.join("maildir"));
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        self.child = Some(child);
        wait_listening(self.port, "aiosmtpd");
    }

    /// Every mail received so far, oldest first.
    pub fn received(&self) -> Vec<ReceivedMail> {
        let script = "import json, mailbox, sys\n\
                      box = mailbox.Maildir(sys.argv[1], create=True)\n\
                      out = []\n\
                      for key in sorted(box.keys()):\n\
                      \x20   m = box[key]\n\
                      \x20   parts = {p.get_content_type(): p.get_payload(decode=True).decode()\n\
                      \x20            for p in m.walk() if not p.is_multipart()}\n\
                      \x20   out.append({'to': m['To'], 'from': m['From'], 'subject': m['Subject'],\n\
                      \x20               'text': parts.get('text/plain', ''), 'html': parts.get('text/html', '')})\n\
                      print(json.dumps(out))\n";
        let out = Command::new(python())
            .args(["-c", script])
            .arg(self.dir.path().join("maildir"))
            .output()
            .expect("read the Maildir");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("mails as JSON")
    }

    /// Waits (at most `limit`) for a mail to `to` whose subject contains `subject`.
    pub async fn wait_for(&self, to: &str, subject: &str, limit: Duration) -> ReceivedMail {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.received();
            if let Some(m) = got
                .iter()
                .find(|m| m.to.contains(to) && m.subject.contains(subject))
            {
                return m.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no mail to {to} about {subject:?}: {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Kills a peer's process, if it runs.
fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        child.kill().ok();
        child.wait().ok();
    }
}

/// Waits (at most 20 s) until a peer listens on `port` of 127.0.0.1.
fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}
