//! [`Exec`]: "somewhere a statement can run", so a repository function is written once
//! and called on the pool (`&Db`) or inside a transaction (`&mut Tx`).

use std::future::Future;

use sea_query_sqlx::SqlxBinder;

use crate::dialect::{FromAnyRow, Operation};
use crate::{Backend, Db, StoreError, Tx};

pub trait Exec: Send {
    fn backend(&self) -> Backend;

    fn fetch_all<'a, T, S>(
        &'a mut self,
        table: &'static str,
        stmt: &'a S,
    ) -> impl Future<Output = Result<Vec<T>, StoreError>> + Send + 'a
    where
        T: FromAnyRow + 'a,
        S: SqlxBinder + Operation + Sync;

    fn fetch_optional<'a, T, S>(
        &'a mut self,
        table: &'static str,
        stmt: &'a S,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send + 'a
    where
        T: FromAnyRow + 'a,
        S: SqlxBinder + Operation + Sync;

    fn execute<'a, S>(
        &'a mut self,
        table: &'static str,
        stmt: &'a S,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send + 'a
    where
        S: SqlxBinder + Operation + Sync;
}

impl Exec for &Db {
    fn backend(&self) -> Backend {
        Db::backend(self)
    }

    fn fetch_all<'a, T, S>(
        &'a mut self,
        table: &'static str,
        stmt: &'a S,
    ) -> impl Future<Output = Result<Vec<T>, StoreError>> + Send + 'a
    where
        T: FromAnyRow + 'a,
        S: SqlxBinder + Operation + Sync,
    {
        Db::fetch_all(*self, table, stmt)
    }

    fn fetch_optional<'a, T, S>(
        &'a mut self,
        table: &'static str,
        stmt: &'a S,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send + 'a
    where
        T: FromAnyRow + 'a,
        S: SqlxBinder + Operation + Sync,
    {
        Db::fetch_optional(*self, table, stmt)
    }

    fn execute<'a, S>(
        &'a mut self,
        table: &'static str,
        stmt: &'a S,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send + 'a
    where
        S: SqlxBinder + Operation + Sync,
    {
        Db::execute(*self, table, stmt)
    }
}

impl Exec for &mut Tx {
    fn backend(&self) -> Backend {
        Tx::backend(self)
    }

    fn fetch_all<'a, T, S>(
        &'a mut self,
        table: &'static str,
        stmt: &'a S,
    ) -> impl Future<Output = Result<Vec<T>, StoreError>> + Send + 'a
    where
        T: FromAnyRow + 'a,
        S: SqlxBinder + Operation + Sync,
    {
        Tx::fetch_all(self, table, stmt)
    }

    fn fetch_optional<'a, T, S>(
        &'a mut self,
        table: &'static str,
        stmt: &'a S,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send + 'a
    where
        T: FromAnyRow + 'a,
        S: SqlxBinder + Operation + Sync,
    {
        Tx::fetch_optional(self, table, stmt)
    }

    fn execute<'a, S>(
        &'a mut self,
        table: &'static str,
        stmt: &'a S,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send + 'a
    where
        S: SqlxBinder + Operation + Sync,
    {
        Tx::execute(self, table, stmt)
    }
}

/// A repository function can pass its executor on to another by `&mut`.
impl<E: Exec> Exec for &mut E {
    fn backend(&self) -> Backend {
        E::backend(self)
    }

    fn fetch_all<'a, T, S>(
        &'a mut self,
        table: &'static str,
        stmt: &'a S,
    ) -> impl Future<Output = Result<Vec<T>, StoreError>> + Send + 'a
    where
        T: FromAnyRow + 'a,
        S: SqlxBinder + Operation + Sync,
    {
        E::fetch_all(self, table, stmt)
    }

    fn fetch_optional<'a, T, S>(
        &'a mut self,
        table: &'static str,
        stmt: &'a S,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send + 'a
    where
        T: FromAnyRow + 'a,
        S: SqlxBinder + Operation + Sync,
    {
        E::fetch_optional(self, table, stmt)
    }

    fn execute<'a, S>(
        &'a mut self,
        table: &'static str,
        stmt: &'a S,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send + 'a
    where
        S: SqlxBinder + Operation + Sync,
    {
        E::execute(self, table, stmt)
    }
}
