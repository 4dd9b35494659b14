#!/usr/bin/env bash
# Instructions per request, counted exactly under valgrind (benches/side_by_side.rs):
# each case runs twice, with REQUESTS (100 000) requests and with none (same warm-up),
# and the difference per request is printed, then what each layer adds over the bare
# router and the verifier's ratio to its floor. Needs valgrind (Debian: `valgrind`);
# takes a minute or two; not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${REQUESTS:-100000}"
[ "$requests" -gt 0 ] || { echo "instructions.sh: REQUESTS must be above 0" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "instructions.sh: needs valgrind" >&2; exit 1; }
# The bench binary, as cargo reports it (its own errors stay on stderr).
bin="$(cargo bench --bench side_by_side --no-run --message-format=json-render-diagnostics \
  | sed -nE 's/.*"executable":"([^"]+)".*/\1/p' | tail -1)"
[ -x "$bin" ] || { echo "instructions.sh: bench binary not found" >&2; exit 1; }

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
count() { # case, requests -> total instructions
  if ! CASE="$1" REQUESTS="$2" valgrind --tool=cachegrind --cache-sim=no \
    --cachegrind-out-file=/dev/null "$bin" >"$log" 2>&1; then
    echo "instructions.sh: case $1 failed under valgrind:" >&2
    cat "$log" >&2
    exit 1
  fi
  sed -nE 's/.*I *refs: *([0-9,]+).*/\1/p' "$log" | tr -d ,
}

declare -A per
for case in verify/ours verify/floor router/bare router/ours router/hand \
  service/bare service/ours service/hand; do
  base="$(count "$case" 0)"
  full="$(count "$case" "$requests")"
  per[$case]=$(( (full - base) / requests ))
  printf '%-14s %8d instructions per request\n' "$case" "${per[$case]}"
done
echo
for placement in router service; do
  ours=$(( per[$placement/ours] - per[$placement/bare] ))
  hand=$(( per[$placement/hand] - per[$placement/bare] ))
  printf '%-8s added over bare: ours %d, hand layer %d (ours - hand = %d)\n' \
    "$placement" "$ours" "$hand" $(( ours - hand ))
done
awk -v ours="${per[verify/ours]}" -v floor="${per[verify/floor]}" \
  'BEGIN { printf "verify: ours / floor = %.2f\n", ours / floor }'
