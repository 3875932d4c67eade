#!/usr/bin/env python3
"""An HTTP workload for underling, with the standard library only.

underling-worker POSTs each job as a CloudEvent (structured JSON mode) to this server:

- `example.upper` is sync: the answer is the outcome (200 and a JSON body: the job finishes
  with it as its result; a 4xx fails it for good; a 5xx is retried).
- `example.wordcount` is async: it answers 202 at once, counts in a thread, and reports the
  result later with POST /api/v1/jobs/{id}/ack, quoting the event's `underlingtoken`.

Environment: PORT (default 8781), UNDERLING_URL (the `underling serve` API, default
http://127.0.0.1:8474), UNDERLING_TOKEN (its token, if it has one), WORKLOAD_SECRET (the
bearer token the worker must send, as workloads.toml sets it from the same variable).
"""

import hmac
import json
import os
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "8781"))
UNDERLING_URL = os.environ.get("UNDERLING_URL", "http://127.0.0.1:8474").rstrip("/")
UNDERLING_TOKEN = os.environ.get("UNDERLING_TOKEN")
SECRET = os.environ.get("WORKLOAD_SECRET")


def report(job_id, action, body):
    """POST an ack (or reject, or extend) of a leased job to underling's API."""
    request = urllib.request.Request(
        f"{UNDERLING_URL}/api/v1/jobs/{job_id}/{action}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if UNDERLING_TOKEN:
        request.add_header("Authorization", f"Bearer {UNDERLING_TOKEN}")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def count_words_later(event):
    """The async job's work, after the 202: count, then ack with the result."""
    time.sleep(0.2)
    words = len(str(event["data"].get("text", "")).split())
    try:
        report(event["underlingjobid"], "ack", {"token": event["underlingtoken"], "result": {"words": words}})
    except Exception as e:  # the lease runs out and the job is retried
        print(f"ack of job {event['underlingjobid']} failed: {e}", file=sys.stderr)


class Workload(BaseHTTPRequestHandler):
    def answer(self, status, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if SECRET is not None:
            given = self.headers.get("Authorization", "")
            if not hmac.compare_digest(given, f"Bearer {SECRET}"):
                return self.answer(401, {"error": "bad token"})
        if self.headers.get("Content-Type") != "application/cloudevents+json":
            return self.answer(415, {"error": "expected a CloudEvent in structured mode"})
        length = int(self.headers.get("Content-Length", "0"))
        event = json.loads(self.rfile.read(length))
        task, data = event["type"], event.get("data") or {}
        if task == "example.upper":
            if not isinstance(data.get("text"), str):
                return self.answer(422, {"error": "text must be a string"})  # failed for good
            return self.answer(200, {"text": data["text"].upper()})
        if task == "example.wordcount":
            threading.Thread(target=count_words_later, args=(event,), daemon=True).start()
            return self.answer(202)
        return self.answer(404, {"error": f"unknown task {task}"})

    def log_message(self, fmt, *args):
        print(f"workload: {fmt % args}", file=sys.stderr)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Workload)
    print(f"workload listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()
