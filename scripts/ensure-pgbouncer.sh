#!/usr/bin/env bash
# Makes sure PgBouncer in transaction mode answers on 127.0.0.1:6432 for the PgBouncer tests
# (crates/underling-testkit/tests/pgbouncer.rs), in front of the PostgreSQL server on
# 127.0.0.1:5432 (scripts/ensure-postgres.sh).
#
# Everything lives in one directory, $UNDERLING_PGBOUNCER_DIR (default /var/lib/underling-pgbouncer):
#   pgbouncer.ini   the configuration (rewritten at every run; a running bouncer is reloaded)
#   userlist.txt    the users PgBouncer accepts (postgres, no password: the server trusts it)
#   pgbouncer.log, pgbouncer.pid
# Database `test` on the bouncer is database `test` on the server, as user postgres, with
# pool_mode = transaction. Debian's package (1.18 on bookworm) is installed when missing: it
# predates PgBouncer's prepared statement support (1.21), which is what underling's
# `ConnectOptions::pgbouncer` mode is for.
#
# Idempotent: when the bouncer already answers in transaction mode it only checks it. Needs root
# (it runs PgBouncer as the postgres user, since PgBouncer refuses to run as root) or to be run
# as postgres.
set -euo pipefail
dir="${UNDERLING_PGBOUNCER_DIR:-/var/lib/underling-pgbouncer}"
port="${UNDERLING_PGBOUNCER_PORT:-6432}"
host=127.0.0.1

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}
admin() { psql -h "$host" -p "$port" -U postgres -d pgbouncer -Atq "$@"; }
mode() { admin -c 'SHOW CONFIG' 2>/dev/null | awk -F'|' '$1 == "pool_mode" { print $2 }'; }

if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  echo "PgBouncer is not installed: installing Debian's package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y pgbouncer || { apt-get update && apt-get install -y pgbouncer; }
fi
bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)

install -d -m 0755 -o postgres -g postgres "$dir"
config="$dir/pgbouncer.ini"
new=$(mktemp)
cat >"$new" <<EOF
; underling's PgBouncer for the tests (scripts/ensure-pgbouncer.sh); rewritten at every run.
[databases]
test = host=127.0.0.1 port=5432 dbname=test user=postgres

[pgbouncer]
listen_addr = $host
listen_port = $port
unix_socket_dir = $dir
pidfile = $dir/pgbouncer.pid
logfile = $dir/pgbouncer.log
; The server trusts local connections; PgBouncer still wants the user in its auth_file.
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = postgres
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
; sqlx sends extra_float_digits at start-up, which PgBouncer refuses unless told to ignore it.
ignore_startup_parameters = extra_float_digits
EOF
changed=false
if ! cmp -s "$new" "$config" 2>/dev/null; then
  install -m 0644 -o postgres -g postgres "$new" "$config"
  changed=true
fi
rm -f "$new"
printf '"postgres" ""\n' >"$dir/userlist.txt"
chown postgres:postgres "$dir/userlist.txt"
chmod 0600 "$dir/userlist.txt"

if [ "$(mode)" = transaction ] && ! $changed; then
  :
elif [ -n "$(mode)" ]; then
  echo "reloading PgBouncer's configuration ($config)"
  admin -c 'RELOAD' >/dev/null
else
  echo "starting PgBouncer on $host:$port (transaction mode)"
  as_postgres "$bin" -d -q "$config" || {
    echo "ERROR: PgBouncer did not start; its log:" >&2
    tail -n 20 "$dir/pgbouncer.log" >&2 || true
    exit 1
  }
  for _ in $(seq 1 50); do
    [ -n "$(mode)" ] && break
    sleep 0.1
  done
fi
if [ "$(mode)" != transaction ]; then
  echo "ERROR: PgBouncer in transaction mode is not reachable on $host:$port (pool_mode: '$(mode)'); the PgBouncer tests cannot run; its log:" >&2
  tail -n 20 "$dir/pgbouncer.log" >&2 || true
  exit 1
fi
if [ "$(psql -h "$host" -p "$port" -U postgres -d test -Atq -c 'select 1' 2>&1)" != 1 ]; then
  echo "ERROR: PgBouncer answers on $host:$port but database test does not work through it" >&2
  tail -n 20 "$dir/pgbouncer.log" >&2 || true
  exit 1
fi
echo "PgBouncer (transaction mode) is ready on $host:$port: UNDERLING_PGBOUNCER_URL=postgres://postgres@$host:$port/test"
