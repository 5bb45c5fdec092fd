//! Configuration: defaults, then `palisade.toml` (optional), then the environment
//! (with `.env` loaded first outside production). Every value is parsed and checked
//! here, and every problem is reported at once, so an operator fixes a bad deployment
//! in one pass.

mod keys;
mod parse;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use figment::value::Value;
use ipnet::IpNet;
use palisade_http::HttpSettings;
use palisade_http::layers::rate_limit::RateLimitSettings;
use palisade_service::identity::{IdentitySettings, LockoutPolicy};
use palisade_store::StoreSettings;
use palisade_store::ratelimit::Quota;

pub use keys::KEYS;

/// Largest body limit production accepts (SECURITY-BASELINE.md § HTTP).
const BODY_LIMIT_CEILING: usize = 10 * 1024 * 1024;

/// Secrets that ship in examples and tutorials, refused in production.
const KNOWN_WEAK: &[&str] = &[
    "secret",
    "changeme",
    "change-me",
    "your-secret-key",
    "jwt-secret",
    "password",
    "development",
    "test",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Test,
    Production,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub env: Environment,
    pub host: IpAddr,
    pub port: u16,
    pub store: StoreSettings,
    pub db_health_interval: Duration,
    pub migrate_on_start: bool,
    pub log_level: String,
    pub http: HttpSettings,
    pub identity: IdentityConfig,
    /// `REDIS_URL`: shared state (rate limits) between instances.
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    pub rate_limits: RateLimitSettings,
}

/// Keys and lifetimes of identity and access.
#[derive(Clone, Debug)]
pub struct IdentityConfig {
    /// Development keys are generated here on first start.
    pub data_dir: std::path::PathBuf,
    /// Ed25519 PKCS#8 PEM file (EdDSA).
    pub jwt_key_file: Option<std::path::PathBuf>,
    /// HS256 secret; chosen when set.
    pub jwt_secret: Option<String>,
    /// 64 hex digits.
    pub encryption_key: Option<String>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub cookie_secure: bool,
    /// Password-hashing threads; `None`: one per core.
    pub hash_threads: Option<usize>,
    pub settings: IdentitySettings,
}

/// One effective value, for `palisade config check`.
pub struct Entry {
    pub key: &'static str,
    pub help: &'static str,
    pub shown: String,
    pub source: String,
}

/// The outcome of loading: the configuration when it is valid, and always the
/// effective values and every problem found.
pub struct Loaded {
    pub config: Option<Config>,
    pub entries: Vec<Entry>,
    pub problems: Vec<String>,
}

/// A configuration with problems; its `Display` lists each of them.
#[derive(Debug)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid configuration ({} problem{}):",
            self.0.len(),
            if self.0.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl Loaded {
    pub fn into_result(self) -> Result<Config, ConfigError> {
        match self.config {
            Some(c) if self.problems.is_empty() => Ok(c),
            _ => Err(ConfigError(self.problems)),
        }
    }
}

/// Loads `.env` (outside production), `file` (or `palisade.toml` when it exists) and
/// the environment.
pub fn load(file: Option<&Path>) -> Loaded {
    let production_env =
        std::env::var("PALISADE_ENV").is_ok_and(|v| v.eq_ignore_ascii_case("production"));
    if !production_env {
        // A missing .env is the normal case; a malformed one is reported below.
        if let Err(e) = dotenvy::dotenv()
            && !e.not_found()
        {
            return Loaded {
                config: None,
                entries: Vec::new(),
                problems: vec![format!(".env: {e}")],
            };
        }
    }
    let mut problems = Vec::new();
    let toml_path = file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| "palisade.toml".into());
    if file.is_some() && !toml_path.exists() {
        problems.push(format!(
            "configuration file {} does not exist",
            toml_path.display()
        ));
    }
    let figment = Figment::new().merge(Toml::file(&toml_path)).merge(
        Env::raw()
            .filter_map(|k| keys::find(k.as_str()).map(|key| key.env.to_ascii_lowercase().into())),
    );
    for (name, _) in std::env::vars() {
        if name.starts_with("PALISADE_") && keys::find(&name).is_none() && name != "PALISADE_CONFIG"
        {
            problems.push(format!("{name} is not a configuration key (misspelt?)"));
        }
    }
    let raw: BTreeMap<String, Value> = match figment.extract() {
        Ok(map) => map,
        Err(e) => {
            problems.extend(e.into_iter().map(|e| e.to_string()));
            BTreeMap::new()
        }
    };
    for k in raw.keys() {
        if keys::find(k).is_none() {
            problems.push(format!("{}: unknown key `{k}`", toml_path.display()));
        }
    }
    let mut values = BTreeMap::new();
    let mut entries = Vec::new();
    for key in KEYS {
        let lower = key.env.to_ascii_lowercase();
        let (value, source) = match raw.get(&lower) {
            Some(v) => match as_text(v) {
                Ok(s) => {
                    let source = figment
                        .find_metadata(&lower)
                        .map(|m| m.name.to_string())
                        .unwrap_or_default();
                    (Some(s), source)
                }
                Err(()) => {
                    problems.push(format!("{}: expected a single value", key.env));
                    (None, "invalid".into())
                }
            },
            None => (key.default.map(str::to_owned), "default".into()),
        };
        entries.push(Entry {
            key: key.env,
            help: key.help,
            shown: show(key, value.as_deref()),
            source,
        });
        if let Some(v) = value {
            values.insert(key.env, v);
        }
    }
    let config = build(&values, &mut problems);
    Loaded {
        config,
        entries,
        problems,
    }
}

