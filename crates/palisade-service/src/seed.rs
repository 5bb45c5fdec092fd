//! Demo and benchmark data (`palisade db seed`): members, each with contracts that look
//! like real ones (titles, counterparties, amounts in several currencies, statuses,
//! dates over the past year, tags, descriptions). Rows go in by batches, each batch one
//! transaction of two statements, so 200,000 contracts take seconds.
//!
//! Every seeded member has the same passphrase, generated per run and returned once.
//! Seeding writes no domain event per row (consumers would deliver a notification for
//! each): one audit entry records the run, and the cache scopes of everyone seeded move
//! on, so dashboards show the new data.

use palisade_auth::email::Email;
use palisade_auth::ids::{ContractId, UserId};
use palisade_auth::permissions::Role;
use palisade_store::repo::contracts::{self, ContractRow};
use palisade_store::repo::users::{self, User};
use palisade_store::repo::{cache_scopes, now};
use palisade_store::{Db, StoreError};
use time::{Duration, OffsetDateTime};
use uuid::{NoContext, Timestamp, Uuid};

use crate::audit::{self, Action, Actor, Entry, Outcome};
use crate::events::{ALL_SCOPE, owner_scope};
use crate::identity::{Identity, IdentityError};

/// Contracts per transaction.
pub const BATCH: usize = 1000;

/// What to seed.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub users: u32,
    pub contracts_per_user: u32,
}

