# Shared by scripts/test.sh and scripts/demo.sh: find or install what the repo needs.
PNPM_VERSION=10.34.9

ensure_node() {
  if ! command -v node >/dev/null 2>&1; then
    echo "node was not found: install Node.js 20 or newer (https://nodejs.org or Debian's nodejs package)." >&2
    exit 1
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    echo "Node.js $(node -v) is too old: tiercache needs Node.js 20 or newer." >&2
    exit 1
  fi
}

# pnpm from PATH when it is pnpm 10, otherwise the pinned version through npx (npm ships with Node).
pnpm_cmd() {
  if command -v pnpm >/dev/null 2>&1 && pnpm --version 2>/dev/null | grep -q '^10\.'; then
    pnpm "$@"
  else
    npx --yes "pnpm@${PNPM_VERSION}" "$@"
  fi
}

install_dependencies() {
  echo "==> installing dependencies (pnpm)"
  pnpm_cmd install --frozen-lockfile --reporter=append-only
}

build_packages() {
  echo "==> building packages"
  local log
  log=$(mktemp)
  if ! pnpm_cmd -r --filter "./packages/**" run build >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "build failed" >&2
    exit 1
  fi
  rm -f "$log"
}
