#!/usr/bin/env bash
# Instructions per request, counted exactly under valgrind (benches/side_by_side.rs):
# each case runs twice, with REQUESTS requests and with none (after the same warm-up),
# and the difference per request is printed, then what each layer adds over the bare
# router and the verifier's ratio to its floor. Needs valgrind (Debian: `valgrind`);
# takes a minute or two; not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${REQUESTS:-20000}"
command -v valgrind >/dev/null || { echo "instructions.sh: needs valgrind" >&2; exit 1; }
bin="$(cargo bench --bench side_by_side --no-run 2>&1 \
  | grep -oE 'target/[^ )]*/side_by_side-[0-9a-f]+' | tail -1)"
[ -x "$bin" ] || { echo "instructions.sh: bench binary not found" >&2; exit 1; }

count() { # case, requests -> total instructions
  CASE="$1" REQUESTS="$2" valgrind --tool=cachegrind --cache-sim=no \
    --cachegrind-out-file=/dev/null "$bin" 2>&1 \
    | sed -nE 's/.*I *refs: *([0-9,]+).*/\1/p' | tr -d ,
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
python3 -c "import sys; print(f'verify: ours / floor = {int(sys.argv[1]) / int(sys.argv[2]):.2f}')" \
  "${per[verify/ours]}" "${per[verify/floor]}"
