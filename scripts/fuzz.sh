#!/usr/bin/env bash
# Runs each cargo-fuzz target (fuzz/fuzz_targets) for SECONDS seconds (default 60),
# starting from the committed seed corpus. Needs a nightly toolchain; installs
# cargo-fuzz when it is missing. Exits non-zero on any crash (the input is kept in
# fuzz/artifacts/<target>/).
#
#   scripts/fuzz.sh            # 60 s per target
#   SECONDS_PER_TARGET=600 scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
per_target="${SECONDS_PER_TARGET:-60}"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain here (cargo-fuzz needs one): fuzzing NOT run"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
cargo +nightly fuzz build
for target in $(cargo +nightly fuzz list); do
  echo "fuzz: $target for ${per_target}s"
  log="$(mktemp)"
  if ! cargo +nightly fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$per_target" -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $target FOUND A CRASH (the input is in fuzz/artifacts/$target/)"
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units)' "$log" || true
  rm -f "$log"
done
echo "fuzz: no crash"
