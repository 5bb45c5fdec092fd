//! [`Exec`]: "somewhere a statement can run", so a repository function is written once
//! and called on the pool (`&Db`) or inside a transaction (`&mut Tx`):
//! `users::by_id(&db, id)` or `users::by_id(&mut tx, id)`.
//!
//! An enum rather than a trait: async trait methods with generic lifetimes defeat the
//! compiler's `Send` proof for handler futures (rust-lang/rust#100013).

use sea_query_sqlx::SqlxBinder;

use crate::dialect::{FromAnyRow, Operation};
use crate::{Db, StoreError, Tx};

pub enum Exec<'a> {
    Pool(&'a Db),
    Tx(&'a mut Tx),
}

impl<'a> From<&'a Db> for Exec<'a> {
    fn from(db: &'a Db) -> Self {
        Exec::Pool(db)
    }
}

impl<'a> From<&'a mut Tx> for Exec<'a> {
    fn from(tx: &'a mut Tx) -> Self {
        Exec::Tx(tx)
    }
}

impl Exec<'_> {
    /// A shorter-lived `Exec` on the same pool or transaction, to pass on.
    pub fn reborrow(&mut self) -> Exec<'_> {
        match self {
            Exec::Pool(db) => Exec::Pool(db),
            Exec::Tx(tx) => Exec::Tx(tx),
        }
    }

    pub async fn fetch_all<T, S>(
        &mut self,
        table: &'static str,
        stmt: &S,
    ) -> Result<Vec<T>, StoreError>
    where
        T: FromAnyRow,
        S: SqlxBinder + Operation,
    {
        match self {
            Exec::Pool(db) => db.fetch_all(table, stmt).await,
            Exec::Tx(tx) => tx.fetch_all(table, stmt).await,
        }
    }

    pub async fn fetch_optional<T, S>(
        &mut self,
        table: &'static str,
        stmt: &S,
    ) -> Result<Option<T>, StoreError>
    where
        T: FromAnyRow,
        S: SqlxBinder + Operation,
    {
        match self {
            Exec::Pool(db) => db.fetch_optional(table, stmt).await,
            Exec::Tx(tx) => tx.fetch_optional(table, stmt).await,
        }
    }

    pub async fn execute<S>(&mut self, table: &'static str, stmt: &S) -> Result<u64, StoreError>
    where
        S: SqlxBinder + Operation,
    {
        match self {
            Exec::Pool(db) => db.execute(table, stmt).await,
            Exec::Tx(tx) => tx.execute(table, stmt).await,
        }
    }
}

impl Exec<'_> {
    /// The database this runs on: for the few statements written per dialect (full-text
    /// search).
    pub fn backend(&self) -> crate::Backend {
        match self {
            Exec::Pool(db) => db.backend(),
            Exec::Tx(tx) => tx.backend(),
        }
    }
}
