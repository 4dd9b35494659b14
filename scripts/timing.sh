#!/usr/bin/env bash
# dudect timing-leak tests of the verifier (timing/src/main.rs). Each bench runs in
# continuous mode for SECONDS_PER_BENCH seconds (default 60) and must reach 2,000,000
# samples (1,000,000 per class). Pass: |t| < 5 for the verifier's benches, and |t| > 10
# for the positive control (a plain `==`), which shows the harness can see a leak.
# The verifier is timed warm (each timed call after an untimed one with the same
# input); see timing/src/main.rs for why.
# Takes a few minutes; not run in CI.
set -euo pipefail
cd "$(dirname "$0")/../timing"
per_bench="${SECONDS_PER_BENCH:-60}"
cargo build --release --quiet
bin=target/release/tower-api-key-timing

failed=0
check() { # name, rule (below|above), threshold
  local name="$1" rule="$2" limit="$3" line n t
  local lines
  lines="$(timeout --signal=INT "$per_bench" "$bin" --continuous "$name" 2>/dev/null \
    | grep -E "n == " || true)"
  line="$(tail -1 <<<"$lines")"
  # dudect reports the sample count of the test (percentile crop) with the largest
  # |t|, which can be a small crop: the run's own count is the largest one it printed.
  n="$(sed -E 's/.*n == \+?([0-9.]+)M.*/\1/' <<<"$lines" | sort -g | tail -1)"
  t="$(sed -E 's/.*max t = ([-+0-9.]+),.*/\1/' <<<"$line")"
  if [ -z "$line" ]; then
    echo "FAIL $name: no result"; failed=1; return
  fi
  local verdict
  verdict="$(python3 - "$n" "$t" "$rule" "$limit" <<'PY'
import sys
n, t, rule, limit = float(sys.argv[1]), abs(float(sys.argv[2])), sys.argv[3], float(sys.argv[4])
if n < 2.0:
    print(f"FAIL: only {n}M samples")
elif (rule == "below" and t < limit) or (rule == "above" and t > limit):
    print("ok")
else:
    print(f"FAIL: |t| = {t} is not {rule} {limit}")
PY
)"
  printf '%-32s n = %sM  max t = %s  -> %s\n' "$name" "$n" "$t" "$verdict"
  [ "$verdict" = ok ] || failed=1
}

check wrong_secret_vs_unknown_prefix below 5
check signed_wrong_secret_vs_unknown_prefix below 5
check first_vs_last_byte below 5
check control_plain_eq above 10
# Not a verdict: how much timing cold (no untimed call first) varies between two pools
# of unknown prefixes alone, i.e. why the verifier's benches time warm.
line="$(timeout --signal=INT "$per_bench" "$bin" --continuous cold_pools 2>/dev/null \
  | grep -E "n == " | tail -1 || true)"
printf '%-32s %s  (method check, no verdict)\n' cold_pools "${line#*: }"
exit "$failed"
