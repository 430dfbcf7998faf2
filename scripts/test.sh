#!/usr/bin/env bash
# Runs every test from a fresh clone: installs pnpm dependencies and, if it is
# missing, redis-server (Debian's package, when run as root on Debian), builds
# the packages, then runs all vitest projects. Tests start their own
# redis-server processes on free ports; nothing on 6379 is used.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_redis() {
  if command -v redis-server >/dev/null 2>&1; then
    return
  fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> redis-server not found: installing Debian's redis-server package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends redis-server >/dev/null
    command -v redis-server >/dev/null 2>&1 && return
  fi
  echo "redis-server was not found, and this script can only install it as root on Debian." >&2
  echo "Install it, then run this again:  sudo apt-get install -y redis-server   (macOS: brew install redis)" >&2
  exit 1
}

ensure_node
ensure_redis
echo "==> $(redis-server --version | cut -d' ' -f1-3)"
install_dependencies
build_packages
echo "==> type-checking sources and tests"
pnpm_cmd -r run typecheck
echo "==> lint and format check (Biome; fix with: pnpm exec biome check --write .)"
pnpm_cmd exec biome ci .
echo "==> dependency rules (no import cycles; the core's cache/ layers import one way)"
node scripts/check-imports.mjs
echo "==> links in README.md and docs/ (every relative link and #anchor resolves; no network)"
node scripts/check-links.mjs
# typedoc.json: every published package's public entry points; any warning
# (a broken {@link}, a referenced type left out of the reference) fails.
echo "==> API reference (TypeDoc into build/api: no warnings, no broken links)"
pnpm_cmd exec typedoc --logLevel Warn
echo "==> running tests"
report=$(mktemp)
status=0
pnpm_cmd exec vitest run --reporter=default --reporter=json --outputFile.json="$report" || status=$?
# A closing line any CI can read.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
  if (r.numTotalTests === 0) { console.error("no test ran"); process.exit(1) }
' "$report" || status=1
rm -f "$report"
if [ "$status" = 0 ]; then
  # Each coherence mechanism switched off in a temporary copy must make its
  # own tests fail (see the script's header). Runs after the suite passed.
  echo "==> mechanism check: every coherence mechanism's tests fail with it switched off"
  node scripts/mechanism-check.mjs || status=$?
fi
exit "$status"
