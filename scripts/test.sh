#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine and runs them: Debian's chromium
# (real-browser tests), a PostgreSQL server (store tests), a virtual environment with the pinned packages.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# a server this script starts runs as its child, and is stopped and reaped when the script ends (pass or fail):
# no PostgreSQL, running or zombie, is left behind
if ! pg_lsclusters -h 2>/dev/null | awk '$4 == "online"' | grep -q .; then
  server=$(bash scripts/postgres.sh prepare | tail -n 1)
  $server >/dev/null 2>&1 &
  postgres_pid=$!
  trap 'bash scripts/postgres.sh stop; wait "$postgres_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done  # ready before postgres.sh looks
fi
WHYZERO_TEST_POSTGRES_URL=$(bash scripts/postgres.sh | tail -n 1)
export WHYZERO_TEST_POSTGRES_URL
python3 -m venv .venv
.venv/bin/pip install -q -r requirements-dev.txt -e .
.venv/bin/python -m pytest -q "$@"
