//! Configuration: the registry's defaults ([`registry`]), then `palisade.toml`
//! (optional), then the environment (with `.env` loaded first outside production).
//!
//! Each section of [`Config`] is built by a function of its own that reads typed
//! values through one accessor ([`reader::Reader`]); every problem is recorded there,
//! so an operator sees all of them at once and fixes a bad deployment in one pass. The
//! registry is the only place defaults are written; a value is parsed once and carried
//! forward in its type; secrets travel as [`Secret`]s.

pub mod parse;
mod reader;
pub mod registry;
mod secret;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use figment::value::Value;
use ipnet::IpNet;
use palisade_http::HttpSettings;
use palisade_http::layers::rate_limit::RateLimitSettings;
use palisade_service::billing::Plans;
use palisade_service::identity::{IdentitySettings, LockoutPolicy};
use palisade_service::mail::{MailSettings, Mailbox, Security, SmtpSettings, TransportSettings};
use palisade_service::webhooks::WebhookSettings;
use palisade_store::ratelimit::Quota;
use palisade_store::{RetryPolicy, StoreSettings};

use reader::Reader;
pub use registry::KEYS;
pub use secret::Secret;

/// Largest body limit accepted (docs/SECURITY.md § HTTP).
const BODY_LIMIT_CEILING: usize = 10 * 1024 * 1024;
/// Production floors (docs/SECURITY.md § Production floors).
const PRODUCTION_MAX_LOCKOUT_THRESHOLD: u32 = 10;
const PRODUCTION_MIN_LOCKOUT_TIME: Duration = Duration::from_secs(15 * 60);
const PRODUCTION_MAX_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The loosest auth tier production accepts: 100 requests per 15 minutes.
const PRODUCTION_AUTH_TIER_CEILING: (u32, Duration) = (100, Duration::from_secs(15 * 60));

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
    pub listen: SocketAddr,
    pub log_level: String,
    pub database: DatabaseConfig,
    /// `REDIS_URL`: state shared between instances (rate limits, the cache).
    pub redis: Option<RedisConfig>,
    pub cache: CacheConfig,
    pub http: HttpSettings,
    pub rate_limits: RateLimitSettings,
    pub identity: IdentityConfig,
    pub payments: PaymentsConfig,
    pub billing: BillingConfig,
    pub stripe: StripeConfig,
    pub delivery: DeliveryConfig,
    pub mail: MailSettings,
}

/// The job queue's workers and outbound webhooks.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// `PALISADE_JOB_LEASE`: how long a claim holds a job.
    pub job_lease: Duration,
    pub webhooks: WebhookSettings,
}

/// Who moves the money.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentsConfig {
    /// Stripe's test payment methods, settled at once, no money moved.
    Simulated,
    /// PaymentIntents through Stripe's REST API (or a compatible server's).
    Stripe,
}

/// Plans, and whether subscriptions go through Stripe.
#[derive(Clone, Debug)]
pub struct BillingConfig {
    /// `PALISADE_BILLING=stripe`; off: every feature on.
    pub enabled: bool,
    pub plans: Plans,
    /// Where Stripe's Checkout and portal send the customer back to.
    pub return_url: String,
}

/// Stripe's API, as payments and billing call it, and its webhook events.
#[derive(Clone, Debug)]
pub struct StripeConfig {
    pub api_base: String,
    /// Required by the stripe provider and by billing.
    pub secret_key: Option<Secret<String>>,
    /// The `whsec_…` secret Stripe signs its events with; without it they are refused.
    pub webhook_secret: Option<Secret<String>>,
}

#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    pub store: StoreSettings,
    /// How often the background check pings the database.
    pub health_interval: Duration,
    /// `serve` applies pending migrations before it listens.
    pub migrate_on_start: bool,
}

/// The record cache (dashboard aggregates).
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// The in-process level's bound, in stored bytes.
    pub max_bytes: u64,
    /// How long an entry lives in either level.
    pub ttl: Duration,
}

#[derive(Clone, Debug)]
pub struct RedisConfig {
    pub url: Secret<String>,
    /// Prefix of every key (several deployments on one Redis).
    pub prefix: String,
}

