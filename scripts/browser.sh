#!/usr/bin/env bash
# Installs (Debian packages) headless Chromium and its WebDriver server for the
# real-browser tests (tests/browser.rs), and prints where they are:
#
#   bash scripts/browser.sh
#
# Idempotent: nothing is installed when both are already there. Needs root (apt-get)
# the first time. Progress goes to stderr; stdout says only where the programs are.
set -euo pipefail

log() { printf '%s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian's chromium ships the browser at /usr/bin/chromium and chromium-driver ships
# /usr/bin/chromedriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  log "installing chromium and chromium-driver (apt-get)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver fonts-dejavu-core >&2
fi

chromium_path="$(command -v chromium)"
driver_path="$(command -v chromedriver)"
# Both must be runnable (a broken install fails here, not in the middle of a test).
chromium_version="$("$chromium_path" --version 2>/dev/null)"
driver_version="$("$driver_path" --version 2>/dev/null | head -n 1)"
echo "chromium: $chromium_path ($chromium_version)"
echo "chromedriver: $driver_path ($driver_version)"
