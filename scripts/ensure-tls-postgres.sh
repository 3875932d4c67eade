#!/usr/bin/env bash
# Makes sure a second PostgreSQL server, with TLS, answers on 127.0.0.1:5433 for the TLS tests.
#
# Everything lives in one directory, $UNDERLING_TLS_DIR (default /var/lib/underling-tls):
#   ca.crt          the test CA (the tests' sslrootcert; readable by everyone)
#   wrong-ca.crt    another CA that signed nothing (the "wrong CA" test)
#   server.crt/key  the server's certificate (SAN localhost, 127.0.0.1, ::1), signed by ca.crt
#   data/           the cluster (initdb; not a Debian pg_createcluster cluster), log in server.log
# The server listens on 127.0.0.1, ::1 and 127.0.0.2 (an address the certificate does not name,
# for the host name test), with ssl = on and trust auth; database `test` accepts connections
# with or without TLS, database `tls_only` only with TLS (pg_hba `hostssl`).
#
# Idempotent: when the server already answers it only checks it (well under a second). Needs
# root (it runs PostgreSQL as the postgres user) or to be run as postgres.
set -euo pipefail
dir="${UNDERLING_TLS_DIR:-/var/lib/underling-tls}"
port="${UNDERLING_TLS_PORT:-5433}"
host=127.0.0.1
data="$dir/data"

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}
psql_tls() { PGSSLMODE=require psql -h "$host" -p "$port" -U postgres -Atq "$@"; }
ready() { pg_isready -h "$host" -p "$port" -q 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "PostgreSQL is not installed: installing it from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

# -- certificates (made once) ----------------------------------------------------------------
if [ ! -s "$dir/server.crt" ] || [ ! -s "$dir/wrong-ca.crt" ]; then
  echo "making a test CA and a server certificate in $dir"
  mkdir -p "$dir"
  tmp=$(mktemp -d)
  for ca in ca wrong-ca; do
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=underling test $ca" -keyout "$tmp/$ca.key" -out "$tmp/$ca.crt" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      2>/dev/null
  done
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=localhost" -keyout "$tmp/server.key" -out "$tmp/server.csr" 2>/dev/null
  printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" >"$tmp/server.ext"
  openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" \
    -CAcreateserial -days 3650 -extfile "$tmp/server.ext" -out "$tmp/server.crt" 2>/dev/null
  install -m 0644 "$tmp/ca.crt" "$tmp/wrong-ca.crt" "$tmp/server.crt" "$dir/"
  install -m 0600 -o postgres -g postgres "$tmp/server.key" "$dir/"
  install -m 0600 "$tmp/ca.key" "$dir/"   # root only: nothing else needs to sign
  rm -rf "$tmp"
  # A server started with an older certificate must load this one.
  if [ -f "$data/postmaster.pid" ]; then as_postgres "$bin/pg_ctl" -D "$data" -s -m fast stop || true; fi
fi
chown postgres:postgres "$dir"
chmod 0755 "$dir"

# -- the cluster (made once) -----------------------------------------------------------------
if [ ! -f "$data/PG_VERSION" ]; then
  echo "creating the TLS test cluster in $data (port $port)"
  install -d -m 0700 -o postgres -g postgres "$data"
  as_postgres "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-instructions >/dev/null
  cat >>"$data/postgresql.conf" <<EOF

# underling's TLS test server (scripts/ensure-tls-postgres.sh)
port = $port
listen_addresses = '127.0.0.1,::1,127.0.0.2'
unix_socket_directories = '$dir'
ssl = on
ssl_cert_file = '$dir/server.crt'
ssl_key_file = '$dir/server.key'
fsync = off
synchronous_commit = off
max_connections = 200
EOF
  cat >"$data/pg_hba.conf" <<'EOF'
# underling's TLS test server: trust, with or without TLS, except that database tls_only
# only accepts TLS connections.
local     all       all                 trust
hostssl   all       all   127.0.0.0/8   trust
hostssl   all       all   ::1/128       trust
hostnossl test      all   127.0.0.0/8   trust
hostnossl test      all   ::1/128       trust
hostnossl postgres  all   127.0.0.0/8   trust
hostnossl postgres  all   ::1/128       trust
EOF
fi

if ! ready; then
  echo "starting the TLS test cluster on $host:$port"
  as_postgres "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 30 -s start || {
    echo "ERROR: the TLS test cluster did not start; its log:" >&2
    tail -n 20 "$dir/server.log" >&2
    exit 1
  }
fi
if ! ready || ! psql_tls -d postgres -c 'select 1' >/dev/null 2>&1; then
  echo "ERROR: PostgreSQL with TLS is not reachable on $host:$port; the TLS tests cannot run" >&2
  exit 1
fi
for db in test tls_only; do
  if [ "$(psql_tls -d postgres -c "select count(*) from pg_database where datname = '$db'")" != "1" ]; then
    echo "creating database $db"
    psql_tls -d postgres -c "CREATE DATABASE $db"
  fi
done
# Schemas left behind by earlier, interrupted test runs.
psql_tls -d test -c \
  "select 'DROP SCHEMA IF EXISTS \"' || nspname || '\" CASCADE;' from pg_namespace where nspname like 't\_%'" \
  | PGOPTIONS="-c client_min_messages=warning" psql_tls -d test >/dev/null
echo "PostgreSQL with TLS is ready on $host:$port: UNDERLING_TLS_TEST_URL=postgres://postgres@localhost:$port/test UNDERLING_TLS_CA=$dir/ca.crt"
