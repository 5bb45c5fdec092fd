//! The application built from a [`Config`]: what `serve`, the other commands and the
//! tests all start from, so none of them wires the pieces its own way.
//!
//! - [`services`]: the database (migrated when configured) and the identity service,
//!   which every command needs;
//! - [`build`]: those, plus what serving needs: the health service, the rate limiter,
//!   the HTTP application and the background tasks.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use palisade_auth::access::AccessTokens;
use palisade_auth::csrf::Csrf;
use palisade_auth::password::{BASELINE, Passwords};
use palisade_auth::refresh::RefreshTokens;
use palisade_http::prometheus::{self, Metrics};
use palisade_http::routes::Routes;
use palisade_http::{AppState, Shared};
use palisade_migrate::Quiet;
use palisade_migrate::engine::Plan;
use palisade_service::HealthService;
use palisade_service::audit::Audit;
use palisade_service::billing::{Billing, BillingSettings};
use palisade_service::contracts::Contracts;
use palisade_service::dashboard::Dashboard;
use palisade_service::dispatch::Dispatcher;
use palisade_service::events::EventLog;
use palisade_service::exports::Exports;
use palisade_service::idempotency::Idempotency;
use palisade_service::identity::{Hasher, Identity, IdentityKeys};
use palisade_service::infra::Infra;
use palisade_service::jobs::{Handler, Worker, WorkerSettings};
use palisade_service::mail::Mail;
use palisade_service::notifications::Notifications;
use palisade_service::notifications::live::Live;
use palisade_service::payments::Payments;
use palisade_service::payments::provider::{PaymentProvider, Simulated};
use palisade_service::payments::stripe::Stripe;
use palisade_service::stripe::StripeApi;
use palisade_service::stripe::webhooks::StripeWebhooks;
use palisade_service::webhooks::{Webhooks, deliver};
use palisade_store::background::Tasks;
use palisade_store::cache::{Cache, ScopeVersions};
use palisade_store::listen::Subscriptions;
use palisade_store::ratelimit::RateLimiter;
use palisade_store::redis::SharedRedis;
use palisade_store::slots::Slots;
use palisade_store::{Db, DbHealth, redact_url, schema};

use crate::config::{Config, Environment, PaymentsConfig, RedisConfig};
use crate::key_files;

/// How often expired sessions, refresh tokens and MFA challenges are deleted.
const CLEANUP_EVERY: Duration = Duration::from_secs(3600);

/// What every command works with.
#[derive(Clone)]
pub struct Services {
    pub db: Db,
    pub identity: Identity,
    pub csrf: Csrf,
    /// What this instance knows of the cache scopes' versions (moved by every event).
    pub versions: Arc<ScopeVersions>,
    pub events: EventLog,
    /// Stripe's API, when a secret key is configured.
    pub stripe: Option<StripeApi>,
    pub billing: Billing,
    pub webhooks: Webhooks,
    pub mail: Mail,
}

/// Connects to the database, applies this build's pending migrations when
/// `PALISADE_MIGRATE_ON_START` says so, and builds the identity service from the
/// configured (or development) keys.
pub async fn services(config: &Config) -> anyhow::Result<Services> {
    let store = &config.database.store;
    let db = Db::connect(store)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&store.url)))?;
    tracing::info!(backend = db.backend().as_str(), "database connected");
    let schema_current = if config.database.migrate_on_start {
        migrate(&db).await?;
        true
    } else {
        schema::counts(&db).await.is_ok_and(|c| c.pending == 0)
    };
    let c = &config.identity;
    let keys = key_files::load(c)?;
    let secrets = keys.secrets.clone();
    let access = AccessTokens::new(&keys.signing, &c.issuer, &c.audience, c.access_ttl);
    let refresh = RefreshTokens::new(&keys.signing.derive("palisade refresh-token v1"))?;
    let csrf = Csrf::new(&keys.signing.derive("palisade csrf v1"))?;
    let hasher = Hasher::new(
        Passwords::new(BASELINE)?,
        c.hash_threads.unwrap_or_else(Hasher::default_threads),
    );
    let versions = Arc::new(ScopeVersions::new(db.clone()));
    let events = EventLog::new(versions.clone());
    let mail =
        Mail::new(db.clone(), secrets.clone(), config.mail.clone()).context("account e-mail")?;
    let identity = Identity::new(
        db.clone(),
        hasher,
        IdentityKeys {
            access,
            refresh,
            secrets: keys.secrets,
        },
        Audit::new(db.clone()),
        c.settings.clone(),
        events.clone(),
        mail.clone(),
    );
    if !schema_current {
        tracing::warn!(
            "stored e-mail addresses are put in canonical form once the migrations are applied"
        );
    } else if let Err(e) = fix_stored_data(&identity).await {
        // A fix that fails leaves the rows as they were, and the server works with them
        // as the previous release did; it is not worth refusing to start over.
        tracing::error!(error = %format!("{e:#}"), "stored data not fixed; the next start tries again");
    }
    let stripe = stripe_api(config)?;
    let billing = Billing::new(
        db.clone(),
        events.clone(),
        BillingSettings {
            plans: config.billing.plans.clone(),
            stripe: stripe.clone().filter(|_| config.billing.enabled),
            return_url: config.billing.return_url.clone(),
        },
    );
    let webhooks = Webhooks::new(
        db.clone(),
        secrets,
        events.clone(),
        config.delivery.webhooks.clone(),
    )
    .context("the webhook client")?;
    Ok(Services {
        db,
        identity,
        csrf,
        versions,
        events,
        stripe,
        billing,
        webhooks,
        mail,
    })
}

