//! The application's schema: the migrations in `migrations/sqlite` and
//! `migrations/postgres`, embedded at build time (`build.rs`), run by
//! `palisade-migrate`.

use palisade_migrate::{MigrateError, MigrationSet, Migrator, State, Target};

use crate::db::Pool;
use crate::{Backend, Db};

mod files {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// The embedded migrations of `backend`.
pub fn migrations(backend: Backend) -> MigrationSet {
    let files = match backend {
        Backend::Sqlite => files::SQLITE,
        Backend::Postgres => files::POSTGRES,
    };
    MigrationSet::from_files(
        backend,
        "embedded",
        files
            .iter()
            .map(|(f, s)| ((*f).to_owned(), (*s).to_owned())),
    )
}

/// How many of this build's migrations the database has, and has not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub applied: usize,
    /// Not applied, in order or not.
    pub pending: usize,
}

/// The migrator of this build's schema on `db`.
pub fn migrator(db: &Db) -> Result<Migrator, MigrateError> {
    Migrator::new(db.migration_target(), migrations(db.backend()))
}

/// Reads the tracking table now.
pub async fn counts(db: &Db) -> Result<Counts, MigrateError> {
    let status = migrator(db)?.status().await?;
    Ok(Counts {
        applied: status.with_state(State::Applied).count(),
        pending: status.with_state(State::Pending).count()
            + status.with_state(State::OutOfOrder).count(),
    })
}

impl Db {
    /// Where migrations run: the primary, with the pool's connection settings.
    pub fn migration_target(&self) -> Target {
        match self.primary() {
            Pool::Sqlite(p) => Target::Sqlite((*p.connect_options()).clone()),
            Pool::Postgres(p) => Target::Postgres((*p.connect_options()).clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_file_is_a_migration_with_a_down() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let set = migrations(backend);
            assert!(set.problems.is_empty(), "{:?}", set.problems);
            assert!(!set.migrations.is_empty());
            assert!(set.migrations.iter().all(|m| m.down.is_some()));
        }
        let ids = |b| -> Vec<String> { migrations(b).migrations.iter().map(|m| m.id()).collect() };
        assert_eq!(
            ids(Backend::Sqlite),
            ids(Backend::Postgres),
            "both dialects have the same migrations"
        );
    }
}
