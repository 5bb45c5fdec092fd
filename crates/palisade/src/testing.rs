//! For tests: a configuration on a throw-away SQLite database, and the application
//! built from it.

use std::path::Path;

use crate::app::{self, App};
use crate::config::{self, Config};

/// The registry's defaults, with the database and the development keys in `dir`, one
/// hashing thread, and `overrides` on top.
pub fn config(dir: &Path, overrides: &[(&str, &str)]) -> Config {
    let db = format!("sqlite://{}/palisade.db", dir.display());
    let data = dir.display().to_string();
    let mut all = vec![
        ("DATABASE_URL", db.as_str()),
        ("PALISADE_DATA_DIR", data.as_str()),
        ("PALISADE_HASH_THREADS", "1"),
    ];
    all.extend_from_slice(overrides);
    config::with(&all).unwrap_or_else(|e| panic!("test configuration: {e}"))
}

/// The application of [`config`], serving every route, and the directory holding its
/// database (removed when dropped).
pub async fn app(overrides: &[(&str, &str)]) -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app::build(&config(dir.path(), overrides))
        .await
        .expect("application");
    (app, dir)
}
