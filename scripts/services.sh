#!/usr/bin/env bash
# Installs (Debian packages) and starts PostgreSQL and Redis on 127.0.0.1 for the
# backend tests, creates the test database, and prints the URLs to export:
#
#   eval "$(scripts/services.sh)"
#
# Idempotent: servers already running are left alone. Needs root (apt-get) the first
# time. Everything it says goes to stderr; only the `export` lines go to stdout.
set -euo pipefail

log() { printf '%s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

PG_PORT="${PG_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
DB=tower_api_key_test
USER_NAME=tower_api_key
PASSWORD=tower_api_key

if ! command -v redis-server >/dev/null || ! command -v pg_ctlcluster >/dev/null; then
  log "installing postgresql and redis-server (apt-get)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >&2
fi

# Redis: loopback only, with the append-only file the store requires.
if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  log "starting redis on 127.0.0.1:$REDIS_PORT"
  mkdir -p /tmp/tower-api-key-redis
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly yes \
    --dir /tmp/tower-api-key-redis \
    --daemonize yes --logfile /tmp/tower-api-key-redis.log >&2
  for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
# A server started otherwise (a distribution's service) may run without it.
# (It writes the file in that server's own directory.)
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config set appendonly yes >/dev/null

# PostgreSQL: the distribution's cluster, listening on loopback.
version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
if ! pg_lsclusters -h | grep -q "^$version main"; then
  as_root pg_createcluster "$version" main -p "$PG_PORT" >&2
fi
if ! pg_lsclusters -h | grep -q "^$version main .* online"; then
  log "starting postgresql $version on 127.0.0.1:$PG_PORT"
  as_root pg_ctlcluster "$version" main start -o "-c listen_addresses=127.0.0.1 -p $PG_PORT" >&2
fi
psql_admin() { as_root su postgres -c "psql -p $PG_PORT -v ON_ERROR_STOP=1 -qAt $*"; }
if [ "$(psql_admin "-c \"select 1 from pg_roles where rolname='$USER_NAME'\"")" != 1 ]; then
  psql_admin "-c \"create role $USER_NAME login password '$PASSWORD'\"" >&2
fi
if [ "$(psql_admin "-c \"select 1 from pg_database where datname='$DB'\"")" != 1 ]; then
  psql_admin "-c \"create database $DB owner $USER_NAME\"" >&2
fi

echo "export TEST_POSTGRES_URL=postgres://$USER_NAME:$PASSWORD@127.0.0.1:$PG_PORT/$DB"
echo "export TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
