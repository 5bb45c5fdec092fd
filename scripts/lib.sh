# Shared by the check scripts (sourced): `serve BIN`, which starts `BIN serve` on a free
# loopback port in a work directory of its own (removed on exit, the server stopped),
# with the caller's environment, and sets `$addr` once it listens and `$work`.

work=$(mktemp -d)
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

serve() {
  local bin=$1
  [ -x "$bin" ] || { echo "no palisade binary at $bin (cargo build first)" >&2; exit 1; }
  (cd "$work" && PORT=0 exec "$bin" serve >"$work/palisade.log" 2>&1) &
  pid=$!
  for _ in $(seq 1 100); do
    addr=$(grep -ao '"addr":"[^"]*"' "$work/palisade.log" | head -1 | cut -d'"' -f4 || true)
    [ -n "$addr" ] && return
    sleep 0.1
  done
  echo "palisade did not start:" >&2; cat "$work/palisade.log" >&2; exit 1
}
