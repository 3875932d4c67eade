#!/usr/bin/env bash
# What the job counters of migrations/postgres/0009_counts.sql cost the worker's statements.
#
# Builds two schemas in the database given (default: a database `counts_cost` on the local
# server, created if missing): `counts_without` with migrations 0001-0008, `counts_with` with
# 0009 on top. Then pgbench runs, in each schema in turn (four rounds of 8 s, emptied before
# each), the statements a worker cycle costs the database: a batch enqueue of 64 jobs, the
# claim of those 64 (underling_cycle) and their settle (underling_cycle).
#
#   bash scripts/counts-cost.sh [postgres://postgres@127.0.0.1:5432/counts_cost]
set -euo pipefail
cd "$(dirname "$0")/.."
url="${1:-postgres://postgres@127.0.0.1:5432/counts_cost}"
createdb "$url" 2>/dev/null || createdb -h "$(sed -E 's#.*@([^:/]+).*#\1#' <<<"$url")" \
    -U postgres "${url##*/}" 2>/dev/null || true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for schema in counts_without counts_with; do
    {
        echo "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $schema CASCADE;"
        echo "CREATE SCHEMA $schema; SET search_path = $schema;"
        for m in migrations/postgres/000[1-8]_*.sql; do cat "$m"; done
        if [ "$schema" = counts_with ]; then
            echo "BEGIN;"; cat migrations/postgres/0009_counts.sql; echo "COMMIT;"
        fi
        echo "INSERT INTO underling_workers (id, host, pid) VALUES (1, 'bench', 1);"
    } | psql -q -v ON_ERROR_STOP=1 "$url" >/dev/null
done

cat > "$work/cycle.sql" <<'SQL'
INSERT INTO underling_jobs (task, queue) SELECT 'noop', 'default' FROM generate_series(1, 64);
SELECT quote_literal(array_agg(id)::text) AS ids, quote_literal(array_agg(retries)::text) AS rs FROM underling_cycle('{}', '{}', '{}', '{}', '{}', 'w', 1, '{default}', '{}', 64, now()) \gset
SELECT count(*) FROM underling_cycle(:ids, :rs, array_fill(true, ARRAY[64]), array_fill('null'::jsonb, ARRAY[64]), array_fill(0::float8, ARRAY[64]), 'w', 1, '{default}', '{}', 0, now());
SQL
for round in 1 2 3 4; do
    for schema in counts_without counts_with; do
        psql -q "$url" -c "TRUNCATE $schema.underling_jobs CASCADE" >/dev/null
        tps=$(PGOPTIONS="-c search_path=$schema" pgbench -n -T 8 -f "$work/cycle.sql" "$url" 2>/dev/null \
            | awk '/^tps/ { print $3 }')
        echo "round $round $schema: $tps cycles/s of 64 jobs"
    done
done
