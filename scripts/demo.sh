#!/usr/bin/env bash
# Runs the demo: three instances of one service sharing a cache. Without
# REDIS_URL it uses the in-process store and bus; with REDIS_URL, Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_node
install_dependencies >/dev/null
build_packages >/dev/null
exec node demo/demo.mjs
