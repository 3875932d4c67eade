"""Enqueue underling jobs from Python inside your own transaction, and read the result over HTTP.

With psycopg 3 (Debian: apt-get install python3-psycopg) and the standard library only:

    UNDERLING_DATABASE_URL=postgres://localhost/app UNDERLING_URL=http://127.0.0.1:8474 \
        python3 examples/python-enqueue/enqueue.py

A first transaction enqueues a job and rolls back: the job never existed (the HTTP API answers
404). A second one enqueues `example.shout` {"text": "hello"} and commits: a worker that knows
the task runs it, and the script waits for the result (GET /api/v1/jobs/{id}/wait).
UNDERLING_SCHEMA names the queue's schema when it has one; UNDERLING_TOKEN the API's token.
"""

import json
import os
import sys
import urllib.error
import urllib.request

import psycopg

DATABASE = os.environ.get("UNDERLING_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/app")
SCHEMA = os.environ.get("UNDERLING_SCHEMA")
API = os.environ.get("UNDERLING_URL", "http://127.0.0.1:8474")
TOKEN = os.environ.get("UNDERLING_TOKEN")

ENQUEUE = "SELECT underling_enqueue(%s, %s::jsonb, queue => %s, attempts => %s)"


def api_get(path):
    """GET a path of the HTTP API: (status, JSON body)."""
    request = urllib.request.Request(API + path)
    if TOKEN:
        request.add_header("Authorization", "Bearer " + TOKEN)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def main():
    # The queue's schema on the search path, so that the SQL reads as in the README.
    options = f"-c search_path={SCHEMA}" if SCHEMA else ""
    with psycopg.connect(DATABASE, autocommit=True, options=options) as conn:
        # 1. Enqueued, then rolled back with the rest of the transaction: no job.
        with conn.transaction():
            (gone,) = conn.execute(ENQUEUE, ("example.shout", json.dumps({"text": "never"}), "default", 1)).fetchone()
            raise psycopg.Rollback()
        status, _ = api_get(f"/api/v1/jobs/{gone}")
        print(f"rolled back: job {gone} -> HTTP {status}")
        if status != 404:
            sys.exit(f"job {gone} exists after a rollback")

        # 2. Enqueued and committed: the job exists from the commit on, and a worker runs it.
        with conn.transaction():
            (job,) = conn.execute(ENQUEUE, ("example.shout", json.dumps({"text": "hello"}), "default", 3)).fetchone()
        print(f"committed: job {job}")

    status, waited = api_get(f"/api/v1/jobs/{job}/wait?timeout=30s")
    if status != 200 or not waited["settled"] or waited["job"]["state"] != "finished":
        sys.exit(f"job {job} did not finish: HTTP {status} {waited}")
    print("result: " + json.dumps(waited["job"]["result"], sort_keys=True))


if __name__ == "__main__":
    main()
