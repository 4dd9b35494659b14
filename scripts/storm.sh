#!/usr/bin/env bash
# Random-key storm (issue 7): one quickstart instance (in-memory store; DATABASE_URL
# picks another, e.g. a PostgreSQL behind the cache) gets REQUESTS (default 1,000,000)
# requests, each with a fresh random `pk_live_` key (scripts/storm.lua: one wrk thread
# over STORM_CONNECTIONS connections, default 8, each pausing STORM_DELAY_MS, default
# 1 ms, between requests: about 6,000 requests/s; it stops after REQUESTS answers),
# while a second wrk measures a valid key's latency (VALID_CONNECTIONS, default 2, each
# pausing VALID_PACE_MS, default 1 ms: about 1,700 requests/s, a probe that does not
# load the machine itself). The same probe runs alone for BASELINE seconds (default 20)
# before the storm. The instance's RSS is sampled every 0.5 s.
#
# Passes when RSS grows by less than 50 MB (the peak during the storm, and the level
# after it, over the level just before it), the valid key's p99 latency during the
# storm is less than twice the p99 before it, and the valid key never got anything but
# 200.
#
# Why paced: the machine has 2 cores for the server and both wrk processes. Unpaced
# (STORM_CONNECTIONS=4 STORM_DELAY_MS=0, about 50,000 requests/s) the storm saturates
# both cores and the probe's sub-millisecond p99 grows 2.4-3.4x, and exactly as much
# when the same storm goes to a route without the layer (STORM_PATH=/health, the
# control): that is the machine's load, not the keys. The storm's generator also runs
# under `nice -n 19` (STORM_NICE, empty for none), since it is not what is measured.
# All random keys come from 127.0.0.1 and so run into the failed-attempts budget
# (300/min per address): after the first few hundred they are answered 429 instead of
# 401, which is the budget working; they are still looked up and hashed first. The
# valid key, from the same address, is not limited by that budget. Loopback only;
# stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

requests="${REQUESTS:-1000000}"
storm_connections="${STORM_CONNECTIONS:-8}"
storm_path="${STORM_PATH:-/api/account}"
valid_connections="${VALID_CONNECTIONS:-2}"
valid_pace="${VALID_PACE_MS:-1}"
storm_delay="${STORM_DELAY_MS:-1}"
baseline="${BASELINE:-20}"
work=/tmp/tower-api-key-storm
# The storm's generator yields the CPU to everything else (it is not what is measured).
storm_nice="${STORM_NICE-nice -n 19}"

command -v wrk >/dev/null || { echo "storm: wrk is missing (apt-get install wrk)"; exit 2; }
cargo build --release --quiet --example quickstart
rm -rf "$work"
mkdir -p "$work"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

ADDR=127.0.0.1:0 RUST_LOG="${RUST_LOG:-info}" target/release/examples/quickstart \
  >"$work/server.out" 2>"$work/server.err" &
server=$!
pids+=("$server")
for _ in $(seq 600); do grep -q '^listening on ' "$work/server.out" && break; sleep 0.05; done
base="$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$work/server.out")"
[ -n "$base" ] || { cat "$work/server.out" "$work/server.err"; echo "storm: the server did not start"; exit 2; }
key="$(sed -n 's/^full access: \(pk_live_[0-9a-f]*\)$/\1/p' "$work/server.out")"
if [ -z "$key" ]; then # a durable store printed its demo keys at an earlier start: mint one
  cookie="$(curl -s -o /dev/null -D - -H 'content-type: application/json' \
    -d '{"username":"demo","password":"demo"}' "$base/login" | sed -n 's/^set-cookie: \([^;]*\);.*/\1/Ip')"
  key="$(curl -s -H "cookie: $cookie" -H 'content-type: application/json' -d '{"name":"storm"}' \
    "$base/api/user/keys" | sed -n 's/.*"api_key":"\(pk_live_[0-9a-f]*\)".*/\1/p')"
fi
[ -n "$key" ] || { echo "storm: no valid key"; exit 2; }
url="$base/api/account"
echo "storm: server $base (pid $server), store ${DATABASE_URL:-in memory}"

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$server/status"; }
(while kill -0 "$server" 2>/dev/null; do
   printf '%s %s\n' "$(date +%s.%N)" "$(rss 2>/dev/null || echo 0)"
   sleep 0.5
 done) >"$work/rss.log" &
