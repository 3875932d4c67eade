#!/usr/bin/env bash
# Claim latency beside big backlogs, before and after migrations/postgres/0004_claims.sql.
#
# Builds two schemas in the database given (default: a database `claim_scale` on the local
# server, created if missing): `claims_before` with 0001 and 0002, `claims_after` with 0004 on
# top. Both hold the same rows: 1 M finished jobs, 210,000 waiting jobs spread over 100 other
# queues, 210,000 jobs of the queue `small` delayed by a day, and one due job in `small`. Then
# pgbench times, in each schema, a claim of that one job and an idle poll of an empty queue
# (each in a transaction that is rolled back, so every claim sees the same rows).
#
#   bash scripts/claim-scale.sh [postgres://postgres@127.0.0.1:5432/claim_scale]
set -euo pipefail
cd "$(dirname "$0")/.."
url="${1:-postgres://postgres@127.0.0.1:5432/claim_scale}"
createdb "$url" 2>/dev/null || createdb -h "$(sed -E 's#.*@([^:/]+).*#\1#' <<<"$url")" \
    -U postgres "${url##*/}" 2>/dev/null || true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fill="
INSERT INTO underling_jobs (task, queue, state, created, delayed, started, finished, result)
SELECT 'noop', 'q' || (g % 100), 'finished', now() - interval '2 days', now() - interval '2 days',
       now() - interval '2 days', now() - interval '1 day', 'null'
FROM generate_series(1, 1000000) g;
INSERT INTO underling_jobs (task, queue) SELECT 'noop', 'q' || (g % 100) FROM generate_series(1, 210000) g;
INSERT INTO underling_jobs (task, queue, delayed)
SELECT 'noop', 'small', now() + interval '1 day' FROM generate_series(1, 210000) g;
INSERT INTO underling_jobs (task, queue) VALUES ('noop', 'small');
VACUUM ANALYZE underling_jobs;"

for schema in claims_before claims_after; do
    echo "building $schema" >&2
    {
        echo "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema; SET search_path = $schema;"
        cat migrations/postgres/0001_init.sql migrations/postgres/0002_store.sql
        if [ "$schema" = claims_after ]; then cat migrations/postgres/0004_claims.sql; fi
        echo "$fill"
    } | psql -q -v ON_ERROR_STOP=1 "$url" >/dev/null
done

printf 'BEGIN;\nSELECT count(*) FROM underling_claim(1, %s, %s, 64, now());\nROLLBACK;\n' \
    "'{small}'" "'{}'" > "$work/small.sql"
printf 'BEGIN;\nSELECT count(*) FROM underling_claim(1, %s, %s, 64, now());\nROLLBACK;\n' \
    "'{empty}'" "'{}'" > "$work/idle.sql"
for schema in claims_before claims_after; do
    for what in small idle; do
        ms=$(PGOPTIONS="-c search_path=$schema" pgbench -n -T 5 -f "$work/$what.sql" "$url" 2>/dev/null \
            | awk '/latency average/ { print $4 }')
        echo "$schema: $([ $what = small ] && echo 'claim of the one job of a small queue' \
            || echo 'idle poll of an empty queue'): $ms ms (mean, BEGIN + claim + ROLLBACK)"
    done
done
