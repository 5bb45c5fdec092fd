//! Migration files: `NNNN_name.up.sql` and `NNNN_name.down.sql`, from a directory or
//! embedded in a binary.
//!
//! A file may open with directive comments; the only one is
//! `-- palisade:no-transaction`, for statements PostgreSQL refuses inside a
//! transaction (`CREATE INDEX CONCURRENTLY`): that file then runs statement by
//! statement, alone, and the engine says so.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::Dialect;
use crate::split::{Statement, split};

/// The directive that runs a file outside a transaction.
pub const NO_TRANSACTION: &str = "no-transaction";

/// One migration: a version, a name, its up SQL and (normally) its down SQL.
#[derive(Clone, Debug)]
pub struct Migration {
    pub version: u64,
    /// The part of the file name after the version: `create_users`.
    pub name: String,
    pub up: Script,
    pub down: Option<Script>,
    /// SHA-256 of the up file, hex: what the tracking table records.
    pub checksum: String,
}

/// The SQL of one file.
#[derive(Clone, Debug)]
pub struct Script {
    pub file: String,
    pub sql: String,
    /// `-- palisade:no-transaction` is in the file's header.
    pub no_transaction: bool,
}

impl Migration {
    /// `0003_create_users`, as file names and messages spell it.
    pub fn id(&self) -> String {
        format!("{:04}_{}", self.version, self.name)
    }

    /// Whether `name` (`0003`, `3`, `0003_create_users` or `create_users`) is this one.
    pub fn answers_to(&self, name: &str) -> bool {
        name == self.id()
            || name == self.name
            || name.parse::<u64>().is_ok_and(|v| v == self.version)
    }
}

impl Script {
    pub fn statements(&self, dialect: Dialect) -> Vec<Statement> {
        split(&self.sql, dialect)
    }
}

/// A file that cannot take part, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FileProblem {
    pub file: String,
    pub kind: ProblemKind,
    pub problem: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The name is off the pattern.
    Name,
    /// Another up file has the same version.
    DuplicateVersion,
    /// A down file without its up file.
    OrphanDown,
    /// A `-- palisade:` directive nobody knows.
    UnknownDirective,
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.problem)
    }
}

/// The migrations of one dialect, ordered by version, and the problems of the files
/// that could not be read as migrations.
#[derive(Clone, Debug)]
pub struct MigrationSet {
    pub dialect: Dialect,
    /// Where they come from: a directory, or `embedded`.
    pub origin: String,
    pub migrations: Vec<Migration>,
    pub problems: Vec<FileProblem>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read migrations from {path}: {error}")]
pub struct ReadError {
    pub path: String,
    pub error: std::io::Error,
}

impl MigrationSet {
    /// The `.sql` files of `dir`, or of `dir/sqlite` / `dir/postgres` when that exists.
    pub fn from_dir(dir: &Path, dialect: Dialect) -> Result<MigrationSet, ReadError> {
        let dir = Self::dialect_dir(dir, dialect);
        let read_error = |error| ReadError {
            path: dir.display().to_string(),
            error,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(read_error)? {
            let entry = entry.map_err(read_error)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".sql") || !entry.path().is_file() {
                continue;
            }
            let sql = std::fs::read_to_string(entry.path()).map_err(|error| ReadError {
                path: entry.path().display().to_string(),
                error,
            })?;
            files.push((name, sql));
        }
        Ok(Self::from_files(dialect, dir.display().to_string(), files))
    }

    /// The directory the files of `dialect` live in, under `dir`.
    pub fn dialect_dir(dir: &Path, dialect: Dialect) -> PathBuf {
        let sub = dir.join(dialect.as_str());
        if sub.is_dir() { sub } else { dir.to_path_buf() }
    }

    /// Builds the set from `(file name, contents)` pairs.
    pub fn from_files(
        dialect: Dialect,
        origin: impl Into<String>,
        files: impl IntoIterator<Item = (String, String)>,
    ) -> MigrationSet {
        let mut problems = Vec::new();
        let mut ups = Vec::new();
        let mut downs = Vec::new();
        for (file, sql) in files {
            if !file.ends_with(".sql") {
                continue;
            }
            let Some(name) = FileName::parse(&file) else {
                problems.push(FileProblem {
                    kind: ProblemKind::Name,
                    problem: "the name is off the pattern NNNN_name.up.sql / NNNN_name.down.sql \
                              (NNNN: at least 4 digits; name: a-z, 0-9, _)"
                        .into(),
                    file,
                });
                continue;
            };
            let no_transaction = match directives(&sql) {
                Ok(d) => d.iter().any(|d| d == NO_TRANSACTION),
                Err(unknown) => {
                    problems.push(FileProblem {
                        kind: ProblemKind::UnknownDirective,
                        problem: format!(
                            "unknown directive `-- palisade:{unknown}` (known: {NO_TRANSACTION}, ignore, ignore-file)"
                        ),
                        file,
                    });
                    continue;
                }
            };
            let script = Script {
                file,
                sql,
                no_transaction,
            };
            if name.up {
                ups.push((name, script));
            } else {
                downs.push((name, script));
            }
        }
        ups.sort_by(|a, b| (a.0.version, &a.0.name).cmp(&(b.0.version, &b.0.name)));
        let mut migrations: Vec<Migration> = Vec::new();
        for (name, up) in ups {
            if let Some(prev) = migrations.last().filter(|m| m.version == name.version) {
                problems.push(FileProblem {
                    kind: ProblemKind::DuplicateVersion,
                    problem: format!("version {} is also used by {}", name.version, prev.up.file),
                    file: up.file,
                });
                continue;
            }
            let down = downs
                .iter()
                .position(|(d, _)| d.version == name.version && d.name == name.name)
                .map(|i| downs.swap_remove(i).1);
            migrations.push(Migration {
                version: name.version,
                checksum: checksum(&up.sql),
                name: name.name,
                up,
                down,
            });
        }
        for (_, orphan) in downs {
            problems.push(FileProblem {
                kind: ProblemKind::OrphanDown,
                problem: "a down file without its up file".into(),
                file: orphan.file,
            });
        }
        problems.sort_by(|a, b| a.file.cmp(&b.file));
        MigrationSet {
            dialect,
            origin: origin.into(),
            migrations,
            problems,
        }
    }

