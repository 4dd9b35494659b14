#!/usr/bin/env bash
# Soak and fault test (issue 7): for each backend in BACKENDS (default "postgres redis"),
# a private store of that kind on loopback, two quickstart instances sharing it, and
# the driver in soak/ sending mixed traffic for DURATION seconds (default 300): valid,
# revoked, rotated, wrong-secret and random keys from CLIENTS tasks (default 8) at RATE
# requests/s (default 1000), plus mints, rotations and revokes through the management
# routes; the store is restarted once (at a third: stopped, held down DOWN_SECS, started)
# and paused once (at two thirds: SIGSTOP for PAUSE_SECS, SIGCONT). The driver records
# every answer and fails on any broken rule (see soak/src/check.rs), a panic or a
# secret in the instances' output, or an instance's peak RSS over RSS_LIMIT_MB (default
# 64: the quickstart idles at about 8 MB and peaked at 12-13 MB in 5-minute rounds; its
# caches are bounded by their TTLs at this rate, so 5x the observed peak leaves room
# for allocator noise and still catches a leak of 0.2 MB/s over the run).
#
# The stores are private (their own data directory and port, started and stopped
# here) so that stopping and freezing them disturbs nobody else's tests, and no one
# else's traffic blurs the health timeline. Loopback only; every step is bounded
# (`timeout`), and everything started here is stopped on exit. Needs root (the
# PostgreSQL server runs as the `postgres` user) or a user that may run initdb.
#
#   scripts/soak.sh                               # both backends, 5 minutes each
#   BACKENDS=redis DURATION=60 scripts/soak.sh    # a quick round
#
# Output, logs and the stores' files stay in $WORK (default /tmp/tower-api-key-soak,
# emptied at the start) for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

backends="${BACKENDS:-postgres redis}"
duration="${DURATION:-300}"
work="${WORK:-/tmp/tower-api-key-soak}"
pg_port="${SOAK_PG_PORT:-55432}"
redis_port="${SOAK_REDIS_PORT:-56379}"
export SOAK_CLIENTS="${CLIENTS:-${SOAK_CLIENTS:-8}}"
export SOAK_RATE="${RATE:-${SOAK_RATE:-1000}}"
export SOAK_DURATION="$duration"
export SOAK_DOWN_SECS="${DOWN_SECS:-${SOAK_DOWN_SECS:-5}}"
export SOAK_PAUSE_SECS="${PAUSE_SECS:-${SOAK_PAUSE_SECS:-6}}"
export SOAK_RSS_LIMIT_MB="${RSS_LIMIT_MB:-${SOAK_RSS_LIMIT_MB:-64}}"

log() { printf 'soak: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

case "$work" in /tmp/*) ;; *) die "WORK must be under /tmp (it is emptied)";; esac

# The private store of each round (and the servers' packages, when missing).
source scripts/lib/private-store.sh

log "building the quickstart and the driver (release)"
timeout 1800 cargo build --release --quiet --example quickstart
(cd soak && timeout 1800 cargo build --release --quiet)
# The checker's own tests (synthetic records that must and must not be flagged).
(cd soak && timeout 600 cargo test --release --quiet >/dev/null) || die "the driver's self-tests failed"
quickstart="$root/target/release/examples/quickstart"
driver="$root/soak/target/release/tower-api-key-soak"

rm -rf "$work"
mkdir -p "$work"
chmod 755 "$work"

instance_pids=()
store_stop=""
cleanup() {
  for pid in "${instance_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$store_stop" ]; then bash "$work/store.sh" resume >/dev/null 2>&1 || true; bash "$work/store.sh" stop >/dev/null 2>&1 || true; fi
  instance_pids=()
  store_stop=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_instance NAME URL: a quickstart on a free loopback port; sets BASE_<NAME>, PID_<NAME>.
start_instance() {
  local name="$1" url="$2" out="$work/$1.out" err="$work/$1.err"
  ADDR=127.0.0.1:0 DATABASE_URL="$url" RUST_LOG="${RUST_LOG:-info}" RUST_BACKTRACE=1 \
    "$quickstart" >"$out" 2>"$err" &
  local pid=$!
  instance_pids+=("$pid")
  for _ in $(seq 600); do grep -q '^listening on ' "$out" && break; sleep 0.05; done
  grep -q '^listening on ' "$out" || { cat "$out" "$err"; die "instance $name did not start"; }
  printf -v "BASE_$name" '%s' "$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$out")"
  printf -v "PID_$name" '%s' "$pid"
}

failed=()
for backend in $backends; do
  log "=== $backend: store, two instances, $duration s of traffic ==="
  rm -rf "${work:?}/pg" "$work/pg-run" "$work/redis" "$work"/{A,B}.{out,err} "$work/store.sh"
  url="$(write_store "$backend")"
  store_stop=1
  bash "$work/store.sh" start || die "the $backend store did not start"
  start_instance A "$url"
  start_instance B "$url"
  log "A: $BASE_A (pid $PID_A), B: $BASE_B (pid $PID_B), store $url"
  status=0
  SOAK_LABEL="$backend" SOAK_A="$BASE_A" SOAK_B="$BASE_B" SOAK_PIDS="$PID_A,$PID_B" \
    SOAK_SEEDS="$work/A.out" SOAK_LOGS="$work/A.out,$work/A.err,$work/B.out,$work/B.err" \
    SOAK_STOP_CMD="bash $work/store.sh stop" SOAK_START_CMD="bash $work/store.sh start" \
    SOAK_PAUSE_CMD="bash $work/store.sh pause" SOAK_RESUME_CMD="bash $work/store.sh resume" \
    timeout --signal=INT --kill-after=30 "$((duration + 300))" "$driver" \
    | tee "$work/report-$backend.txt" || status=$?
  [ "$status" = 0 ] || failed+=("$backend (exit $status)")
  cleanup
done

if [ "${#failed[@]}" -gt 0 ]; then
  log "FAILED: ${failed[*]}; reports and logs in $work"
  exit 1
fi
log "all rounds passed ($backends); reports and logs in $work"
