#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432 with a `test` database: starts the machine's
# cluster if needed (installing PostgreSQL from Debian's packages if it is missing), and fails
# loudly if it still cannot connect.
set -euo pipefail
host=127.0.0.1
port=5432

ready() { pg_isready -h "$host" -p "$port" -q 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "PostgreSQL is not installed: installing it from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

if ! ready; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "PostgreSQL is not answering on $host:$port: starting cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do
    ready && break
    sleep 1
  done
fi
if ! ready; then
  echo "ERROR: PostgreSQL is still not reachable on $host:$port; the PostgreSQL tests cannot run" >&2
  exit 1
fi

# Trust auth for local TCP connections is what the tests expect; check we can log in.
if ! psql -h "$host" -p "$port" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
  echo "ERROR: cannot log in as postgres on $host:$port (the tests expect trust auth)" >&2
  exit 1
fi
if [ "$(psql -h "$host" -p "$port" -U postgres -d postgres -Atqc "select count(*) from pg_database where datname = 'test'")" != "1" ]; then
  echo "creating database test"
  psql -h "$host" -p "$port" -U postgres -d postgres -qc 'CREATE DATABASE test'
fi
# Schemas left behind by earlier, interrupted test runs.
psql -h "$host" -p "$port" -U postgres -d test -Atqc \
  "select 'DROP SCHEMA IF EXISTS \"' || nspname || '\" CASCADE;' from pg_namespace where nspname like 't\_%' or nspname like 'underling_bench_%'" \
  | PGOPTIONS="-c client_min_messages=warning" psql -h "$host" -p "$port" -U postgres -d test -q >/dev/null
echo "PostgreSQL is ready on $host:$port"
