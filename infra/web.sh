#!/usr/bin/env bash
# The map workspace. Idempotent; run by `make up` and `make test` after provisioning.
#   1. web/: `npm ci` (when package-lock.json changed) and `npm run build` (when a source
#      changed) -> web/dist, which `cartolog api` serves at "/";
#   2. the browser test's tools, when missing: Debian's chromium (apt-get) and playwright-core
#      (npm ci in tests/e2e/browser). Browsers are never downloaded by npm: there is no network
#      for that here, and Debian's build is the one the test drives.
# CARTOLOG_WEB_SKIP_BROWSER=1 skips step 2 (machines that only serve the workspace).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[web] %s\n' "$*" >&2; }
# shellcheck source=infra/apt.sh
source infra/apt.sh

require_node() {
  if ! command -v npm >/dev/null 2>&1; then
    say "installing Node.js and npm from Debian packages"
    apt_install nodejs npm
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    say "Node.js $(node --version) is too old: Vite needs 20.19 or newer"; exit 1
  fi
}

# Run a command, showing its output only when it fails (`make up` stays short).
quietly() {
  local out
  if ! out=$("$@" 2>&1); then
    printf '%s\n' "$out" >&2
    return 1
  fi
}

# npm ci again only when the lock file changed (a stamp beside node_modules remembers it).
npm_ci() {
  local dir=$1 stamp want
  stamp=$dir/node_modules/.cartolog-lock
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "npm ci in $dir"
    quietly npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    echo "$want" > "$stamp"
  fi
}

build_workspace() {
  npm_ci web
  local stamp=web/dist/.cartolog-sources want
  want=$(cd web && find index.html package-lock.json tsconfig.json vite.config.ts src \
           -type f 2>/dev/null | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -f web/dist/index.html ]; then
    say "building the map workspace (web/dist)"
    quietly npm run build --prefix web --silent
    echo "$want" > "$stamp"
  fi
}

browser_test_tools() {
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Debian's chromium for the browser test"
    apt_install chromium
  fi
  npm_ci tests/e2e/browser
}

require_node
build_workspace
if [ "${CARTOLOG_WEB_SKIP_BROWSER:-0}" != "1" ]; then browser_test_tools; fi
say "workspace ready: web/dist"
