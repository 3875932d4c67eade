#!/usr/bin/env bash
# A pull worker in shell, over underling's HTTP API (`underling serve`): it claims jobs of the
# task `shell.upper` ({"text": "..."}) with a 30 s lease, runs them (upper-cases the text) and
# acks each with its result, or rejects it for good when its args have no text. A job whose
# worker dies mid-job goes back to the queue when its lease runs out.
#
#   UNDERLING_URL=http://127.0.0.1:8474 UNDERLING_TOKEN=... examples/pull-worker.sh [--once]
#
# --once: exit when no job is ready (otherwise wait a second and claim again). Needs curl and jq.
set -euo pipefail
url="${UNDERLING_URL:-http://127.0.0.1:8474}"
headers=(-H "Content-Type: application/json")
if [ -n "${UNDERLING_TOKEN:-}" ]; then
    headers+=(-H "Authorization: Bearer $UNDERLING_TOKEN")
fi
once=false
if [ "${1:-}" = "--once" ]; then once=true; fi

post() { curl -fsS "${headers[@]}" "$url/api/v1/$1" -d "$2"; echo; }

while true; do
    claimed=$(post claims '{"tasks": ["shell.upper"], "limit": 10, "lease": "30s"}')
    if [ "$(jq '.jobs | length' <<<"$claimed")" = 0 ]; then
        if $once; then exit 0; fi
        sleep 1
        continue
    fi
    jq -c '.jobs[]' <<<"$claimed" | while read -r job; do
        id=$(jq -r .id <<<"$job")
        token=$(jq -r .token <<<"$job")
        if text=$(jq -er '.args.text | strings' <<<"$job"); then
            upper=$(tr '[:lower:]' '[:upper:]' <<<"$text")
            post "jobs/$id/ack" "$(jq -n --arg t "$token" --arg u "$upper" '{token: $t, result: {text: $u}}')"
        else
            post "jobs/$id/reject" "$(jq -n --arg t "$token" '{token: $t, error: "args.text must be a string", retry: false}')"
        fi
    done
done