pids+=("$!")

# p99 of a wrk --latency report, in microseconds.
p99_us() {
  awk '$1 == "99%" {
         v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v);
         f = (unit == "us") ? 1 : (unit == "ms") ? 1000 : (unit == "s") ? 1000000 : 0;
         printf "%.0f\n", v * f }' "$1"
}
non2xx() { awk '/Non-2xx or 3xx responses:/ {print $NF; found=1} END {if (!found) print 0}' "$1"; }
valid_wrk() { # duration output
  PACE_MS="$valid_pace" wrk -t1 -c"$valid_connections" -d"$1" --latency -s scripts/paced.lua \
    -H "Authorization: Bearer $key" "$url" >"$2"
}

echo "storm: warm-up 5 s, then the valid key alone for ${baseline} s ($valid_connections connections)"
valid_wrk 5s "$work/warmup.txt"
valid_wrk "${baseline}s" "$work/before.txt"
p99_before="$(p99_us "$work/before.txt")"
sleep 1
rss_before="$(rss)"

echo "storm: $requests random keys to $storm_path over $storm_connections connections, valid key measured meanwhile"
started="$(date +%s.%N)"
STORM_DELAY_MS="$storm_delay" STORM_DONE_FILE="$work/storm.done" $storm_nice wrk -t1 -c"$storm_connections" -d1800s -s scripts/storm.lua "$base$storm_path" \
  -- "$requests" >"$work/storm.txt" 2>&1 &
storm=$!
pids+=("$storm")
PACE_MS="$valid_pace" wrk -t1 -c"$valid_connections" -d900s --latency -s scripts/paced.lua \
  -H "Authorization: Bearer $key" "$url" >"$work/during.txt" &
valid=$!
pids+=("$valid")
for _ in $(seq 18000); do
  [ -e "$work/storm.done" ] && break
  kill -0 "$storm" 2>/dev/null || break
  sleep 0.1
done
finished="$(date +%s.%N)"
kill -INT "$valid" "$storm" 2>/dev/null || true
wait "$valid" "$storm" || true
[ -e "$work/storm.done" ] || { cat "$work/storm.txt"; echo "storm: the storm did not finish"; exit 2; }
sleep 1
rss_after="$(rss)"
rss_peak="$(awk -v from="$started" -v to="$finished" '$1 >= from && $1 <= to + 1 && $2 > m {m = $2} END {print m + 0}' "$work/rss.log")"
p99_during="$(p99_us "$work/during.txt")"

grep '^storm:' "$work/storm.txt" || true
python3 - "$requests" "$started" "$finished" "$rss_before" "$rss_peak" "$rss_after" \
  "$p99_before" "$p99_during" "$(non2xx "$work/before.txt")" "$(non2xx "$work/during.txt")" \
  "$(awk '/Requests\/sec/ {print $2}' "$work/before.txt")" "$(awk '/Requests\/sec/ {print $2}' "$work/during.txt")" \
  "$storm_connections" "$valid_connections" <<'PY'
import sys
(requests, started, finished, before, peak, after, p99_before, p99_during, bad_before,
 bad_during, rps_before, rps_during, storm_c, valid_c) = sys.argv[1:]
secs = float(finished) - float(started)
before, peak, after = int(before), max(int(peak), int(before)), int(after)
growth_peak, growth_after = (peak - before) / 1024, (after - before) / 1024
ratio = int(p99_during) / max(int(p99_before), 1)
print(f"storm: {int(requests):,} random-key requests in {secs:.1f} s ({int(requests)/secs:,.0f}/s) "
      f"over {storm_c} connections; valid key over {valid_c} connections")
print(f"RSS: before {before/1024:.1f} MB, peak {peak/1024:.1f} MB (+{growth_peak:.1f}), "
      f"after {after/1024:.1f} MB (+{growth_after:.1f})   limit +50 MB")
print(f"valid key p99: before {int(p99_before)/1000:.2f} ms ({rps_before} req/s), during "
      f"{int(p99_during)/1000:.2f} ms ({rps_during} req/s): {ratio:.2f}x   limit 2x")
print(f"valid key non-2xx answers: before {bad_before}, during {bad_during}")
ok = growth_peak < 50 and growth_after < 50 and ratio < 2 and bad_before == "0" and bad_during == "0"
print("RESULT [storm]:", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