/// The changes to existing rows that SQL cannot make (see `data_fixes`), on a current
/// schema: each is made once per database, by whichever instance comes first.
async fn fix_stored_data(identity: &Identity) -> anyhow::Result<()> {
    let Some(report) = identity
        .canonicalise_stored_emails()
        .await
        .context("putting stored e-mail addresses in canonical form")?
    else {
        return Ok(());
    };
    tracing::info!(
        changed = report.changed.len(),
        "stored e-mail addresses put in canonical form"
    );
    if !report.collisions.is_empty() || !report.invalid.is_empty() {
        tracing::error!(
            collisions = ?report.collisions,
            invalid = ?report.invalid,
            "some stored e-mail addresses were left as they are: accounts whose addresses share one canonical form, or are no address; settle them by hand (the report is in data_fixes)"
        );
    }
    Ok(())
}

/// Applies this build's pending migrations. Instances starting together take turns
/// on the runner lock; each migration is applied once.
async fn migrate(db: &Db) -> anyhow::Result<()> {
    let report = schema::migrator(db)?
        .execute(&Plan::Up { to: None }, false, &Quiet)
        .await
        .context("migrations failed; nothing else was started")?;
    if !report.steps.is_empty() {
        tracing::info!(applied = report.steps.len(), "migrations applied");
    }
    Ok(())
}

/// What `serve` runs.
pub struct App {
    pub services: Services,
    pub health: HealthService,
    pub state: AppState,
    /// The HTTP application: every route inside the edge.
    pub http: palisade_http::App,
    /// Background work; stop it once the server has drained.
    pub tasks: Tasks,
}

/// The application serving every route.
pub async fn build(config: &Config) -> anyhow::Result<App> {
    build_with(config, palisade_http::routes::all()).await
}

