//! Embeds the application's migrations (`migrations/{sqlite,postgres}`) in the crate:
//! writes `$OUT_DIR/migrations.rs` with one `(file name, contents)` pair per file.

use std::fmt::Write;
use std::path::Path;

// A build script that cannot read its inputs has nothing better to do than stop with
// the reason: hence the `expect`s.
fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut out = String::new();
    for (constant, dir) in [("SQLITE", "sqlite"), ("POSTGRES", "postgres")] {
        let dir = root.join(dir);
        // A new or removed file changes the directory; include_str! tracks contents.
        println!("cargo::rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        writeln!(out, "pub static {constant}: &[(&str, &str)] = &[").expect("write to a String");
        for path in files {
            let name = path.file_name().expect("a file name").to_string_lossy();
            let abs = path
                .canonicalize()
                .unwrap_or_else(|e| panic!("cannot resolve {}: {e}", path.display()));
            writeln!(
                out,
                "    ({name:?}, include_str!({:?})),",
                abs.display().to_string()
            )
            .expect("write to a String");
        }
        writeln!(out, "];").expect("write to a String");
    }
    let dest =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("migrations.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
}
