//! `migrate new NAME`: the next pair of files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use palisade_migrate::source::FileName;

use super::print_json;

/// Writes `NNNN_name.up.sql` and `.down.sql` in each dialect directory of `dir` (or in
/// `dir` itself), NNNN one above the highest version there.
pub(super) fn new_migration(
    dir: Option<&Path>,
    name: &str,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        bail!("`{name}`: a migration name is made of a-z, 0-9 and _");
    }
    let dir = dir.unwrap_or(Path::new("migrations"));
    let mut dirs: Vec<PathBuf> = ["sqlite", "postgres"]
        .iter()
        .map(|d| dir.join(d))
        .filter(|d| d.is_dir())
        .collect();
    if dirs.is_empty() {
        dirs.push(dir.to_path_buf());
    }
    let mut highest = 0;
    for d in &dirs {
        if !d.exists() {
            continue;
        }
        for entry in std::fs::read_dir(d).with_context(|| format!("cannot read {}", d.display()))? {
            let file = entry?.file_name();
            if let Some(f) = FileName::parse(&file.to_string_lossy()) {
                highest = highest.max(f.version);
            }
        }
    }
    let version = highest + 1;
    let mut created = Vec::new();
    for d in &dirs {
        for (suffix, body) in [
            ("up", "-- What this migration changes.\n"),
            (
                "down",
                "-- Undo the up file exactly: `palisade migrate verify` checks it.\n",
            ),
        ] {
            let path = d.join(format!("{version:04}_{name}.{suffix}.sql"));
            if !dry_run {
                std::fs::create_dir_all(d)
                    .with_context(|| format!("cannot create {}", d.display()))?;
                std::fs::write(&path, body)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            created.push(path.display().to_string());
        }
    }
    if json {
        print_json(&serde_json::json!({ "dry_run": dry_run, "files": created }));
    } else {
        let verb = if dry_run { "would create" } else { "created" };
        for f in &created {
            println!("{verb} {f}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
