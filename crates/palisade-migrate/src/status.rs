//! Where a database stands against a set of migration files: what is applied, what is
//! pending, and what is wrong (an applied file that changed, an applied version whose
//! file is gone, a pending version older than an applied one).

use std::collections::BTreeMap;

use crate::history::Applied;
use crate::source::{FileProblem, MigrationSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Applied,
    Pending,
    /// Pending, but older than an applied version: `up` will not run it on its own.
    OutOfOrder,
    /// Applied, and the file changed since.
    Drifted,
    /// Applied, and the file is gone.
    MissingFile,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Applied => "applied",
            State::Pending => "pending",
            State::OutOfOrder => "out of order",
            State::Drifted => "drift",
            State::MissingFile => "file missing",
        }
    }

    pub fn is_problem(self) -> bool {
        matches!(
            self,
            State::OutOfOrder | State::Drifted | State::MissingFile
        )
    }
}

/// One version, from the files, the tracking table or both.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Entry {
    pub version: u64,
    pub name: String,
    pub state: State,
    /// SHA-256 of the file, when there is one.
    pub checksum: Option<String>,
    /// What the tracking table says, when the version is applied.
    pub applied: Option<Applied>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Status {
    pub entries: Vec<Entry>,
    /// Files that are not migrations (a name off the pattern, …).
    pub file_problems: Vec<FileProblem>,
}

impl Status {
    pub fn new(set: &MigrationSet, applied: &[Applied]) -> Status {
        let mut by_version: BTreeMap<u64, Entry> = BTreeMap::new();
        let last_applied = applied
            .iter()
            .filter_map(|a| u64::try_from(a.version).ok())
            .max();
        for m in &set.migrations {
            let state = match last_applied {
                Some(last) if m.version < last => State::OutOfOrder,
                _ => State::Pending,
            };
            by_version.insert(
                m.version,
                Entry {
                    version: m.version,
                    name: m.name.clone(),
                    state,
                    checksum: Some(m.checksum.clone()),
                    applied: None,
                },
            );
        }
        for a in applied {
            let version = u64::try_from(a.version).unwrap_or_default();
            let entry = by_version.entry(version).or_insert_with(|| Entry {
                version,
                name: a.name.clone(),
                state: State::MissingFile,
                checksum: None,
                applied: None,
            });
            if let Some(file_sum) = &entry.checksum {
                entry.state = if *file_sum == a.checksum {
                    State::Applied
                } else {
                    State::Drifted
                };
            }
            entry.applied = Some(a.clone());
        }
        Status {
            entries: by_version.into_values().collect(),
            file_problems: set.problems.clone(),
        }
    }

    pub fn with_state(&self, state: State) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(move |e| e.state == state)
    }

    /// One line per problem, for messages; empty when all is well. Pending migrations
    /// older than an applied one count only with `out_of_order`.
    pub fn problems(&self, out_of_order: bool) -> Vec<String> {
        let mut out: Vec<String> = self.file_problems.iter().map(ToString::to_string).collect();
        let counted = |s: State| s.is_problem() && (out_of_order || s != State::OutOfOrder);
        for e in self.entries.iter().filter(|e| counted(e.state)) {
            let id = format!("{:04}_{}", e.version, e.name);
            out.push(match e.state {
                State::Drifted => format!(
                    "{id}: the file changed after it was applied (checksum {} applied, {} now)",
                    short(e.applied.as_ref().map(|a| a.checksum.as_str())),
                    short(e.checksum.as_deref())
                ),
                State::MissingFile => {
                    format!("{id}: applied, but its file is gone")
                }
                _ => format!(
                    "{id}: pending, but older than the last applied version; apply it on purpose with `migrate run {id}`, or renumber it"
                ),
            });
        }
        out
    }
}

fn short(sum: Option<&str>) -> &str {
    sum.map_or("-", |s| &s[..s.len().min(12)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dialect;

    fn set(files: &[(&str, &str)]) -> MigrationSet {
        MigrationSet::from_files(
            Dialect::Sqlite,
            "test",
            files
                .iter()
                .map(|(f, s)| ((*f).to_owned(), (*s).to_owned())),
        )
    }

    fn applied(version: i64, name: &str, sql: &str) -> Applied {
        Applied {
            version,
            name: name.into(),
            checksum: crate::source::checksum(sql),
            applied_at: "2026-01-01T00:00:00Z".into(),
            duration_ms: 1,
            applied_by: "host".into(),
        }
    }

    #[test]
    fn every_state_is_told_apart() {
        let s = set(&[
            ("0001_a.up.sql", "A"),
            ("0002_b.up.sql", "B changed"),
            ("0003_c.up.sql", "C"),
            ("0005_e.up.sql", "E"),
        ]);
        let status = Status::new(
            &s,
            &[
                applied(1, "a", "A"),
                applied(2, "b", "B"),
                applied(4, "d", "D"),
            ],
        );
        let states: Vec<_> = status
            .entries
            .iter()
            .map(|e| (e.version, e.state))
            .collect();
        assert_eq!(
            states,
            [
                (1, State::Applied),
                (2, State::Drifted),
                (3, State::OutOfOrder),
                (4, State::MissingFile),
                (5, State::Pending)
            ]
        );
        assert_eq!(status.problems(true).len(), 3);
        assert_eq!(status.problems(false).len(), 2);
    }
}
