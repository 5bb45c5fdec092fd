//! Every configuration key: its environment name, its default and whether it is secret.
//! `palisade.toml` uses the same names in lower case (`database_url = "…"`).

pub struct Key {
    /// Environment variable; the TOML key is its lower-case form.
    pub env: &'static str,
    pub default: Option<&'static str>,
    pub secret: bool,
    pub help: &'static str,
}

const fn key(env: &'static str, default: Option<&'static str>, help: &'static str) -> Key {
    Key {
        env,
        default,
        secret: false,
        help,
    }
}

const fn secret(env: &'static str, help: &'static str) -> Key {
    Key {
        env,
        default: None,
        secret: true,
        help,
    }
}

pub const KEYS: &[Key] = &[
    key(
        "PALISADE_ENV",
        Some("development"),
        "development | test | production",
    ),
    key("PALISADE_HOST", Some("127.0.0.1"), "address to listen on"),
    key(
        "PORT",
        Some("3000"),
        "port to listen on (0 picks a free one)",
    ),
    key(
        "DATABASE_URL",
        Some("sqlite://data/palisade.db"),
        "sqlite://FILE or postgres://…",
    ),
    key(
        "DATABASE_READ_URL",
        None,
        "optional replica for read-only queries",
    ),
    key("DB_POOL_MAX", Some("20"), "connections per pool"),
    key(
        "DB_IDLE_TIMEOUT",
        Some("30s"),
        "idle connection lifetime (plain number: ms)",
    ),
    key(
        "DB_CONNECTION_TIMEOUT",
        Some("2s"),
        "longest wait for a connection (plain number: ms)",
    ),
    key(
        "DEBUG_SQL",
        Some("false"),
        "log statements (never their values)",
    ),
    key(
        "PALISADE_MIGRATE_ON_START",
        Some("true"),
        "serve applies pending migrations first; false: not ready while any are pending",
    ),
    key(
        "PALISADE_DB_HEALTH_INTERVAL",
        Some("30s"),
        "background database check period",
    ),
    key(
        "REDIS_URL",
        None,
        "redis://… for state shared between instances",
    ),
    key(
        "PALISADE_REDIS_PREFIX",
        Some("palisade:"),
        "prefix of every Redis key (several deployments on one Redis)",
    ),
    key(
        "PALISADE_CACHE_SIZE",
        Some("64MiB"),
        "bound of the record cache (dashboard aggregates) in each process; Redis is its shared level",
    ),
    key(
        "PALISADE_CACHE_TTL",
        Some("5m"),
        "how long a cached aggregate lives (a write makes it unreachable at once)",
    ),
    key(
        "PALISADE_RATE_LIMIT_GENERAL",
        Some("300/60s"),
        "requests per window, per IP (per user once signed in); burst 100",
    ),
    key(
        "PALISADE_RATE_LIMIT_AUTH",
        Some("10/15m"),
        "whatever checks a password or a code (sign-up, login, refresh, step-up, 2FA, password change, account deletion): per IP",
    ),
    key(
        "PALISADE_RATE_LIMIT_EXPORT",
        Some("10/60s"),
        "exports started, per user (at most 2 running at once)",
    ),
    key(
        "PALISADE_RATE_LIMIT_PAYMENT",
        Some("60/60s"),
        "payments and refunds requested, per user",
    ),
    key(
        "PALISADE_RATE_LIMIT_WEBHOOK",
        Some("600/60s"),
        "inbound webhooks (Stripe's), per IP",
    ),
    key(
        "PALISADE_RATE_LIMIT_ALLOW",
        Some(""),
        "comma-separated CIDRs that bypass rate limits (monitoring, internal)",
    ),
    key(
        "LOG_LEVEL",
        Some("info"),
        "error | warn | info | debug | trace, or a tracing filter",
    ),
    key("ALLOWED_ORIGINS", Some(""), "comma-separated CORS origins"),
    key(
        "PALISADE_TRUSTED_PROXIES",
        Some(""),
        "comma-separated CIDRs whose X-Forwarded-For is believed",
    ),
    key(
        "PALISADE_OPS_ALLOW",
        Some("127.0.0.0/8,::1/128"),
        "CIDRs that may read /metrics and /health/detailed (as may an admin:infra token)",
    ),
    key(
        "PALISADE_BEHIND_TLS",
        Some("false"),
        "TLS terminates before this server: send HSTS",
    ),
    key(
        "PALISADE_COOKIE_SECURE",
        Some("true"),
        "mark cookies Secure (required in production)",
    ),
    key(
        "PALISADE_BODY_LIMIT",
        Some("1MiB"),
        "largest request body (ceiling 10MiB)",
    ),
    key(
        "PALISADE_REQUEST_TIMEOUT",
        Some("30s"),
        "longest time to answer a request",
    ),
    key(
        "PALISADE_HEADER_READ_TIMEOUT",
        Some("10s"),
        "longest time for a client to send a request's headers, from its connection or its last answer (production: at most 60s)",
    ),
    key(
        "PALISADE_IDLE_TIMEOUT",
        Some("10s"),
        "a connection (HTTP/1 or HTTP/2) with no request in flight is closed after this long",
    ),
    key(
        "PALISADE_MAX_CONNECTIONS_PER_CLIENT",
        Some("256"),
        "open connections one client address may hold (trusted proxies exempt)",
    ),
    key(
        "PALISADE_SHUTDOWN_DELAY",
        Some("0s"),
        "keep accepting (not ready) this long after SIGTERM",
    ),
    key(
        "PALISADE_SHUTDOWN_TIMEOUT",
        Some("30s"),
        "longest wait for in-flight requests at shutdown",
    ),
    key(
        "PALISADE_DATA_DIR",
        Some("data"),
        "where development keys are generated on first start",
    ),
    key(
        "PALISADE_JWT_KEY_FILE",
        None,
        "Ed25519 private key (PKCS#8 PEM) signing access tokens (EdDSA)",
    ),
    secret(
        "JWT_SECRET",
        "HS256 signing secret, at least 32 bytes (instead of the Ed25519 key)",
    ),
    key(
        "PALISADE_JWT_ISSUER",
        Some("palisade"),
        "the iss of access tokens",
    ),
    key(
        "PALISADE_JWT_AUDIENCE",
        Some("palisade-api"),
        "the aud of access tokens",
    ),
    key(
        "PALISADE_ACCESS_TOKEN_TTL",
        Some("15m"),
        "access-token lifetime",
    ),
    key(
        "PALISADE_REFRESH_IDLE",
        Some("7d"),
        "refresh token expires after this long unused",
    ),
    key(
        "PALISADE_REFRESH_ABSOLUTE",
        Some("30d"),
        "a session ends this long after sign-in",
    ),
    key(
        "PALISADE_REFRESH_GRACE",
        Some("10s"),
        "a rotated refresh token presented within this window gets the same successor",
    ),
    key(
        "PALISADE_HASH_THREADS",
        None,
        "password-hashing threads, each up to 19 MiB in use (default: one per core)",
    ),
    key(
        "PALISADE_MAX_SESSIONS",
        Some("10"),
        "active sessions per user (the oldest ends)",
    ),
    key(
        "PALISADE_LOCKOUT_THRESHOLD",
        Some("5"),
        "failed logins within the window that lock an account",
    ),
    key(
        "PALISADE_LOCKOUT_WINDOW",
        Some("15m"),
        "window in which failed logins count",
    ),
    key(
        "PALISADE_LOCKOUT_DURATION",
        Some("15m"),
        "first lock's length; each further lock doubles, up to 24h",
    ),
    secret(
        "ENCRYPTION_KEY",
        "32 bytes as 64 hex digits, encrypts secrets at rest",
    ),
    key(
        "PALISADE_PAYMENT_PROVIDER",
        Some("simulated"),
        "who moves the money: simulated (Stripe's test payment methods, settled at once) or stripe",
    ),
    key(
        "STRIPE_API_BASE",
        Some("https://api.stripe.com"),
        "Stripe's API, or a Stripe-compatible server's (localstripe)",
    ),
    secret(
        "STRIPE_SECRET_KEY",
        "sk_… for the stripe provider and for billing",
    ),
    secret(
        "STRIPE_WEBHOOK_SECRET",
        "whsec_… that Stripe signs its webhook events with; without it they are refused",
    ),
    key(
        "PALISADE_BILLING",
        Some("off"),
        "off (every feature on) or stripe (plans sold through Stripe Checkout, gated by subscription)",
    ),
    key(
        "PALISADE_BILLING_PLANS",
        Some(palisade_service::billing::plans::DEFAULT_PLANS),
        "the plans, as JSON: [{id, name, features, limits, stripe_price?}], the default plan first",
    ),
    key(
        "PALISADE_BILLING_RETURN_URL",
        Some("http://localhost:3000/billing"),
        "the page Stripe Checkout and the billing portal send the customer back to",
    ),
    secret(
        "SMTP_URL",
        "smtp://user:password@host:587 (STARTTLS required), smtps://…:465, or smtp://host:port?tls=none; without it, development writes mail to .eml files in PALISADE_DATA_DIR/mail",
    ),
    key(
        "SMTP_CA_FILE",
        None,
        "a PEM certificate authority the SMTP server's certificate may chain to, beside the web's roots",
    ),
    key(
        "PALISADE_MAIL_FROM",
        Some("Palisade <no-reply@localhost>"),
        "the sender of account e-mail",
    ),
    key(
        "PALISADE_PUBLIC_URL",
        Some("http://localhost:3000"),
        "where the links in account e-mail lead (https in production)",
    ),
    key(
        "PALISADE_REQUIRE_VERIFIED_EMAIL",
        Some("false"),
        "refuse sign-in (403 auth.email_unverified, after a right password) until the address is verified",
    ),
    key(
        "PALISADE_JOB_LEASE",
        Some("30s"),
        "how long a worker's claim holds a job (renewed while it runs): a job whose worker died runs again after it",
    ),
    key(
        "PALISADE_WEBHOOK_ALLOW_PRIVATE",
        Some("false"),
        "let webhook endpoints reach loopback, private and link-local addresses (receivers on an internal network, tests)",
    ),
    key(
        "PALISADE_WEBHOOK_RETRIES",
        Some("5s,30s,2m,10m,1h,6h,24h"),
        "the waits before each further attempt of a webhook delivery (±20 %); one attempt more than waits",
    ),
    key(
        "PALISADE_WEBHOOK_DISABLE_AFTER",
        Some("3d"),
        "how long every attempt to an endpoint may fail before it is disabled (its administrators are told)",
    ),
];

pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.env.eq_ignore_ascii_case(name))
}

/// The README's configuration table: one row per key, in registry order.
pub fn markdown_table() -> String {
    let mut out = String::from("| key | default | meaning |\n|---|---|---|\n");
    for k in KEYS {
        let default = match k.default {
            Some(d) if !d.is_empty() => format!("`{d}`"),
            _ => "—".to_owned(),
        };
        out.push_str(&format!(
            "| `{}` | {default} | {} |\n",
            k.env,
            k.help.replace('|', "\\|")
        ));
    }
    out
}