fn as_text(v: &Value) -> Result<String, ()> {
    match v {
        Value::String(_, s) => Ok(s.clone()),
        Value::Char(_, c) => Ok(c.to_string()),
        Value::Bool(_, b) => Ok(b.to_string()),
        Value::Num(_, n) => n
            .to_u128()
            .map(|n| n.to_string())
            .or_else(|| n.to_i128().map(|n| n.to_string()))
            .ok_or(()),
        Value::Array(_, items) => items
            .iter()
            .map(as_text)
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(",")),
        Value::Empty(..) => Ok(String::new()),
        Value::Dict(..) => Err(()),
    }
}

fn show(key: &keys::Key, value: Option<&str>) -> String {
    match value {
        None => "(unset)".into(),
        Some(_) if key.secret => "(set, redacted)".into(),
        Some(v) if key.env.ends_with("_URL") => palisade_store::redact_url(v),
        Some(v) => v.to_owned(),
    }
}

/// Parses and cross-checks every value; appends each problem found.
fn build(values: &BTreeMap<&'static str, String>, problems: &mut Vec<String>) -> Option<Config> {
    let get = |k: &str| values.get(k).map(String::as_str).filter(|s| !s.is_empty());
    // Parses key `k` with `f`; records a problem and yields None when it fails.
    let mut field = |k: &'static str, f: &dyn Fn(&str) -> Result<(), String>| {
        if let Some(v) = get(k)
            && let Err(e) = f(v)
        {
            problems.push(format!("{k}: {e}"));
        }
    };
    macro_rules! parsed {
        ($k:expr, $parse:expr) => {{
            field($k, &|v| $parse(v).map(|_| ()));
            get($k).and_then(|v| $parse(v).ok())
        }};
    }

    let env = parsed!(
        "PALISADE_ENV",
        |v: &str| match v.to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Environment::Development),
            "test" => Ok(Environment::Test),
            "production" | "prod" => Ok(Environment::Production),
            _ => Err(format!("`{v}` is not development, test or production")),
        }
    );
    let host = parsed!("PALISADE_HOST", |v: &str| v
        .parse::<IpAddr>()
        .map_err(|_| format!("`{v}` is not an IP address")));
    let port = parsed!("PORT", |v: &str| v
        .parse::<u16>()
        .map_err(|_| format!("`{v}` is not a port (0..=65535)")));
    let database_url = parsed!("DATABASE_URL", |v: &str| db_url(v));
    let read_url = parsed!("DATABASE_READ_URL", |v: &str| db_url(v));
    let pool_max = parsed!("DB_POOL_MAX", |v: &str| match v.parse::<u32>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err(format!("`{v}` is not a pool size (1..=1000)")),
    });
    let idle = parsed!("DB_IDLE_TIMEOUT", parse::duration);
    let connect = parsed!("DB_CONNECTION_TIMEOUT", parse::duration);
    let debug_sql = parsed!("DEBUG_SQL", parse::boolean);
    let migrate_on_start = parsed!("PALISADE_MIGRATE_ON_START", parse::boolean);
    let health_every = parsed!(
        "PALISADE_DB_HEALTH_INTERVAL",
        |v: &str| match parse::duration(v) {
            Ok(d) if d >= Duration::from_millis(100) => Ok(d),
            Ok(_) => Err("must be at least 100ms".to_owned()),
            Err(e) => Err(e),
        }
    );
    // Checked now, read by the features that use them (shared state, tokens, cookies).
    let _: Option<()> = parsed!("REDIS_URL", |v: &str| if v.starts_with("redis://")
        || v.starts_with("rediss://")
    {
        Ok(())
    } else {
        Err("must start with redis:// or rediss://".to_owned())
    });
    let mut rate = |k: &'static str| parsed!(k, parse::rate);
    let rates = [
        rate("PALISADE_RATE_LIMIT_GENERAL"),
        rate("PALISADE_RATE_LIMIT_AUTH"),
    ];
    let rate_allow = parsed!("PALISADE_RATE_LIMIT_ALLOW", |v: &str| parse::list(v)
        .iter()
        .map(|c| parse::cidr(c))
        .collect::<Result<Vec<IpNet>, _>>());
    let origins = parsed!("ALLOWED_ORIGINS", |v: &str| parse::list(v)
        .iter()
        .map(|o| parse::origin(o))
        .collect::<Result<Vec<_>, _>>());
    let proxies = parsed!("PALISADE_TRUSTED_PROXIES", |v: &str| parse::list(v)
        .iter()
        .map(|c| parse::cidr(c))
        .collect::<Result<Vec<_>, _>>());
    let ops = parsed!("PALISADE_OPS_ALLOW", |v: &str| parse::list(v)
        .iter()
        .map(|c| parse::cidr(c))
        .collect::<Result<Vec<IpNet>, _>>());
    let behind_tls = parsed!("PALISADE_BEHIND_TLS", parse::boolean);
    let cookie_secure = parsed!("PALISADE_COOKIE_SECURE", parse::boolean);
    let body_limit = parsed!("PALISADE_BODY_LIMIT", |v: &str| match parse::size(v) {
        Ok(n) if n > BODY_LIMIT_CEILING => Err("must not exceed 10MiB".to_owned()),
        other => other,
    });
    let request_timeout = parsed!("PALISADE_REQUEST_TIMEOUT", parse::duration);
    let header_timeout = parsed!("PALISADE_HEADER_READ_TIMEOUT", parse::duration);
    let shutdown_delay = parsed!("PALISADE_SHUTDOWN_DELAY", parse::duration);
    let shutdown_timeout = parsed!("PALISADE_SHUTDOWN_TIMEOUT", parse::duration);
    let _: Option<()> = parsed!("ENCRYPTION_KEY", |v: &str| if v.len() == 64
        && v.bytes().all(|b| b.is_ascii_hexdigit())
    {
        Ok(())
    } else {
        Err("must be 32 bytes written as 64 hex digits".to_owned())
    });
    let access_ttl = parsed!(
        "PALISADE_ACCESS_TOKEN_TTL",
        |v: &str| match parse::duration(v) {
            Ok(d) if (Duration::from_secs(60)..=Duration::from_secs(3600)).contains(&d) => Ok(d),
            Ok(_) => Err("must be between 1m and 1h".to_owned()),
            Err(e) => Err(e),
        }
    );
    let refresh_idle = parsed!("PALISADE_REFRESH_IDLE", parse::duration);
    let refresh_absolute = parsed!("PALISADE_REFRESH_ABSOLUTE", parse::duration);
    let refresh_grace = parsed!(
        "PALISADE_REFRESH_GRACE",
        |v: &str| match parse::duration(v) {
            Ok(d) if d <= Duration::from_secs(60) => Ok(d),
            Ok(_) => Err("must not exceed 60s".to_owned()),
            Err(e) => Err(e),
        }
    );
    let hash_threads = parsed!(
        "PALISADE_HASH_THREADS",
        |v: &str| match v.parse::<usize>() {
            Ok(n) if (1..=256).contains(&n) => Ok(n),
            _ => Err(format!("`{v}` is not a count (1..=256)")),
        }
    );
    let max_sessions = parsed!(
        "PALISADE_MAX_SESSIONS",
        |v: &str| match v.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(format!("`{v}` is not a count (1..=1000)")),
        }
    );
    let lock_threshold = parsed!(
        "PALISADE_LOCKOUT_THRESHOLD",
        |v: &str| match v.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(format!("`{v}` is not a count (1..=100)")),
        }
    );
    let lock_window = parsed!("PALISADE_LOCKOUT_WINDOW", parse::duration);
    let lock_duration = parsed!("PALISADE_LOCKOUT_DURATION", parse::duration);
    let mut key_problems: Vec<String> = Vec::new();
    let data_dir = get("PALISADE_DATA_DIR").unwrap_or("data").to_owned();
    let key_file = get("PALISADE_JWT_KEY_FILE").map(std::path::PathBuf::from);
    if let Some(f) = &key_file
        && !f.is_file()
    {
        key_problems.push(format!(
            "PALISADE_JWT_KEY_FILE: {} is not a readable file",
            f.display()
        ));
    }
    if let Some(s) = get("JWT_SECRET")
        && s.len() < 32
    {
        key_problems.push("JWT_SECRET: must be at least 32 bytes".into());
    }
    if key_file.is_some() && get("JWT_SECRET").is_some() {
        key_problems.push(
            "PALISADE_JWT_KEY_FILE and JWT_SECRET are both set: one signing key, one algorithm"
                .into(),
        );
    }
    problems.extend(key_problems);
    let log_level = get("LOG_LEVEL").unwrap_or("info").to_owned();
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_level) {
        problems.push(format!("LOG_LEVEL: `{log_level}` is not a log filter: {e}"));
    }
    let env = env.unwrap_or(Environment::Development);

    if env == Environment::Production {
        if let Some(s) = get("JWT_SECRET") {
            production_secret("JWT_SECRET", s, 32, problems);
        }
        if let Some(k) = get("ENCRYPTION_KEY") {
            production_secret("ENCRYPTION_KEY", k, 64, problems);
        }
        if key_file.is_none() && get("JWT_SECRET").is_none() {
            problems.push(
                "PALISADE_JWT_KEY_FILE (Ed25519) or JWT_SECRET (HS256): production needs an \
                 explicit signing key"
                    .into(),
            );
        }
        if get("ENCRYPTION_KEY").is_none() {
            problems.push("ENCRYPTION_KEY: must be set in production".into());
        }
        if lock_threshold.is_some_and(|n| n > 10) {
            problems.push("PALISADE_LOCKOUT_THRESHOLD: production allows at most 10".into());
        }
        let floor = Duration::from_secs(15 * 60);
        for (key, value) in [
            ("PALISADE_LOCKOUT_WINDOW", lock_window),
            ("PALISADE_LOCKOUT_DURATION", lock_duration),
        ] {
            if value.is_some_and(|d| d < floor) {
                problems.push(format!("{key}: production allows no less than 15m"));
            }
        }
        if cookie_secure == Some(false) {
            problems.push(
                "PALISADE_COOKIE_SECURE: plain-HTTP cookies are refused in production".into(),
            );
        }
        if let Some(list) = &origins
            && let Some(o) = list.iter().find(|o| o.starts_with("http://"))
        {
            problems.push(format!(
                "ALLOWED_ORIGINS: `{o}` is plain HTTP; production origins must be https://"
            ));
        }
    }

    let defaults = HttpSettings::default();
    let store = StoreSettings {
        read_url: read_url.map(|_| get("DATABASE_READ_URL").unwrap_or_default().to_owned()),
        pool_max: pool_max.unwrap_or(20),
        idle_timeout: idle.unwrap_or(Duration::from_secs(30)),
        connect_timeout: connect.unwrap_or(Duration::from_secs(2)),
        debug_sql: debug_sql.unwrap_or(false),
        ..StoreSettings::new(
            database_url
                .map(|_| get("DATABASE_URL").unwrap_or_default().to_owned())
                .unwrap_or_default(),
        )
    };
    let http = HttpSettings {
        allowed_origins: origins
            .unwrap_or_default()
            .iter()
            .filter_map(|o| o.parse().ok())
            .collect(),
        trusted_proxies: proxies.unwrap_or_default(),
        ops_allow: ops.unwrap_or_default(),
        behind_tls: behind_tls.unwrap_or(false),
        body_limit: body_limit.unwrap_or(defaults.body_limit),
        request_timeout: request_timeout.unwrap_or(defaults.request_timeout),
        header_read_timeout: header_timeout.unwrap_or(defaults.header_read_timeout),
        shutdown_delay: shutdown_delay.unwrap_or(defaults.shutdown_delay),
        shutdown_timeout: shutdown_timeout.unwrap_or(defaults.shutdown_timeout),
    };
    let default_rates = RateLimitSettings::default();
    // The general tier allows a burst of 100 (or its whole count when smaller); the
    // others take their whole count at once.
    let quota = |r: Option<(u32, Duration)>, d: Quota, burst: Option<u32>| match r {
        Some((count, window)) => Quota {
            count,
            window,
            burst: burst.map_or(count, |b| b.min(count)),
        },
        None => d,
    };
    let rate_limits = RateLimitSettings {
        general: quota(rates[0], default_rates.general, Some(100)),
        auth: quota(rates[1], default_rates.auth, None),
        allow: rate_allow.unwrap_or_default(),
    };
    let defaults_id = IdentitySettings::default();
    let identity = IdentityConfig {
        data_dir: data_dir.into(),
        jwt_key_file: key_file,
        jwt_secret: get("JWT_SECRET").map(str::to_owned),
        encryption_key: get("ENCRYPTION_KEY").map(str::to_owned),
        issuer: get("PALISADE_JWT_ISSUER").unwrap_or("palisade").to_owned(),
        audience: get("PALISADE_JWT_AUDIENCE")
            .unwrap_or("palisade-api")
            .to_owned(),
        access_ttl: access_ttl.unwrap_or(Duration::from_secs(15 * 60)),
        cookie_secure: cookie_secure.unwrap_or(true),
        hash_threads,
        settings: IdentitySettings {
            refresh_idle: refresh_idle.unwrap_or(defaults_id.refresh_idle),
            refresh_absolute: refresh_absolute.unwrap_or(defaults_id.refresh_absolute),
            refresh_grace: refresh_grace.unwrap_or(defaults_id.refresh_grace),
            max_sessions: max_sessions.unwrap_or(defaults_id.max_sessions),
            lockout: LockoutPolicy {
                threshold: lock_threshold.unwrap_or(defaults_id.lockout.threshold),
                window: lock_window.unwrap_or(defaults_id.lockout.window),
                duration: lock_duration.unwrap_or(defaults_id.lockout.duration),
                ..defaults_id.lockout
            },
            ..defaults_id
        },
    };
    if get("DATABASE_URL").is_none() {
        problems.push("DATABASE_URL: must be set".into());
    }
    if !problems.is_empty() {
        return None;
    }
    Some(Config {
        env,
        host: host.unwrap_or(IpAddr::from([127, 0, 0, 1])),
        port: port.unwrap_or(3000),
        store,
        db_health_interval: health_every.unwrap_or(Duration::from_secs(30)),
        migrate_on_start: migrate_on_start.unwrap_or(true),
        log_level,
        http,
        identity,
        redis_url: get("REDIS_URL").map(str::to_owned),
        redis_prefix: get("PALISADE_REDIS_PREFIX")
            .unwrap_or("palisade:")
            .to_owned(),
        rate_limits,
    })
}

fn db_url(v: &str) -> Result<(), String> {
    match palisade_store::Backend::from_url(v) {
        Some(_) => Ok(()),
        None => Err(format!(
            "`{}` is neither sqlite://FILE nor postgres://…",
            palisade_store::redact_url(v)
        )),
    }
}

/// Production refuses secrets that are short, known from examples, or of one repeated
/// character.
fn production_secret(name: &str, value: &str, min_len: usize, problems: &mut Vec<String>) {
    let lower = value.to_ascii_lowercase();
    if value.len() < min_len {
        problems.push(format!(
            "{name}: too short for production (at least {min_len} characters)"
        ));
    } else if KNOWN_WEAK.iter().any(|w| lower.contains(w)) {
        problems.push(format!(
            "{name}: looks like an example or default secret; generate a random one"
        ));
    } else if value.bytes().all(|b| b == value.as_bytes()[0]) {
        problems.push(format!(
            "{name}: is one character repeated; generate a random one"
        ));
    }
}

#[cfg(test)]
mod tests;
