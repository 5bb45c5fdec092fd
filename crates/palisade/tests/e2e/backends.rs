//! A server on SQLite, or on PostgreSQL with Redis, signing with a key the test holds
//! (so a test can sign tokens valid in every way but one), and its command line.

use std::time::Duration;

use palisade_auth::access::{AccessTokens, SigningKey, Subject};
use palisade_store::testing::TempPostgres;
use reqwest::StatusCode;
use serde_json::Value;

use crate::api::{Api, b64_decode, now};
use crate::harness::{Server, run_with_stdin};

pub const PASSWORD: &str = "correct horse battery staple 42";
pub const ISSUER: &str = "palisade";
pub const AUDIENCE: &str = "palisade-api";
const ENCRYPTION_KEY: &str = "3b8f2a9c7e1d6b4a0f5e8c2d9a7b3e1f6c4d8a2b0e9f7c5d3a1b6e8f2c4d9a07";

/// A server, its client, and the key it signs with (so a test can sign tokens that are
/// valid in every way but one).
pub struct Env {
    pub api: Api,
    pub key: SigningKey,
    pub env: Vec<(String, String)>,
    _server: Server,
    _dir: tempfile::TempDir,
    _pg: Option<TempPostgres>,
}

pub async fn start(postgres: bool) -> Env {
    // No address of ours is an ops address (TEST-NET-1): only an `admin:infra` token
    // opens the ops endpoints.
    let extra = [
        ("PALISADE_RATE_LIMIT_AUTH", "1000/1m"),
        ("PALISADE_OPS_ALLOW", "192.0.2.0/24"),
    ];
    start_with(postgres, &extra).await
}

/// A server on SQLite, or on PostgreSQL with Redis (`TEST_REDIS_URL`, a key prefix of
/// its own) for shared state, with `extra` settings.
pub async fn start_with(postgres: bool, extra: &[(&str, &str)]) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = SigningKey::generate_ed25519();
    let key_file = dir.path().join("signing.pem");
    std::fs::write(&key_file, key.to_pem().expect("pem")).expect("write key");
    let pg = if postgres {
        Some(TempPostgres::create().await)
    } else {
        None
    };
    let db_url = match &pg {
        Some(pg) => pg.url().to_owned(),
        None => format!("sqlite://{}/palisade.db", dir.path().display()),
    };
    let redis = postgres.then(|| {
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| {
            panic!("TEST_REDIS_URL is not set: the PostgreSQL scenarios run with Redis")
        })
    });
    let prefix = format!("palisade_test:{}:", uuid::Uuid::now_v7());
    let mut env: Vec<(String, String)> = [
        ("DATABASE_URL", db_url.as_str()),
        ("PALISADE_JWT_KEY_FILE", &key_file.display().to_string()),
        ("ENCRYPTION_KEY", ENCRYPTION_KEY),
        ("PALISADE_REFRESH_GRACE", "1s"),
        ("PALISADE_LOCKOUT_DURATION", "2s"),
        ("PALISADE_COOKIE_SECURE", "false"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    if let Some(url) = redis {
        env.push(("REDIS_URL".into(), url));
        env.push(("PALISADE_REDIS_PREFIX".into(), prefix));
    }
    for (k, v) in extra {
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(&pairs);
    Env {
        api: Api::new(&server),
        key,
        env,
        _server: server,
        _dir: dir,
        _pg: pg,
    }
}

impl Env {
    /// The environment this server was started with.
    fn settings(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Another instance of the server on the same database, keys and Redis: what a
    /// second replica behind a load balancer is. Stops when the returned server drops.
    pub fn second_instance(&self) -> (Server, Api) {
        let server = Server::start(&self.settings());
        let api = Api::new(&server);
        (server, api)
    }

    /// The database the server uses.
    pub fn database_url(&self) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == "DATABASE_URL")
            .map(|(_, v)| v.as_str())
            .expect("DATABASE_URL")
    }

    /// The server process.
    pub fn server(&self) -> &Server {
        &self._server
    }

    /// Runs the CLI against this server's database and keys.
    pub fn cli(&self, args: &[&str], stdin: &str) -> std::process::Output {
        run_with_stdin(args, &self.settings(), stdin)
    }

    pub fn tokens(&self, audience: &str, issuer: &str, lifetime: u64) -> AccessTokens {
        AccessTokens::new(&self.key, issuer, audience, Duration::from_secs(lifetime))
    }

    /// An admin, created with the CLI; returns the login body.
    pub async fn admin(&self, email: &str) -> Value {
        self.user_with_role(email, "admin").await
    }

    /// A user holding `role`, created with the CLI; returns the login body.
    pub async fn user_with_role(&self, email: &str, role: &str) -> Value {
        let out = self.cli(
            &["user", "create", "--email", email, "--role", role],
            &format!("{PASSWORD}\n"),
        );
        assert!(
            out.status.success(),
            "user create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let l = self.api.login(email, PASSWORD).await;
        assert_eq!(l.status, StatusCode::OK, "{}", l.body);
        l.body
    }
}

/// Claims that are valid for `user`, to be spoiled one at a time.
pub fn subject<'a>(user_id: &'a str, sid: &'a str, roles: &[&str]) -> Subject<'a> {
    Subject {
        user_id,
        session_id: sid,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        perms: vec![
            "users:read".into(),
            "audit:read".into(),
            "admin:infra".into(),
        ],
        amr: vec!["pwd".into()],
        auth_time: now(),
    }
}

pub fn claims_of(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&b64_decode(payload)).expect("claims")
}
