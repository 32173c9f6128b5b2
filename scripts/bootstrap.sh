#!/usr/bin/env bash
# Installs the pinned pnpm and the workspace's dependencies when they are missing or stale.
# Used by `npm start` and `npm test` so both work from a clean clone with nothing but Node and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

# `--with-browser` (npm test): the console's browser tests need Debian's Chromium at /usr/bin/chromium (or
# CHROMIUM_PATH). Installed here when missing and apt-get can (root); `npm start` and `npm run demo` never need it.
if [ "${1:-}" = "--with-browser" ] && [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "[bootstrap] installing chromium for the console's browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    echo "[bootstrap] Chromium is missing: install it (apt-get install chromium) or set CHROMIUM_PATH; test/console needs it" >&2
  fi
fi
PNPM_VERSION=12.4.2
stamp=node_modules/.install-stamp
want=$( (cat pnpm-lock.yaml package.json pnpm-workspace.yaml patches/* packages/*/package.json test/package.json bench/package.json 2>/dev/null || true) | sha1sum | cut -d" " -f1)
if [ -x node_modules/.bin/pnpm ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if [ -x node_modules/.bin/pnpm ]; then
  pnpm=(node_modules/.bin/pnpm)
else
  pnpm=(npx -y "pnpm@${PNPM_VERSION}")
fi
if [ -f pnpm-lock.yaml ] && [ "${CI:-}" = "true" ]; then
  "${pnpm[@]}" install --frozen-lockfile --reporter=append-only
else
  "${pnpm[@]}" install --reporter=append-only
fi
echo "$want" > "$stamp"