/// What was seeded.
#[derive(Debug)]
pub struct Seeded {
    pub users: u32,
    pub contracts: u64,
    /// The passphrase of every seeded member.
    pub passphrase: String,
    /// The first seeded member's e-mail, to sign in with.
    pub first_email: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

const TITLES: [&str; 12] = [
    "Supply of",
    "Maintenance of",
    "Licence for",
    "Consulting on",
    "Lease of",
    "Support for",
    "Installation of",
    "Audit of",
    "Delivery of",
    "Hosting of",
    "Training on",
    "Insurance of",
];
const OBJECTS: [&str; 12] = [
    "office chairs",
    "turbine parts",
    "cloud servers",
    "payroll software",
    "delivery vans",
    "solar panels",
    "network switches",
    "coffee machines",
    "security cameras",
    "warehouse racks",
    "laboratory glassware",
    "print equipment",
];
const COMPANIES: [&str; 12] = [
    "Acme GmbH",
    "Globex Ltd",
    "Initech SA",
    "Umbrella BV",
    "Stark Industries",
    "Wayne Enterprises",
    "Nimbus Oy",
    "Hooli Inc",
    "Vandelay Imports",
    "Tyrell AB",
    "Cyberdyne KK",
    "Soylent SpA",
];
const CURRENCIES: [(&str, i64); 5] = [
    ("EUR", 100),
    ("USD", 100),
    ("GBP", 100),
    ("CHF", 100),
    ("JPY", 1),
];
const STATUSES: [&str; 4] = ["active", "draft", "completed", "cancelled"];
const TAGS: [&str; 8] = [
    "hardware", "software", "services", "eu", "us", "priority", "renewal", "q4",
];
const SENTENCES: [&str; 6] = [
    "Delivered in quarterly batches to the main warehouse.",
    "Payment within 30 days of each invoice.",
    "Includes on-site support during business hours.",
    "Renews automatically unless cancelled 60 days before the end.",
    "Prices fixed for the first year, then indexed.",
    "Penalties apply for late delivery beyond two weeks.",
];

fn pick<T: Copy>(items: &[T]) -> T {
    items[rand::random_range(0..items.len())]
}

/// A passphrase of four groups of six letters and digits (about 124 bits).
fn passphrase() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    (0..4)
        .map(|_| {
            (0..6)
                .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A contract of `owner`, created at a moment of the past year.
fn contract(owner: UserId, at: OffsetDateTime) -> ContractRow {
    let created = at - Duration::seconds(rand::random_range(0..365 * 86_400));
    let ts = Timestamp::from_unix(
        NoContext,
        created.unix_timestamp() as u64,
        created.nanosecond(),
    );
    let (currency, unit) = pick(&CURRENCIES);
    let starts_on = created.date() + Duration::days(rand::random_range(0..60));
    let tags: Vec<&str> = (0..rand::random_range(0..4)).map(|_| pick(&TAGS)).collect();
    let mut tags_unique: Vec<&str> = Vec::new();
    for t in tags {
        if !tags_unique.contains(&t) {
            tags_unique.push(t);
        }
    }
    ContractRow {
        id: ContractId::from(Uuid::new_v7(ts)),
        owner_id: owner,
        title: format!("{} {}", pick(&TITLES), pick(&OBJECTS)),
        counterparty: pick(&COMPANIES).to_owned(),
        // Whole units of the currency, in its minor unit.
        amount_cents: rand::random_range(10..50_000) * unit,
        currency: currency.to_owned(),
        status: pick(&STATUSES).to_owned(),
        starts_on: Some(starts_on),
        ends_on: Some(starts_on + Duration::days(rand::random_range(30..730))),
        description: format!("{} {}", pick(&SENTENCES), pick(&SENTENCES)),
        tags: tags_unique.join(" "),
        version: 1,
        created_at: created,
        updated_at: created,
    }
}

/// Seeds `plan`; `progress` is told how many contracts are in after each batch.
pub async fn seed(
    db: &Db,
    identity: &Identity,
    plan: Plan,
    progress: impl Fn(u64),
) -> Result<Seeded, SeedError> {
    let passphrase = passphrase();
    let hash = identity.hash_password(&passphrase).await?;
    let run = &Uuid::now_v7().simple().to_string()[..12];
    let at = now();
    let mut owners = Vec::with_capacity(plan.users as usize);
    let mut first_email = String::new();
    for chunk in (0..plan.users).collect::<Vec<_>>().chunks(BATCH) {
        let mut tx = db.begin().await?;
        for i in chunk {
            let email = Email::parse(&format!("member{i}.{run}@seed.example.com"))
                .map_err(|e| IdentityError::Internal(e.to_string()))?;
            let user = User::new(&email, &format!("Seeded member {i}"), hash.clone(), at);
            users::insert(&mut tx, &user, &[Role::Member]).await?;
            if first_email.is_empty() {
                first_email = email.as_str().to_owned();
            }
            owners.push(user.id);
        }
        tx.commit().await?;
    }
    let total = u64::from(plan.users) * u64::from(plan.contracts_per_user);
    let mut done = 0u64;
    let mut batch = Vec::with_capacity(BATCH);
    for owner in &owners {
        for _ in 0..plan.contracts_per_user {
            batch.push(contract(*owner, at));
            if batch.len() == BATCH {
                done += write(db, &mut batch).await?;
                progress(done);
            }
        }
    }
    done += write(db, &mut batch).await?;
    progress(done);

    let mut tx = db.begin().await?;
    let mut scopes: Vec<String> = owners.iter().map(|o| owner_scope(*o)).collect();
    scopes.push(ALL_SCOPE.to_owned());
    cache_scopes::bump(&mut tx, &scopes).await?;
    let entry = Entry::new(Action::DataSeeded, Outcome::Success)
        .detail("users", plan.users)
        .detail("contracts", total);
    audit::append(&mut tx, &Actor::default(), &entry).await?;
    tx.commit().await?;
    Ok(Seeded {
        users: plan.users,
        contracts: done,
        passphrase,
        first_email,
    })
}

async fn write(db: &Db, batch: &mut Vec<ContractRow>) -> Result<u64, StoreError> {
    if batch.is_empty() {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    contracts::insert_many(&mut tx, batch).await?;
    tx.commit().await?;
    let n = batch.len() as u64;
    batch.clear();
    Ok(n)
}
