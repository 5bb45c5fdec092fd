#!/usr/bin/env bash
# The linter's corpus of real-world PostgreSQL migrations, from the packages that four
# open-source job-queue projects publish to their registries (pinned versions):
#   procrastinate 3.10.0 (PyPI), graphile-worker 0.16.6 (npm),
#   apalis-sql 0.7.4 and sqlxmq 0.6.0 (crates.io).
# Each project's migrations are laid out as palisade migration files (NNNN_name.up.sql,
# and .down.sql where the project has one), in version order, under DIR/<project>/.
# Nothing of theirs is kept in this repository: the corpus test and bench/lint.sh call
# this script, and it fetches once into DIR (default /var/tmp/palisade-tools/lint-corpus).
set -euo pipefail
dir="${1:-/var/tmp/palisade-tools/lint-corpus}"
if [ -f "$dir/.complete" ]; then
  echo "$dir"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rm -rf "$dir"
mkdir -p "$dir"

# Copies SOURCE files (one per migration, in the order given) to DEST as NNNN_name files.
# Usage: lay DEST SUFFIX FILE...   (SUFFIX: .up.sql or .down.sql)
lay() {
  local dest="$1" suffix="$2" n=0
  shift 2
  mkdir -p "$dest"
  for f in "$@"; do
    n=$((n + 1))
    local base name
    base="$(basename "$f")"
    name="$(printf '%s' "${base%.sql}" | sed -e 's/\.up$//' -e 's/\.down$//' \
      | tr 'A-Z' 'a-z' | sed -e 's/[^a-z0-9]\{1,\}/_/g' -e 's/^_//' -e 's/_$//')"
    cp "$f" "$dest/$(printf '%04d' "$n")_${name}${suffix}"
  done
}

# procrastinate (PyPI wheel): procrastinate/sql/migrations/*.sql, named by version.
python3 -m pip download --quiet --disable-pip-version-check --no-deps \
  procrastinate==3.10.0 -d "$work/pypi" >&2
unzip -q "$work/pypi"/procrastinate-3.10.0-py3-none-any.whl 'procrastinate/sql/migrations/*' -d "$work/pypi"
mapfile -t files < <(ls "$work"/pypi/procrastinate/sql/migrations/*.sql | sort)
lay "$dir/procrastinate" .up.sql "${files[@]}"

# graphile-worker (npm tarball): sql/NNNNNN.sql. Its runner replaces the placeholder
# :GRAPHILE_WORKER_SCHEMA with the schema's name before running a file; so does this.
(cd "$work" && npm pack --silent graphile-worker@0.16.6 >/dev/null)
tar xzf "$work"/graphile-worker-0.16.6.tgz -C "$work"
sed -i 's/:GRAPHILE_WORKER_SCHEMA/graphile_worker/g' "$work"/package/sql/*.sql
mapfile -t files < <(ls "$work"/package/sql/*.sql | sort)
lay "$dir/graphile-worker" .up.sql "${files[@]}"

# apalis-sql and sqlxmq (crates.io): fetched by cargo, read from its registry cache.
mkdir -p "$work/crates/src"
cat > "$work/crates/Cargo.toml" <<'TOML'
[package]
name = "lint-corpus"
version = "0.0.0"
edition = "2021"
[dependencies]
apalis-sql = { version = "=0.7.4", default-features = false }
sqlxmq = { version = "=0.6.0", default-features = false }
TOML
touch "$work/crates/src/lib.rs"
cargo fetch --quiet --manifest-path "$work/crates/Cargo.toml" >&2
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
apalis="$(ls -d "$registry"/*/apalis-sql-0.7.4 | head -1)"
sqlxmq="$(ls -d "$registry"/*/sqlxmq-0.6.0 | head -1)"
mapfile -t files < <(ls "$apalis"/migrations/postgres/*.sql | sort)
lay "$dir/apalis" .up.sql "${files[@]}"
mapfile -t files < <(ls "$sqlxmq"/migrations/*.up.sql | sort)
lay "$dir/sqlxmq" .up.sql "${files[@]}"
mapfile -t files < <(ls "$sqlxmq"/migrations/*.down.sql | sort)
lay "$dir/sqlxmq" .down.sql "${files[@]}"

touch "$dir/.complete"
echo "$dir"
