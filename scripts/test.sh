#!/usr/bin/env bash
# Runs every test of flowd (unit, flow, end-to-end and broker tests).
# Installs the system packages the tests need (Mosquitto; Chromium and
# Node.js for the browser tests) when they are missing and this runs as root
# on a Debian-like system, then the browser tests' npm packages (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
[ -x /usr/bin/chromium ] || [ -n "${FLOWD_CHROMIUM:-}" ] || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
  else
    echo "scripts/test.sh: please install ${need[*]} (the tests start their own Mosquitto and Chromium)" >&2
    exit 1
  fi
fi

# The browser tests' only npm package (playwright-core), pinned by package-lock.json.
if [ ! -f tests/browser/node_modules/playwright-core/package.json ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi

cargo test --workspace --locked -j "${CARGO_JOBS:-2}"
