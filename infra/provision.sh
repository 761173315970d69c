#!/usr/bin/env bash
# Provision what Cartolog needs on this machine. Idempotent; used by `make up` and `make test`.
#   1. .venv with the project installed (re-installed when pyproject.toml changes);
#   2. the model's kernels compiled into numba's cache (once per version of their sources);
#   3. PostgreSQL with PostGIS, unless DATABASE_URL points elsewhere: installs PostGIS on
#      the running local server, or installs and starts PostgreSQL itself when none runs.
# The broker is started by the Python processes themselves (infra/broker.py), because its
# lifetime is theirs: `cartolog up` and the test session start and stop it.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[provision] %s\n' "$*" >&2; }
# shellcheck source=infra/apt.sh
source infra/apt.sh

provision_venv() {
  local python=${PYTHON:-python3}
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $($python --version)"
    "$python" -m venv .venv
  fi
  local stamp=.venv/.cartolog-installed want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing the project and its pinned dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
    echo "$want" > "$stamp"
  fi
}

local_server_up() { .venv/bin/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 2).close()" 2>/dev/null; }

start_local_postgres() {
  if ! command -v pg_lsclusters >/dev/null 2>&1; then
    say "no PostgreSQL found: installing it from Debian packages"
    apt_install postgresql postgresql-contrib
  fi
  local version
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  if ! pg_lsclusters -h | awk '{print $1"/"$2}' | grep -q "^$version/main$"; then
    as_root pg_createcluster "$version" main >/dev/null
  fi
  local hba=/etc/postgresql/$version/main/pg_hba.conf
  # A cluster this script created serves local development only: trust loopback, as the
  # machines this project runs on do.
  if ! grep -q '^# cartolog: trust loopback' "$hba"; then
    as_root sed -i '1i # cartolog: trust loopback\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$hba"
  fi
  say "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do local_server_up && return 0; sleep 1; done
  say "PostgreSQL did not start: see /var/log/postgresql/"; exit 1
}

ensure_postgis() {
  local version
  version=$(psql -h 127.0.0.1 -U postgres -d postgres -tAc 'show server_version_num' | cut -c1-2)
  if [ ! -f "/usr/share/postgresql/$version/extension/postgis.control" ]; then
    say "installing PostGIS for PostgreSQL $version"
    apt_install "postgresql-$version-postgis-3"
  fi
}

provision_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    say "using DATABASE_URL (PostGIS must be available there)"; return 0
  fi
  local_server_up || start_local_postgres
  command -v psql >/dev/null 2>&1 || apt_install postgresql-client
  ensure_postgis
}

provision_venv
.venv/bin/python -m simulation_worker.precompile
provision_postgres
say "ready"