/// The application serving `routes` (tests add routes of their own).
pub async fn build_with(config: &Config, routes: Routes) -> anyhow::Result<App> {
    let services = services(config).await?;
    let db = &services.db;
    let mut tasks = Tasks::default();
    let metrics = Metrics::global();
    tasks.every(
        "metrics upkeep",
        prometheus::UPKEEP_EVERY,
        move || async move {
            metrics.upkeep();
        },
    );
    let identity = services.identity.clone();
    tasks.every("expired sessions clean-up", CLEANUP_EVERY, move || {
        let identity = identity.clone();
        async move {
            match identity.delete_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "expired sessions and tokens deleted"),
                Err(e) => tracing::warn!(error = %e, "clean-up of expired sessions failed"),
            }
        }
    });
    let db_health = DbHealth::start(
        db.clone(),
        config.database.health_interval,
        config.database.store.connect_timeout * 2,
        &mut tasks,
    )
    .await;
    if db_health.pending_migrations() > 0 {
        tracing::warn!(
            pending = db_health.pending_migrations(),
            "migrations are pending: not ready until they are applied (palisade migrate up)"
        );
    }
    let redis = shared_redis(config.redis.as_ref()).await;
    let limiter = Arc::new(match &redis {
        Some(r) => RateLimiter::shared(r.clone()),
        None => RateLimiter::in_process(),
    });
    let health = HealthService::new(db.clone(), db_health).with_redis(redis.clone());
    let records = Arc::new(Cache::new(
        redis.clone(),
        config.cache.max_bytes,
        config.cache.ttl,
    ));
    let versions = services.versions.clone();
    let mut subscriptions = Subscriptions::default();
    versions.subscribe(&mut subscriptions);
    let live = Live::new(Slots::new(redis.clone()));
    live.listen(&mut subscriptions);
    let notifications = Notifications::new(db.clone(), live);
    let dispatcher = Dispatcher::new(
        db.clone(),
        notifications.clone(),
        services.webhooks.clone(),
        services.mail.clone(),
        &services.events,
    );
    dispatcher.start(&mut tasks);
    let handlers: Vec<Arc<dyn Handler>> = vec![
        dispatcher,
        deliver::handler(&services.webhooks),
        Arc::new(services.mail.clone()),
    ];
    let settings = WorkerSettings {
        lease: config.delivery.job_lease,
        ..WorkerSettings::default()
    };
    Worker::new(db.clone(), settings, handlers).start(&mut tasks, &mut subscriptions);
    subscriptions.start(db, &mut tasks);
    let events = services.events.clone();
    let contracts = Contracts::new(db.clone(), events.clone());
    let payments = Payments::new(
        db.clone(),
        events,
        provider(config, services.stripe.clone())?,
    );
    let billing = services.billing.clone();
    let idempotency = Idempotency::new(db.clone());
    let keys = idempotency.clone();
    tasks.every(
        "expired idempotency keys clean-up",
        CLEANUP_EVERY,
        move || {
            let keys = keys.clone();
            async move {
                match keys.purge_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, "expired idempotency keys deleted"),
                    Err(e) => tracing::warn!(error = %e, "clean-up of idempotency keys failed"),
                }
            }
        },
    );
    let infra = Infra::new(
        db.clone(),
        health.clone(),
        services.identity.clone(),
        limiter.clone(),
        records.clone(),
    );
    let state = AppState::from(Shared {
        db: db.clone(),
        health: health.clone(),
        identity: services.identity.clone(),
        contracts: contracts.clone(),
        dashboard: Dashboard::new(db.clone(), records, versions),
        exports: Exports::new(
            db.clone(),
            contracts,
            payments.clone(),
            services.identity.audit().clone(),
            Slots::new(redis.clone()),
        ),
        stripe_webhooks: StripeWebhooks::new(
            db.clone(),
            payments.clone(),
            billing.clone(),
            config
                .stripe
                .webhook_secret
                .as_ref()
                .map(|s| s.expose().clone()),
        ),
        payments,
        billing,
        notifications,
        webhooks: services.webhooks.clone(),
        idempotency,
        infra,
        csrf: services.csrf.clone(),
        cookie_secure: config.identity.cookie_secure,
        allowed_origins: Arc::from(config.http.allowed_origins.clone()),
        limiter,
        rate_limits: config.rate_limits.clone(),
        metrics,
        ops_allow: Arc::from(config.http.ops_allow.clone()),
        body_limit: config.http.body_limit,
        openapi: routes.openapi().to_json()?.into(),
    });
    let http = palisade_http::app(state.clone(), &config.http, routes);
    Ok(App {
        services,
        health,
        state,
        http,
        tasks,
    })
}

/// The client of Stripe's API, when a secret key is configured.
fn stripe_api(config: &Config) -> anyhow::Result<Option<StripeApi>> {
    let Some(key) = &config.stripe.secret_key else {
        return Ok(None);
    };
    let api =
        StripeApi::new(&config.stripe.api_base, key.expose()).context("Stripe's API client")?;
    Ok(Some(api))
}

/// Who moves the money, as configured.
fn provider(
    config: &Config,
    stripe: Option<StripeApi>,
) -> anyhow::Result<Arc<dyn PaymentProvider>> {
    Ok(match (config.payments, stripe) {
        (PaymentsConfig::Stripe, Some(api)) => Arc::new(Stripe::new(api)),
        (PaymentsConfig::Stripe, None) => {
            anyhow::bail!("PALISADE_PAYMENT_PROVIDER=stripe needs STRIPE_SECRET_KEY")
        }
        (PaymentsConfig::Simulated, _) => {
            if config.env == Environment::Production {
                tracing::warn!(
                    "PALISADE_PAYMENT_PROVIDER=simulated in production: payments move no money"
                );
            }
            Arc::new(Simulated)
        }
    })
}

/// The Redis handle shared state goes through, when `REDIS_URL` is set. A Redis that
/// does not answer at start is used once it does; until then every instance keeps its
/// own state.
async fn shared_redis(redis: Option<&RedisConfig>) -> Option<Arc<SharedRedis>> {
    let redis = redis?;
    let url = redis.url.expose();
    let handle = match SharedRedis::connect(url, &redis.prefix) {
        Ok(handle) => Arc::new(handle),
        Err(e) => {
            tracing::error!(error = %e, redis = %redact_url(url), "REDIS_URL is not usable: rate limits and the cache are this instance's own");
            return None;
        }
    };
    match handle.ping().await {
        Ok(_) => tracing::info!("rate limits and the cache are shared through Redis"),
        Err(e) => {
            tracing::error!(error = %e, redis = %redact_url(url), "Redis unreachable at start: rate limits and the cache are this instance's own until it answers");
        }
    }
    Some(handle)
}
