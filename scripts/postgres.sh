#!/usr/bin/env bash
# Installs (if needed) and starts a local PostgreSQL server with a test database; prints its URL.
# Used by scripts/test.sh so the store's PostgreSQL tests run against a real server.
#   postgres.sh prepare   installs it and creates the cluster, without starting it; prints the command that runs
#                         the server in the foreground (test.sh runs it as its own child, stops it and reaps it:
#                         a server started by pg_ctlcluster is re-parented to PID 1, and a container's PID 1 that
#                         reaps nothing keeps it as a zombie once stopped)
#   postgres.sh stop      stops the server
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  [ "${1:-}" = "stop" ] && exit 0
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if [ "${1:-}" = "stop" ]; then
  pg_ctlcluster "$version" main stop -m fast >/dev/null 2>&1 || true
  exit 0
fi
if ! pg_lsclusters -h | grep -q "^$version main"; then
  pg_createcluster "$version" main >/dev/null
fi
if [ "${1:-}" = "prepare" ]; then
  mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql
  echo "runuser -u postgres -- /usr/lib/postgresql/$version/bin/postgres -D /var/lib/postgresql/$version/main" \
       "-c config_file=/etc/postgresql/$version/main/postgresql.conf"
  exit 0
fi
pg_ctlcluster "$version" main start >/dev/null 2>&1 || true
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
as_postgres() { su postgres -c "$1"; }
as_postgres "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='whyzero'\"" | grep -q 1 \
  || as_postgres "psql -qc \"CREATE ROLE whyzero LOGIN PASSWORD 'whyzero'\""
as_postgres "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='whyzero_test'\"" | grep -q 1 \
  || as_postgres "createdb -O whyzero whyzero_test"
port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
echo "postgresql+psycopg://whyzero:whyzero@127.0.0.1:${port}/whyzero_test"
