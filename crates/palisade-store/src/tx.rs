//! Transactions, retried as a whole on transient failure.

use std::future::Future;
use std::pin::Pin;

use sea_query_sqlx::SqlxBinder;
use sqlx::{Postgres, Sqlite, Transaction};

use crate::db::{Pool, observed};
use crate::dialect::{FromAnyRow, Operation, Target, run};
use crate::{Db, StoreError};

/// An open transaction. Dropped without [`Db::transaction`] committing it, it rolls back.
pub struct Tx {
    inner: Inner,
    /// Run once the commit succeeded ([`Tx::on_commit`]).
    after_commit: Vec<Box<dyn FnOnce() + Send>>,
}

enum Inner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// The future a transaction body returns.
pub type TxFuture<'t, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 't>>;

/// Errors that can say whether running the whole transaction again may succeed.
pub trait MaybeTransient {
    fn is_transient(&self) -> bool;
}

impl MaybeTransient for StoreError {
    fn is_transient(&self) -> bool {
        StoreError::is_transient(self)
    }
}

impl Tx {
    async fn begin(pool: &Pool) -> Result<Tx, sqlx::Error> {
        let inner = match pool {
            // IMMEDIATE takes SQLite's write lock up front: a deferred transaction that
            // later upgrades to a writer can fail with SQLITE_BUSY at once, without
            // honouring the busy timeout.
            Pool::Sqlite(p) => Inner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => Inner::Postgres(p.begin().await?),
        };
        Ok(Tx {
            inner,
            after_commit: Vec::new(),
        })
    }

    /// Runs `hook` after this transaction commits, and never if it rolls back: for
    /// what this process must do only once the change is visible to others (forget
    /// what it cached of the old state).
    pub fn on_commit(&mut self, hook: impl FnOnce() + Send + 'static) {
        self.after_commit.push(Box::new(hook));
    }

    pub fn backend(&self) -> crate::Backend {
        match &self.inner {
            Inner::Sqlite(_) => crate::Backend::Sqlite,
            Inner::Postgres(_) => crate::Backend::Postgres,
        }
    }

    fn target(&mut self) -> Target<'_> {
        match &mut self.inner {
            Inner::Sqlite(t) => Target::SqliteConn(t),
            Inner::Postgres(t) => Target::PgConn(t),
        }
    }

    async fn commit_inner(self) -> Result<(), sqlx::Error> {
        match self.inner {
            Inner::Sqlite(t) => t.commit().await?,
            Inner::Postgres(t) => t.commit().await?,
        }
        for hook in self.after_commit {
            hook();
        }
        Ok(())
    }

    /// Commits. A `Tx` dropped without this rolls back.
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.commit_inner().await?)
    }

    async fn rollback(self) -> Result<(), sqlx::Error> {
        match self.inner {
            Inner::Sqlite(t) => t.rollback().await,
            Inner::Postgres(t) => t.rollback().await,
        }
    }

    pub async fn fetch_all<T: FromAnyRow, S: SqlxBinder + Operation>(
        &mut self,
        table: &'static str,
        stmt: &S,
    ) -> Result<Vec<T>, StoreError> {
        Ok(observed(S::OPERATION, table, run::fetch_all(self.target(), stmt)).await?)
    }

    pub async fn fetch_optional<T: FromAnyRow, S: SqlxBinder + Operation>(
        &mut self,
        table: &'static str,
        stmt: &S,
    ) -> Result<Option<T>, StoreError> {
        Ok(observed(
            S::OPERATION,
            table,
            run::fetch_optional(self.target(), stmt),
        )
        .await?)
    }

    pub async fn execute<S: SqlxBinder + Operation>(
        &mut self,
        table: &'static str,
        stmt: &S,
    ) -> Result<u64, StoreError> {
        Ok(observed(S::OPERATION, table, run::execute(self.target(), stmt)).await?)
    }

    /// Runs value-free SQL (DDL) inside the transaction.
    pub async fn execute_script(&mut self, sql: &'static str) -> Result<(), StoreError> {
        Ok(run::raw(self.target(), sql).await?)
    }
}

impl Db {
    /// Opens a transaction on the primary, for a body that is simplest written straight
    /// through; it is not retried. Commit it with [`Tx::commit`]; dropped, it rolls back.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(Tx::begin(self.primary()).await?)
    }

    /// Runs `body` in a transaction on the primary: commits when it returns `Ok`, rolls
    /// back when it returns `Err`. When the body or the commit fails with a transient
    /// error, the whole transaction runs again under the retry policy, so `body` must
    /// do nothing outside the database that it cannot repeat. The body owns what it
    /// uses (clone an `Arc` into it): its future lives as long as the transaction.
    pub async fn transaction<T, E, F>(&self, mut body: F) -> Result<T, E>
    where
        F: for<'t> FnMut(&'t mut Tx) -> TxFuture<'t, T, E>,
        E: From<StoreError> + MaybeTransient,
    {
        let mut attempt = 1;
        loop {
            let result = self.transaction_once(&mut body).await;
            match result {
                Err(e) if attempt < self.retry.max_attempts && e.is_transient() => {
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn transaction_once<T, E, F>(&self, body: &mut F) -> Result<T, E>
    where
        F: for<'t> FnMut(&'t mut Tx) -> TxFuture<'t, T, E>,
        E: From<StoreError>,
    {
        let mut tx = Tx::begin(self.primary())
            .await
            .map_err(|e| E::from(e.into()))?;
        match body(&mut tx).await {
            Ok(value) => {
                tx.commit_inner().await.map_err(|e| E::from(e.into()))?;
                Ok(value)
            }
            Err(e) => {
                if let Err(rb) = tx.rollback().await {
                    tracing::warn!(error = %rb, "rollback failed; the connection is discarded");
                }
                Err(e)
            }
        }
    }
}
