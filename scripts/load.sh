#!/usr/bin/env bash
# Loopback load test with wrk (Debian package `wrk`): GET /api/account on
#   no-auth   benches/bin/no_auth.rs, the same route without the layer (the baseline);
#   layer     the quickstart, in-memory store;
#   limited   the quickstart with a per-key limiter (RATE_LIMIT, never reached);
#   postgres  the quickstart on PostgreSQL behind the cache (needs TEST_POSTGRES_URL,
#             e.g. `eval "$(scripts/services.sh)"`; skipped without it).
# ROUNDS alternating rounds (default 5) of DURATION (default 10s) each, CONNECTIONS
# (default 32) over one wrk thread; prints each round, the medians, and each median's
# ratio to no-auth's. Goal: layer >= 0.95x no-auth. Stops by itself; loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-5}"
duration="${DURATION:-10s}"
connections="${CONNECTIONS:-32}"

command -v wrk >/dev/null || { echo "load: wrk is missing (apt-get install wrk)"; exit 1; }
cargo build --release --quiet --example quickstart --example no_auth
bin=target/release/examples
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# start NAME PORT COMMAND...: starts a server, waits for "listening", and records the
# demo full-access key it printed (if any) in KEY_<NAME>.
start() {
  local name="$1" port="$2"; shift 2
  local out="/tmp/tower-api-key-load-$name.out"
  ADDR="127.0.0.1:$port" "$@" >"$out" 2>/dev/null &
  pids+=("$!")
  for _ in $(seq 200); do grep -q listening "$out" && break; sleep 0.05; done
  grep -q listening "$out" || { echo "load: $name did not start"; cat "$out"; exit 1; }
  printf -v "KEY_$name" '%s' "$(sed -n 's/^full access: \(pk_live_[0-9a-f]*\)$/\1/p' "$out")"
}

# A key minted through the management API (durable stores print the demo keys once).
mint_key() {
  local base="$1" cookie
  cookie="$(curl -s -o /dev/null -D - -H 'content-type: application/json' \
    -d '{"username":"demo","password":"demo"}' "$base/login" \
    | sed -n 's/^set-cookie: \([^;]*\);.*/\1/Ip')"
  curl -s -H "cookie: $cookie" -H 'content-type: application/json' \
    -d '{"name":"load test"}' "$base/api/user/keys" \
    | sed -n 's/.*"api_key":"\(pk_live_[0-9a-f]*\)".*/\1/p'
}

start noauth 3100 "$bin/no_auth"
start layer 3101 "$bin/quickstart"
start limited 3102 env RATE_LIMIT=1000000000/s "$bin/quickstart"
targets=(noauth layer limited)
if [ -n "${TEST_POSTGRES_URL:-}" ]; then
  start postgres 3103 env DATABASE_URL="$TEST_POSTGRES_URL" "$bin/quickstart"
  KEY_postgres="$(mint_key http://127.0.0.1:3103)"
  targets+=(postgres)
else
  echo "load: TEST_POSTGRES_URL is not set: no PostgreSQL round"
fi
declare -A port=([noauth]=3100 [layer]=3101 [limited]=3102 [postgres]=3103)

run() { # name -> requests/s
  local name="$1" key_var="KEY_$1"
  wrk -t1 -c"$connections" -d"$duration" -H "Authorization: Bearer ${!key_var:-none}" \
    "http://127.0.0.1:${port[$name]}/api/account" \
    | awk '/Requests\/sec/ {print $2} /Non-2xx/ {print "NON2XX " $0 > "/dev/stderr"}'
}

declare -A results
for round in $(seq "$rounds"); do
  line="round $round:"
  for name in "${targets[@]}"; do
    rps="$(run "$name")"
    results[$name]+="$rps "
    line+=" $name $rps"
  done
  echo "$line"
done

echo
python3 - "$rounds" "${targets[@]}" <<PY
import statistics, sys
targets = sys.argv[2:]
results = {$(for n in "${targets[@]}"; do printf '"%s": [%s], ' "$n" "$(sed 's/ /, /g; s/, $//' <<<"${results[$n]}")"; done)}
base = statistics.median(results["noauth"])
for name in targets:
    median = statistics.median(results[name])
    print(f"{name:10s} median {median:10.0f} req/s   {median / base:5.3f}x no-auth")
PY
