#!/usr/bin/env bash
# benches/side_by_side.rs run in RUNS separate processes (default 9), summed up as the
# median over processes of each figure it prints. One process interleaves its cases,
# so a busy machine's drift hits both sides of a comparison alike; but a process's
# memory and code layout (ASLR) moves every figure of that process together, by up to
# ±100 ns on this kind of machine, so a claim needs several processes, not one.
#
#   bash scripts/side_by_side.sh            # every group, 9 processes
#   RUNS=16 bash scripts/side_by_side.sh router service
#   BIN=/tmp/side_by_side-before bash scripts/side_by_side.sh   # a copy kept from before
#
# Prints, per comparison, the median over processes of the p10 and median ratios; per
# layer placement, the median over processes of what ours and the hand layer add over
# the bare router, and of their difference (with its range). Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-9}"
[ "$runs" -gt 0 ] || { echo "side_by_side.sh: RUNS must be above 0" >&2; exit 1; }
bin="${BIN:-$(cargo bench --bench side_by_side --no-run --message-format=json-render-diagnostics \
  | sed -nE 's/.*"executable":"([^"]+)".*/\1/p' | tail -1)}"
[ -x "$bin" ] || { echo "side_by_side.sh: bench binary not found" >&2; exit 1; }

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for run in $(seq "$runs"); do
  "$bin" "$@" >>"$out"
  echo "process $run of $runs done" >&2
done

# Median of the numbers on stdin.
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "side by side: median over $runs processes"
# `verify/ours     / verify/floor     1.15x | 1.20x  (281 / 245 ns at p10)`
for pair in $(awk '$2 == "/" { print $1 "=" $3 }' "$out" | sort -u); do
  ours="${pair%%=*}" floor="${pair#*=}"
  lines="$(awk -v o="$ours" -v f="$floor" '$1 == o && $3 == f' "$out")"
  p10="$(awk '{ sub("x", "", $4); print $4 }' <<<"$lines" | median)"
  med="$(awk '{ sub("x", "", $6); print $6 }' <<<"$lines" | median)"
  printf '%-16s / %-17s %.2fx | %.2fx\n' "$ours" "$floor" "$p10" "$med"
done
# `router   added over bare: ours 616 | 1100, hand layer 641 | 927`
for placement in router service; do
  lines="$(awk -v p="$placement" '$1 == p && $2 == "added"' "$out")"
  [ -n "$lines" ] || continue
  fields() { sed -E 's/.*ours ([-0-9]+) \| ([-0-9]+), hand layer ([-0-9]+) \| ([-0-9]+).*/\1 \2 \3 \4/' <<<"$lines"; }
  ours="$(fields | awk '{ print $1 }' | median)"
  hand="$(fields | awk '{ print $3 }' | median)"
  diffs="$(fields | awk '{ print $1 - $3 }')"
  printf '%-8s added over bare at p10: ours %s ns, hand layer %s ns; ours - hand: median %s ns (from %s to %s)\n' \
    "$placement" "$ours" "$hand" "$(median <<<"$diffs")" \
    "$(sort -g <<<"$diffs" | head -1)" "$(sort -g <<<"$diffs" | tail -1)"
  diffs="$(fields | awk '{ print $2 - $4 }')"
  printf '%-8s at the median:           ours - hand: median %s ns (from %s to %s)\n' \
    "$placement" "$(median <<<"$diffs")" \
    "$(sort -g <<<"$diffs" | head -1)" "$(sort -g <<<"$diffs" | tail -1)"
done
