#!/usr/bin/env bash
# Four instances, one truth for limits (issue 16): for each backend in BACKENDS
# (default "postgres redis"), a private store of that kind on loopback, four quickstart
# instances sharing it with RATE_LIMIT (default 2000/2s) as every key's limit, and the
# driver (benches/bin/scale.rs) measuring from outside:
#
#   - one key's admitted requests per window, all four together, while a client per
#     instance asks as fast as it is answered, far over the limit (target: at most
#     R + 4 — one request in flight per instance — and at least 0.9 R in every window
#     from the third: the first holds the burst, the second the turn to the rate),
#     over WINDOWS windows (default 6);
#   - the share of those admitted requests that made a store round trip (a lease;
#     counted by the store itself: PostgreSQL's statistics, Redis' command counts;
#     target at most 5 %);
#   - REVOCATIONS keys (default 50) minted through the first instance, cached by all,
#     revoked through the first: when the last of the others refuses it (p50, p99;
#     target p99 at most 20 ms);
#   - STORM random keys (default 100,000) over the four: the store lookups they cost;
#   - each instance's peak RSS.
#
# Why 2000/2s: at its limit a key is admitted in slices of a fiftieth of its burst,
# each a store round trip, so the share of requests that make one is about 50 / R —
# under 5 % from R = 1,000 up (with 400/2s it is about 11 %; the windows stay exact).
#
# Exits 1 when a target is missed. SHORT=1 is the CI round (4 windows, 10
# revocations, 2,000 random keys; the aligned windows' figure is reported there, not
# enforced, while "over any window" is); PROFILE=debug uses the debug build (CI has it
# already). Loopback only; every step is bounded; everything started here is stopped
# on exit. Needs root (the PostgreSQL server runs as the `postgres` user) or a user
# that may run initdb.
#
#   bash scripts/scale.sh                        # both backends, the full round
#   SHORT=1 BACKENDS=redis bash scripts/scale.sh # a quick one
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

backends="${BACKENDS:-postgres redis}"
profile="${PROFILE:-release}"
work="${WORK:-/tmp/tower-api-key-scale}"
pg_port="${SCALE_PG_PORT:-55442}"
redis_port="${SCALE_REDIS_PORT:-56389}"
export SCALE_RATE="${RATE_LIMIT:-2000/2s}"
if [ "${SHORT:-0}" = 1 ]; then
  export SCALE_WINDOWS="${WINDOWS:-4}" SCALE_REVOCATIONS="${REVOCATIONS:-10}" SCALE_STORM="${STORM:-2000}"
  # Aligned windows are reported, not enforced: the limit itself ("over any window")
  # is, and windows can also see what the bucket held at their start.
  export SCALE_STRICT_WINDOWS=0
else
  export SCALE_WINDOWS="${WINDOWS:-6}" SCALE_REVOCATIONS="${REVOCATIONS:-50}" SCALE_STORM="${STORM:-100000}"
fi

log() { printf 'scale: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }
case "$work" in /tmp/*) ;; *) die "WORK must be under /tmp (it is emptied)";; esac

source scripts/lib/private-store.sh

log "building the quickstart and the driver ($profile)"
flag=""; [ "$profile" = release ] && flag="--release"
timeout 1800 cargo build $flag --quiet --example quickstart --example scale
bin="$root/target/$profile/examples"

rm -rf "$work"
mkdir -p "$work"
chmod 755 "$work"

pids=()
store_up=""
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$store_up" ]; then bash "$work/store.sh" resume >/dev/null 2>&1 || true; bash "$work/store.sh" stop >/dev/null 2>&1 || true; fi
  pids=()
  store_up=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failed=()
for backend in $backends; do
  log "=== $backend: four instances, RATE_LIMIT=$SCALE_RATE ==="
  rm -rf "${work:?}/pg" "$work/pg-run" "$work/redis" "$work"/*.out "$work"/*.err "$work/store.sh"
  url="$(write_store "$backend")"
  store_up=1
  bash "$work/store.sh" start || die "the $backend store did not start"
  bases=() instance_pids=()
  for name in A B C D; do
    ADDR=127.0.0.1:0 DATABASE_URL="$url" RATE_LIMIT="$SCALE_RATE" RUST_LOG=warn \
      "$bin/quickstart" >"$work/$name.out" 2>"$work/$name.err" &
    pid=$!
    pids+=("$pid"); instance_pids+=("$pid")
    for _ in $(seq 600); do grep -q '^listening on ' "$work/$name.out" && break; sleep 0.05; done
    grep -q '^listening on ' "$work/$name.out" || { cat "$work/$name.out" "$work/$name.err"; die "instance $name did not start"; }
    bases+=("$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$work/$name.out")")
  done
  key="$(sed -n 's/^full access: \(pk_live_[0-9a-f]*\)$/\1/p' "$work/A.out")"
  [ -n "$key" ] || die "instance A printed no demo key"
  status=0
  SCALE_LABEL="$backend" SCALE_BASES="$(IFS=,; echo "${bases[*]}")" \
    SCALE_PIDS="$(IFS=,; echo "${instance_pids[*]}")" SCALE_KEY="$key" SCALE_STORE="$url" \
    timeout --signal=INT --kill-after=30 1200 "$bin/scale" | tee "$work/report-$backend.txt" || status=$?
  [ "$status" = 0 ] || failed+=("$backend (exit $status)")
  if grep -h 'panicked' "$work"/*.err; then failed+=("$backend (an instance panicked)"); fi
  if grep -qh "${key:24}" "$work"/*.err; then failed+=("$backend (a secret in the logs)"); fi
  cleanup
done

if [ "${#failed[@]}" -gt 0 ]; then
  log "FAILED: ${failed[*]}; reports and logs in $work"
  exit 1
fi
log "all rounds passed ($backends); reports and logs in $work"
