#!/usr/bin/env bash
# Install and start the external services the API tests use, as CI does on a fresh Debian machine
# (run as root): PostgreSQL 15 on loopback with a dedicated database and user, and Debian's
# headless Chromium for the dashboard test. Prints the environment the tests read, one
# `export NAME=value` per line, so a caller can `eval "$(scripts/ci-services.sh)"`.
# Everything else it says goes to stderr. Idempotent: a second run reuses what is there.
set -euo pipefail

PG_VERSION="${DSE_PG_VERSION:-15}"
PG_CLUSTER="${DSE_PG_CLUSTER:-main}"
PG_PORT="${DSE_PG_PORT:-5432}"
PG_DB="${DSE_PG_DB:-dse_test}"
PG_USER="${DSE_PG_USER:-dse}"
PG_PASSWORD="${DSE_PG_PASSWORD:-dse-test-password}"

log() { echo "ci-services: $*" >&2; }

need_packages=()
command -v pg_ctlcluster >/dev/null 2>&1 && [ -x "/usr/lib/postgresql/$PG_VERSION/bin/postgres" ] \
  || need_packages+=(postgresql)
command -v chromium >/dev/null 2>&1 || need_packages+=(chromium)
if [ "${#need_packages[@]}" -gt 0 ]; then
  log "installing ${need_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need_packages[@]}" >&2
fi

# -- PostgreSQL on loopback ----------------------------------------------------------------------
if ! pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1 == v && $2 == c' | grep -q .; then
  log "creating cluster $PG_VERSION/$PG_CLUSTER"
  pg_createcluster "$PG_VERSION" "$PG_CLUSTER" --port "$PG_PORT" >&2
fi
if ! pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1 == v && $2 == c && $4 == "online"' \
    | grep -q .; then
  log "starting cluster $PG_VERSION/$PG_CLUSTER on 127.0.0.1:$PG_PORT"
  pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start -- -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT" >&2
fi
for _ in $(seq 1 30); do
  if su postgres -c "psql -p $PG_PORT -h 127.0.0.1 -tAc 'select 1'" >/dev/null 2>&1 \
     || su postgres -c "psql -p $PG_PORT -tAc 'select 1'" >/dev/null 2>&1; then
    break
  fi
  sleep 1
done
psql_admin() { su postgres -c "psql -p $PG_PORT -v ON_ERROR_STOP=1 -tAc \"$1\""; }
if [ "$(psql_admin "select 1 from pg_roles where rolname = '$PG_USER'")" != "1" ]; then
  log "creating role $PG_USER"
  psql_admin "create role $PG_USER login password '$PG_PASSWORD'" >&2
else
  psql_admin "alter role $PG_USER login password '$PG_PASSWORD'" >&2
fi
if [ "$(psql_admin "select 1 from pg_database where datname = '$PG_DB'")" != "1" ]; then
  log "creating database $PG_DB"
  psql_admin "create database $PG_DB owner $PG_USER" >&2
fi
# Password authentication over loopback TCP (Debian's default pg_hba already allows scram on
# 127.0.0.1/32); check it works with the credentials the tests will use.
PGPASSWORD="$PG_PASSWORD" psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -tAc "select 1" >/dev/null
log "PostgreSQL ready on 127.0.0.1:$PG_PORT, database $PG_DB"

CHROMIUM="$(command -v chromium)"
log "Chromium at $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"

echo "export DSE_TEST_POSTGRES_URL=postgresql+psycopg://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"
echo "export DSE_TEST_CHROMIUM=$CHROMIUM"
