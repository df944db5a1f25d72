#!/usr/bin/env bash
# Start a PostgreSQL server on loopback for the postgres state-backend tests and
# print the URL of a test database (on stdout, and nothing else there).
#
#   export DFR_TEST_POSTGRES_URL="$(.ci/postgres.sh)"
#
# Idempotent: installs Debian's `postgresql` package only when no server is
# installed, reuses the first existing cluster (creating one with
# pg_createcluster when there is none), starts it if it is down, and creates the
# role and database only when missing. Needs root (CI runs as root). Only
# loopback: Debian's cluster listens on localhost, and pg_hba allows passwords
# (scram-sha-256) from 127.0.0.1 only.
set -euo pipefail

ROLE="${DFR_TEST_POSTGRES_ROLE:-dfr}"
PASSWORD="${DFR_TEST_POSTGRES_PASSWORD:-dfr-test-pw}"
DATABASE="${DFR_TEST_POSTGRES_DB:-dfr_test}"

log() { echo "postgres.sh: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    log "needs root (to install and start PostgreSQL); set DFR_TEST_POSTGRES_URL instead"
    exit 1
fi

if ! command -v pg_lsclusters >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    log "installing postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi

# The first cluster (VERSION NAME PORT STATUS ...), or a new one of the newest version.
cluster="$(pg_lsclusters --no-header 2>/dev/null | head -n 1 || true)"
if [ -z "$cluster" ]; then
    version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
    log "creating cluster $version/main"
    pg_createcluster "$version" main >&2
    cluster="$(pg_lsclusters --no-header | head -n 1)"
fi
read -r version name port status _ <<<"$cluster"
if [ "$status" != online ]; then
    log "starting cluster $version/$name on port $port"
    pg_ctlcluster "$version" "$name" start >&2
fi
for _ in $(seq 1 60); do
    if pg_isready -q -h 127.0.0.1 -p "$port"; then break; fi
    sleep 0.5
done
pg_isready -h 127.0.0.1 -p "$port" >&2

psql_admin() { su postgres -s /bin/sh -c "cd / && psql -v ON_ERROR_STOP=1 -qAt -p $port $*"; }
if [ "$(psql_admin "-c \"SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'\"")" != 1 ]; then
    psql_admin "-c \"CREATE ROLE $ROLE LOGIN\"" >&2
fi
psql_admin "-c \"ALTER ROLE $ROLE LOGIN PASSWORD '$PASSWORD'\"" >&2
if [ "$(psql_admin "-c \"SELECT 1 FROM pg_database WHERE datname = '$DATABASE'\"")" != 1 ]; then
    psql_admin "-c \"CREATE DATABASE $DATABASE OWNER $ROLE\"" >&2
fi
# pg_terminate_backend of another session of the same role needs pg_signal_backend
# only across roles; the tests use one role, so nothing more is granted.
echo "postgresql://$ROLE:$PASSWORD@127.0.0.1:$port/$DATABASE"