    pub fn find(&self, name: &str) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.answers_to(name))
    }

    pub fn get(&self, version: u64) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.version == version)
    }
}

/// A file name read as `NNNN_name.(up|down).sql`.
#[derive(Debug, PartialEq, Eq)]
pub struct FileName {
    pub version: u64,
    pub name: String,
    pub up: bool,
}

impl FileName {
    pub fn parse(file: &str) -> Option<FileName> {
        let (stem, up) = if let Some(s) = file.strip_suffix(".up.sql") {
            (s, true)
        } else {
            (file.strip_suffix(".down.sql")?, false)
        };
        let (digits, name) = stem.split_once('_')?;
        let valid = digits.len() >= 4
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return None;
        }
        Some(FileName {
            version: digits.parse().ok()?,
            name: name.to_owned(),
            up,
        })
    }
}

/// The `-- palisade:…` directives in the file's leading comment lines; the first
/// unknown one is the error.
fn directives(sql: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for line in sql.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        let Some(comment) = line.strip_prefix("--") else {
            break;
        };
        if let Some(d) = comment.trim().strip_prefix("palisade:") {
            let d = d.trim();
            // The linter's ignore comments are its own to check.
            let word = d.split_whitespace().next().unwrap_or_default();
            if word == "ignore" || word == "ignore-file" {
                continue;
            }
            if d != NO_TRANSACTION {
                return Err(d.to_owned());
            }
            out.push(d.to_owned());
        }
    }
    Ok(out)
}

/// SHA-256 of `sql`, lower-case hex.
pub fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[(&str, &str)]) -> MigrationSet {
        MigrationSet::from_files(
            Dialect::Postgres,
            "test",
            files
                .iter()
                .map(|(f, s)| ((*f).to_owned(), (*s).to_owned())),
        )
    }

    #[test]
    fn pairs_up_and_down_files_in_version_order() {
        let s = set(&[
            ("0002_b.up.sql", "SELECT 2;"),
            ("0001_a.down.sql", "SELECT -1;"),
            ("0001_a.up.sql", "SELECT 1;"),
            ("README.md", ""),
        ]);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        let ids: Vec<_> = s.migrations.iter().map(Migration::id).collect();
        assert_eq!(ids, ["0001_a", "0002_b"]);
        assert!(s.migrations[0].down.is_some());
        assert!(s.migrations[1].down.is_none());
        assert_eq!(s.migrations[0].checksum, checksum("SELECT 1;"));
        assert!(s.find("2").is_some() && s.find("0002_b").is_some() && s.find("b").is_some());
    }

    #[test]
    fn names_off_the_pattern_duplicates_and_orphans_are_problems() {
        let s = set(&[
            ("1_short.up.sql", ""),
            ("0001_Upper.up.sql", ""),
            ("0001_ok.sql", ""),
            ("0002_a.up.sql", ""),
            ("0002_b.up.sql", ""),
            ("0003_gone.down.sql", ""),
        ]);
        let files: Vec<_> = s.problems.iter().map(|p| p.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "0001_Upper.up.sql",
                "0001_ok.sql",
                "0002_b.up.sql",
                "0003_gone.down.sql",
                "1_short.up.sql"
            ]
        );
        assert_eq!(s.migrations.len(), 1);
    }

    #[test]
    fn the_no_transaction_directive_is_read_and_typos_refused() {
        let s = set(&[
            (
                "0001_idx.up.sql",
                "-- Build it without locking writes.\n-- palisade:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);",
            ),
            ("0002_typo.up.sql", "-- palisade:no-transactoin\nSELECT 1;"),
            (
                "0003_late.up.sql",
                "SELECT 1;\n-- palisade:no-transaction\n",
            ),
        ]);
        assert!(s.get(1).is_some_and(|m| m.up.no_transaction));
        assert!(s.get(2).is_none());
        assert!(s.problems[0].problem.contains("no-transactoin"));
        assert!(
            s.get(3).is_some_and(|m| !m.up.no_transaction),
            "a directive after the first statement is only a comment"
        );
    }
}