/// Keys and lifetimes of identity and access.
#[derive(Clone, Debug)]
pub struct IdentityConfig {
    /// Development keys are generated here on first start.
    pub data_dir: PathBuf,
    pub signing: Signing,
    /// `ENCRYPTION_KEY`; generated into `data_dir` in development when unset.
    pub encryption_key: Option<Secret<[u8; 32]>>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub cookie_secure: bool,
    /// Password-hashing threads; `None`: one per core.
    pub hash_threads: Option<usize>,
    pub settings: IdentitySettings,
}

/// Where the access-token signing key comes from.
#[derive(Clone, Debug)]
pub enum Signing {
    /// An Ed25519 key generated into the data directory on first start.
    Development,
    /// An Ed25519 PKCS#8 PEM file (EdDSA).
    KeyFile(PathBuf),
    /// An HS256 secret of at least 32 bytes.
    Hs256(Secret<String>),
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

impl std::error::Error for ConfigError {}

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
    // An empty variable is no value: it must not hide the file's (`PALISADE_ENV=` from
    // a compose file's unset `${PALISADE_ENV}` would otherwise turn a production file
    // into a development server).
    let figment = Figment::new()
        .merge(Toml::file(&toml_path))
        .merge(Env::raw().filter_map(|k| {
            let key = registry::find(k.as_str())?;
            let set = std::env::var(k.as_str()).is_ok_and(|v| !v.is_empty());
            set.then(|| key.env.to_ascii_lowercase().into())
        }));
    for (name, _) in std::env::vars() {
        if name.starts_with("PALISADE_")
            && registry::find(&name).is_none()
            && name != "PALISADE_CONFIG"
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
        // `[lint]` configures `palisade migrate lint`, which reads it itself.
        if registry::find(k).is_none() && k != "lint" {
            problems.push(format!("{}: unknown key `{k}`", toml_path.display()));
        }
    }
    let mut values = BTreeMap::new();
    let mut entries = Vec::new();
    for key in KEYS {
        let lower = key.env.to_ascii_lowercase();
        let (value, source) = match raw.get(&lower) {
            Some(v) => match as_text(v) {
                Ok(s) if s.is_empty() => (key.default.map(str::to_owned), "default".into()),
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
    let config = match build(&values) {
        Ok(c) => Some(c),
        Err(p) => {
            problems.extend(p);
            None
        }
    };
    Loaded {
        config,
        entries,
        problems,
    }
}

/// The registry's defaults with `overrides`, and nothing from the environment or a
/// file: for tests and tools that configure an instance in code.
pub fn with(overrides: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut values: BTreeMap<&'static str, String> = KEYS
        .iter()
        .filter_map(|k| k.default.map(|d| (k.env, d.to_owned())))
        .collect();
    for (key, value) in overrides {
        let key = registry::find(key)
            .ok_or_else(|| ConfigError(vec![format!("{key} is not a configuration key")]))?;
        values.insert(key.env, (*value).to_owned());
    }
    build(&values).map_err(ConfigError)
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

fn show(key: &registry::Key, value: Option<&str>) -> String {
    match value {
        None => "(unset)".into(),
        Some(_) if key.secret => "(set, redacted)".into(),
        Some(v) if key.env.ends_with("_URL") => palisade_store::redact_url(v),
        Some(v) => v.to_owned(),
    }
}

/// Parses and cross-checks every value: the configuration, or every problem found.
fn build(values: &BTreeMap<&'static str, String>) -> Result<Config, Vec<String>> {
    let mut r = Reader::new(values);
    let config = sections(&mut r);
    match config {
        Some(c) if r.problems.is_empty() => Ok(c),
        _ => Err(r.problems),
    }
}

/// Every section, each read in full before any is given up on.
fn sections(r: &mut Reader) -> Option<Config> {
    let env = r.required("PALISADE_ENV", environment);
    let production = env == Some(Environment::Production);
    let listen = listen(r);
    let log_level = r.required("LOG_LEVEL", log_filter);
    let database = database(r);
    let redis = redis(r);
    let cache = cache(r);
    let http = http(r, production);
    let rate_limits = rate_limits(r, production);
    let identity = identity(r, production);
    let stripe = stripe(r);
    let payments = payments(r, stripe.as_ref());
    let billing = billing(r, stripe.as_ref());
    let delivery = delivery(r);
    let mail = mail(r, production);
    Some(Config {
        env: env?,
        listen: listen?,
        log_level: log_level?,
        database: database?,
        redis: redis?,
        cache: cache?,
        http: http?,
        rate_limits: rate_limits?,
        identity: identity?,
        payments: payments?,
        billing: billing?,
        stripe: stripe?,
        delivery: delivery?,
        mail: mail?,
    })
}

fn mail(r: &mut Reader, production: bool) -> Option<MailSettings> {
    let data_dir = r.required("PALISADE_DATA_DIR", |v| Ok(PathBuf::from(v)));
    let smtp = r.optional("SMTP_URL", |v| {
        let smtp = SmtpSettings::parse(v)?;
        if production && smtp.security == Security::None && !smtp.is_local() {
            return Err("tls=none is refused in production but for a relay on this host".into());
        }
        Ok(smtp)
    });
    let ca = r.optional("SMTP_CA_FILE", |v| {
        std::fs::read(v).map_err(|e| format!("cannot read {v}: {e}"))
    });
    let from = r.required("PALISADE_MAIL_FROM", |v| {
        let from = v
            .parse::<Mailbox>()
            .map_err(|_| format!("`{v}` is not an address or `Name <address>`"))?;
        if production && from.email.domain() == "localhost" {
            return Err("must be a sender of your own domain in production".to_owned());
        }
        Ok(from)
    });
    let public_url = r.required("PALISADE_PUBLIC_URL", |v| {
        let url = reqwest::Url::parse(v).map_err(|_| format!("`{v}` is not a URL"))?;
        if production && url.scheme() != "https" {
            return Err("must be https in production".to_owned());
        }
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be http or https".to_owned());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must have no query or fragment (links add their own)".to_owned());
        }
        Ok(v.trim_end_matches('/').to_owned())
    });
    if production && matches!(smtp, Some(None)) {
        r.problem(
            "SMTP_URL",
            "must be set in production (mail is not written to files)",
        );
    }
    let transport = match (smtp?, ca?) {
        (Some(mut smtp), ca) => {
            smtp.extra_root = ca;
            TransportSettings::Smtp(smtp)
        }
        (None, _) => TransportSettings::Files(data_dir?.join("mail")),
    };
    Some(MailSettings {
        from: from?,
        public_url: public_url?,
        transport,
    })
}

fn delivery(r: &mut Reader) -> Option<DeliveryConfig> {
    let job_lease = r.required(
        "PALISADE_JOB_LEASE",
        parse::duration_in(Duration::from_secs(1)..=Duration::from_secs(3600)),
    );
    let allow_private = r.required("PALISADE_WEBHOOK_ALLOW_PRIVATE", parse::boolean);
    let retries = r.required("PALISADE_WEBHOOK_RETRIES", |v| {
        let waits = parse::list(v)
            .iter()
            .map(|w| {
                parse::duration_in(Duration::from_millis(10)..=Duration::from_secs(7 * 24 * 3600))(
                    w,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        if waits.is_empty() || waits.len() > 20 {
            return Err("must list 1 to 20 waits, e.g. 5s,30s,2m".to_owned());
        }
        Ok(waits)
    });
    let disable_after = r.required(
        "PALISADE_WEBHOOK_DISABLE_AFTER",
        parse::duration_in(Duration::from_secs(1)..=Duration::from_secs(365 * 24 * 3600)),
    );
    Some(DeliveryConfig {
        job_lease: job_lease?,
        webhooks: WebhookSettings {
            allow_private: allow_private?,
            retries: retries?,
            disable_after: disable_after?,
        },
    })
}

fn stripe(r: &mut Reader) -> Option<StripeConfig> {
    let api_base = r.required("STRIPE_API_BASE", |v| {
        let host = v
            .strip_prefix("https://")
            .or_else(|| v.strip_prefix("http://"));
        match host {
            Some(h) if !h.is_empty() && !h.contains(['?', '#', ' ']) => {
                Ok(v.trim_end_matches('/').to_owned())
            }
            _ => Err("an http(s) URL without query".to_owned()),
        }
    });
    let secret_key = r.optional("STRIPE_SECRET_KEY", |v| Ok(Secret::new(v.to_owned())));
    let webhook_secret = r.optional("STRIPE_WEBHOOK_SECRET", |v| Ok(Secret::new(v.to_owned())));
    Some(StripeConfig {
        api_base: api_base?,
        secret_key: secret_key?,
        webhook_secret: webhook_secret?,
    })
}

fn payments(r: &mut Reader, stripe: Option<&StripeConfig>) -> Option<PaymentsConfig> {
    let provider = r.required("PALISADE_PAYMENT_PROVIDER", |v| match v {
        "simulated" => Ok(PaymentsConfig::Simulated),
        "stripe" => Ok(PaymentsConfig::Stripe),
        _ => Err("simulated or stripe".to_owned()),
    })?;
    if provider == PaymentsConfig::Stripe && stripe.is_some_and(|s| s.secret_key.is_none()) {
        r.problem(
            "STRIPE_SECRET_KEY",
            "required with PALISADE_PAYMENT_PROVIDER=stripe",
        );
        return None;
    }
    Some(provider)
}

fn billing(r: &mut Reader, stripe: Option<&StripeConfig>) -> Option<BillingConfig> {
    let enabled = r.required("PALISADE_BILLING", |v| match v {
        "off" => Ok(false),
        "stripe" => Ok(true),
        _ => Err("off or stripe".to_owned()),
    });
    let plans = r.required("PALISADE_BILLING_PLANS", Plans::parse);
    let return_url = r.required("PALISADE_BILLING_RETURN_URL", |v| {
        let ok =
            (v.starts_with("https://") || v.starts_with("http://")) && !v.contains(['?', '#', ' ']);
        ok.then(|| v.to_owned())
            .ok_or_else(|| "an http(s) URL without query or fragment".to_owned())
    });
    let (enabled, plans) = (enabled?, plans?);
    if enabled {
        let mut fine = true;
        if stripe.is_some_and(|s| s.secret_key.is_none()) {
            r.problem("STRIPE_SECRET_KEY", "required with PALISADE_BILLING=stripe");
            fine = false;
        }
        if stripe.is_some_and(|s| s.webhook_secret.is_none()) {
            r.problem(
                "STRIPE_WEBHOOK_SECRET",
                "required with PALISADE_BILLING=stripe: subscriptions change through Stripe's events",
            );
            fine = false;
        }
        if !plans.any_for_sale() {
            r.problem(
                "PALISADE_BILLING_PLANS",
                "with PALISADE_BILLING=stripe, at least one plan needs a stripe_price",
            );
            fine = false;
        }
        if !fine {
            return None;
        }
    }
    Some(BillingConfig {
        enabled,
        plans,
        return_url: return_url?,
    })
}

fn environment(v: &str) -> Result<Environment, String> {
    match v.to_ascii_lowercase().as_str() {
        "development" | "dev" => Ok(Environment::Development),
        "test" => Ok(Environment::Test),
        "production" | "prod" => Ok(Environment::Production),
        _ => Err(format!("`{v}` is not development, test or production")),
    }
}

fn log_filter(v: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(v)
        .map(|_| v.to_owned())
        .map_err(|e| format!("`{v}` is not a log filter: {e}"))
}

fn listen(r: &mut Reader) -> Option<SocketAddr> {
    let host = r.required("PALISADE_HOST", |v| {
        v.parse::<std::net::IpAddr>()
            .map_err(|_| format!("`{v}` is not an IP address"))
    });
    let port = r.required("PORT", |v| {
        v.parse::<u16>()
            .map_err(|_| format!("`{v}` is not a port (0..=65535)"))
    });
    Some(SocketAddr::new(host?, port?))
}

fn database_url(v: &str) -> Result<String, String> {
    match palisade_store::Backend::from_url(v) {
        Some(_) => Ok(v.to_owned()),
        None => Err(format!(
            "`{}` is neither sqlite://FILE nor postgres://…",
            palisade_store::redact_url(v)
        )),
    }
}

fn database(r: &mut Reader) -> Option<DatabaseConfig> {
    let url = r.required("DATABASE_URL", database_url);
    let read_url = r.optional("DATABASE_READ_URL", database_url);
    let pool_max = r.required("DB_POOL_MAX", parse::count(1..=1000u32));
    let idle = r.required("DB_IDLE_TIMEOUT", parse::duration);
    let connect = r.required("DB_CONNECTION_TIMEOUT", parse::duration);
    let debug_sql = r.required("DEBUG_SQL", parse::boolean);
    let migrate_on_start = r.required("PALISADE_MIGRATE_ON_START", parse::boolean);
    let health_interval = r.required(
        "PALISADE_DB_HEALTH_INTERVAL",
        parse::duration_in(Duration::from_millis(100)..=Duration::from_secs(3600)),
    );
    Some(DatabaseConfig {
        store: StoreSettings {
            url: url?,
            read_url: read_url?,
            pool_max: pool_max?,
            idle_timeout: idle?,
            connect_timeout: connect?,
            debug_sql: debug_sql?,
            retry: RetryPolicy::default(),
        },
        health_interval: health_interval?,
        migrate_on_start: migrate_on_start?,
    })
}

fn redis(r: &mut Reader) -> Option<Option<RedisConfig>> {
    let url = r.optional("REDIS_URL", |v| {
        if v.starts_with("redis://") || v.starts_with("rediss://") {
            Ok(Secret::new(v.to_owned()))
        } else {
            Err("must start with redis:// or rediss://".to_owned())
        }
    });
    let prefix = r.required("PALISADE_REDIS_PREFIX", |v| Ok(v.to_owned()));
    let (url, prefix) = (url?, prefix?);
    Some(url.map(|url| RedisConfig { url, prefix }))
}

fn cache(r: &mut Reader) -> Option<CacheConfig> {
    let max_bytes = r.required("PALISADE_CACHE_SIZE", parse::size);
    let ttl = r.required(
        "PALISADE_CACHE_TTL",
        parse::duration_in(Duration::from_secs(1)..=Duration::from_secs(24 * 3600)),
    );
    Some(CacheConfig {
        max_bytes: max_bytes? as u64,
        ttl: ttl?,
    })
}

/// Production refuses an allow-list that lets every address of a family in, whether
/// it says `0.0.0.0/0` or spreads it over `0.0.0.0/1,128.0.0.0/1`.
fn not_everyone(
    r: &mut Reader,
    key: &'static str,
    nets: Option<Vec<IpNet>>,
    production: bool,
) -> Option<Vec<IpNet>> {
    if production
        && let Some(all) = nets.as_deref().and_then(|nets| {
            IpNet::aggregate(&nets.to_vec())
                .into_iter()
                .find(|n| n.prefix_len() == 0)
        })
    {
        r.problem(
            key,
            &format!("together the networks cover every address (`{all}`); production refuses it"),
        );
    }
    nets
}

fn http(r: &mut Reader, production: bool) -> Option<HttpSettings> {
    let allowed_origins = r.required("ALLOWED_ORIGINS", parse::origins);
    if production
        && let Some(o) = allowed_origins
            .iter()
            .flatten()
            .find(|o| o.as_bytes().starts_with(b"http://"))
    {
        let o = String::from_utf8_lossy(o.as_bytes()).into_owned();
        r.problem(
            "ALLOWED_ORIGINS",
            &format!("`{o}` is plain HTTP; production origins must be https://"),
        );
    }
    let trusted = r.required("PALISADE_TRUSTED_PROXIES", parse::cidrs);
    let trusted_proxies = not_everyone(r, "PALISADE_TRUSTED_PROXIES", trusted, production);
    let ops = r.required("PALISADE_OPS_ALLOW", parse::cidrs);
    let ops_allow = not_everyone(r, "PALISADE_OPS_ALLOW", ops, production);
    let behind_tls = r.required("PALISADE_BEHIND_TLS", parse::boolean);
    let body_limit = r.required("PALISADE_BODY_LIMIT", |v| match parse::size(v) {
        Ok(n) if n > BODY_LIMIT_CEILING => Err("must not exceed 10MiB".to_owned()),
        other => other,
    });
    let request_timeout = r.required("PALISADE_REQUEST_TIMEOUT", parse::duration);
    let header_read_timeout = r.required("PALISADE_HEADER_READ_TIMEOUT", parse::duration);
    if production && header_read_timeout.is_some_and(|t| t > PRODUCTION_MAX_HEADER_READ_TIMEOUT) {
        r.problem(
            "PALISADE_HEADER_READ_TIMEOUT",
            "production allows at most 60s (a slow client holds a connection that long)",
        );
    }
    let idle_timeout = r.required(
        "PALISADE_IDLE_TIMEOUT",
        parse::duration_in(Duration::from_secs(1)..=Duration::from_secs(3600)),
    );
    let max_per_client = r.required(
        "PALISADE_MAX_CONNECTIONS_PER_CLIENT",
        parse::count(1..=1_000_000usize),
    );
    let shutdown_delay = r.required("PALISADE_SHUTDOWN_DELAY", parse::duration);
    let shutdown_timeout = r.required("PALISADE_SHUTDOWN_TIMEOUT", parse::duration);
    Some(HttpSettings {
        allowed_origins: allowed_origins?,
        trusted_proxies: trusted_proxies?,
        ops_allow: ops_allow?,
        behind_tls: behind_tls?,
        body_limit: body_limit?,
        request_timeout: request_timeout?,
        header_read_timeout: header_read_timeout?,
        idle_timeout: idle_timeout?,
        max_connections_per_client: max_per_client?,
        shutdown_delay: shutdown_delay?,
        shutdown_timeout: shutdown_timeout?,
    })
}

fn rate_limits(r: &mut Reader, production: bool) -> Option<RateLimitSettings> {
    let general = r.required("PALISADE_RATE_LIMIT_GENERAL", parse::rate);
    let auth = r.required("PALISADE_RATE_LIMIT_AUTH", parse::rate);
    let export = r.required("PALISADE_RATE_LIMIT_EXPORT", parse::rate);
    let payment = r.required("PALISADE_RATE_LIMIT_PAYMENT", parse::rate);
    let webhook = r.required("PALISADE_RATE_LIMIT_WEBHOOK", parse::rate);
    let (ceiling, per) = PRODUCTION_AUTH_TIER_CEILING;
    // The auth tier's burst is its whole count, so both the rate and the count are
    // bounded: 100 000 per 10 000 × 15m has the ceiling's rate and lets 100 000
    // guesses through at once. count/window > ceiling/per is compared without division.
    if production
        && let Some((count, window)) = auth
        && (count > ceiling
            || u128::from(count) * per.as_millis() > u128::from(ceiling) * window.as_millis())
    {
        r.problem(
            "PALISADE_RATE_LIMIT_AUTH",
            "production allows at most 100 per 15m on the auth tier",
        );
    }
    let allow = r.required("PALISADE_RATE_LIMIT_ALLOW", parse::cidrs);
    let allow = not_everyone(r, "PALISADE_RATE_LIMIT_ALLOW", allow, production);
    // The general tier allows a burst of 100 (or its whole count when smaller); the
    // auth, export and payment tiers take their whole count at once.
    let quota = |(count, window): (u32, Duration), burst: u32| Quota {
        count,
        window,
        burst: burst.min(count),
    };
    Some(RateLimitSettings {
        general: quota(general?, 100),
        auth: quota(auth?, u32::MAX),
        export: quota(export?, u32::MAX),
        payment: quota(payment?, u32::MAX),
        webhook: quota(webhook?, u32::MAX),
        allow: allow?,
    })
}

fn identity(r: &mut Reader, production: bool) -> Option<IdentityConfig> {
    let data_dir = r.required("PALISADE_DATA_DIR", |v| Ok(PathBuf::from(v)));
    let signing = signing(r, production);
    let encryption_key = r.optional("ENCRYPTION_KEY", |v| {
        let key = parse::hex_key(v)?;
        if production {
            production_secret(v, 64)?;
        }
        Ok(Secret::new(key))
    });
    if production && matches!(encryption_key, Some(None)) {
        r.problem("ENCRYPTION_KEY", "must be set in production");
    }
    let issuer = r.required("PALISADE_JWT_ISSUER", |v| Ok(v.to_owned()));
    let audience = r.required("PALISADE_JWT_AUDIENCE", |v| Ok(v.to_owned()));
    let access_ttl = r.required(
        "PALISADE_ACCESS_TOKEN_TTL",
        parse::duration_in(Duration::from_secs(60)..=Duration::from_secs(3600)),
    );
    let cookie_secure = r.required("PALISADE_COOKIE_SECURE", parse::boolean);
    if production && cookie_secure == Some(false) {
        r.problem(
            "PALISADE_COOKIE_SECURE",
            "plain-HTTP cookies are refused in production",
        );
    }
    let hash_threads = r.optional("PALISADE_HASH_THREADS", parse::count(1..=256usize));
    let settings = identity_settings(r, production);
    Some(IdentityConfig {
        data_dir: data_dir?,
        signing: signing?,
        encryption_key: encryption_key?,
        issuer: issuer?,
        audience: audience?,
        access_ttl: access_ttl?,
        cookie_secure: cookie_secure?,
        hash_threads: hash_threads?,
        settings: settings?,
    })
}

fn signing(r: &mut Reader, production: bool) -> Option<Signing> {
    let file = r.optional("PALISADE_JWT_KEY_FILE", |v| {
        let f = PathBuf::from(v);
        if f.is_file() {
            Ok(f)
        } else {
            Err(format!("{v} is not a readable file"))
        }
    });
    let secret = r.optional("JWT_SECRET", |v| {
        if production {
            production_secret(v, 32)?;
        }
        if v.len() < 32 {
            return Err("must be at least 32 bytes".into());
        }
        Ok(Secret::new(v.to_owned()))
    });
    match (file?, secret?) {
        (Some(_), Some(_)) => {
            r.problem(
                "PALISADE_JWT_KEY_FILE and JWT_SECRET",
                "both are set: one signing key, one algorithm",
            );
            None
        }
        (Some(f), None) => Some(Signing::KeyFile(f)),
        (None, Some(s)) => Some(Signing::Hs256(s)),
        (None, None) if production => {
            r.problem(
                "PALISADE_JWT_KEY_FILE (Ed25519) or JWT_SECRET (HS256)",
                "production needs an explicit signing key",
            );
            None
        }
        (None, None) => Some(Signing::Development),
    }
}

fn identity_settings(r: &mut Reader, production: bool) -> Option<IdentitySettings> {
    let refresh_idle = r.required("PALISADE_REFRESH_IDLE", parse::duration);
    let refresh_absolute = r.required("PALISADE_REFRESH_ABSOLUTE", parse::duration);
    let refresh_grace = r.required(
        "PALISADE_REFRESH_GRACE",
        parse::duration_in(Duration::ZERO..=Duration::from_secs(60)),
    );
    let max_sessions = r.required("PALISADE_MAX_SESSIONS", parse::count(1..=1000usize));
    let threshold = r.required("PALISADE_LOCKOUT_THRESHOLD", parse::count(1..=100u32));
    if production && threshold.is_some_and(|n| n > PRODUCTION_MAX_LOCKOUT_THRESHOLD) {
        r.problem("PALISADE_LOCKOUT_THRESHOLD", "production allows at most 10");
    }
    let lockout_time = |r: &mut Reader, key: &'static str| {
        let d = r.required(key, parse::duration);
        if production && d.is_some_and(|d| d < PRODUCTION_MIN_LOCKOUT_TIME) {
            r.problem(key, "production allows no less than 15m");
        }
        d
    };
    let window = lockout_time(r, "PALISADE_LOCKOUT_WINDOW");
    let duration = lockout_time(r, "PALISADE_LOCKOUT_DURATION");
    let require_verified = r.required("PALISADE_REQUIRE_VERIFIED_EMAIL", parse::boolean);
    Some(IdentitySettings {
        refresh_idle: refresh_idle?,
        refresh_absolute: refresh_absolute?,
        refresh_grace: refresh_grace?,
        max_sessions: max_sessions?,
        lockout: LockoutPolicy {
            threshold: threshold?,
            window: window?,
            duration: duration?,
        },
        require_verified_email: require_verified?,
    })
}

/// Production refuses secrets that are short, known from examples, or of one repeated
/// character.
fn production_secret(value: &str, min_len: usize) -> Result<(), String> {
    let lower = value.to_ascii_lowercase();
    if value.len() < min_len {
        Err(format!(
            "too short for production (at least {min_len} characters)"
        ))
    } else if KNOWN_WEAK.iter().any(|w| lower.contains(w)) {
        Err("looks like an example or default secret; generate a random one".into())
    } else if value.bytes().all(|b| b == value.as_bytes()[0]) {
        Err("is one character repeated; generate a random one".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
