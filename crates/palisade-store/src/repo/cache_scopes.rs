//! `cache_scopes`: the version of each cache scope, bumped in the transaction of a
//! change so that every instance sees the change on its next read. On PostgreSQL the
//! bump also notifies [`CHANGED`] with the scopes (one notification, the scopes
//! separated by spaces), delivered when the change commits.

use sea_query::{Expr, ExprTrait, Iden, OnConflict, Query};

use crate::{Backend, Exec, StoreError};

/// The notification channel a bumped scope is announced on (PostgreSQL).
pub const CHANGED: &str = "palisade_cache_scopes";

#[derive(Iden)]
enum CacheScopes {
    Table,
    Scope,
    Version,
}

/// The scope's version; 0 before its first change.
pub async fn version(ex: impl Into<Exec<'_>>, scope: &str) -> Result<i64, StoreError> {
    let stmt = Query::select()
        .expr_as(Expr::col(CacheScopes::Version), "n")
        .from(CacheScopes::Table)
        .and_where(Expr::col(CacheScopes::Scope).eq(scope))
        .to_owned();
    super::number(ex, "cache_scopes", &stmt).await
}

/// Moves each scope to its next version.
pub async fn bump(ex: impl Into<Exec<'_>>, scopes: &[String]) -> Result<(), StoreError> {
    if scopes.is_empty() {
        return Ok(());
    }
    let mut stmt = Query::insert();
    stmt.into_table(CacheScopes::Table)
        .columns([CacheScopes::Scope, CacheScopes::Version]);
    for scope in scopes {
        stmt.values_panic([scope.clone().into(), 1i64.into()]);
    }
    stmt.on_conflict(
        OnConflict::column(CacheScopes::Scope)
            .value(
                CacheScopes::Version,
                Expr::col((CacheScopes::Table, CacheScopes::Version)).add(1),
            )
            .to_owned(),
    );
    let mut ex = ex.into();
    ex.execute("cache_scopes", &stmt).await?;
    if ex.backend() == Backend::Postgres {
        super::notify(ex, CHANGED, &scopes.join(" ")).await?;
    }
    Ok(())
}
