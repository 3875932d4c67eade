#!/usr/bin/env bash
# Checks Dockerfile and docker-compose.yml without a Docker engine (there is none here or in
# CI): `docker-compose config` (Debian's docker-compose, installed when missing) validates the
# Compose file against its schema and resolves it, and the resolved file and the Dockerfile are
# checked for what the project promises: PostgreSQL's port is not published, the worker's pool
# size is configurable and it has a healthcheck, dependencies are built in a layer of their
# own, and the image does not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker-compose >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi
resolved=$(mktemp)
trap 'rm -f "$resolved"' EXIT
docker-compose -f docker-compose.yml config > "$resolved"

python3 - "$resolved" <<'PY'
import re, sys, yaml
compose = yaml.safe_load(open(sys.argv[1]))
services = compose["services"]
problems = []
if services["postgres"].get("ports"):
    problems.append("postgres publishes a port on the host by default")
worker = services["worker"]
if "UNDERLING_POOL_SIZE" not in (worker.get("environment") or {}):
    problems.append("the worker's pool size (UNDERLING_POOL_SIZE) is not set")
if not (worker.get("healthcheck") or {}).get("test"):
    problems.append("the worker has no healthcheck")
dockerfile = open("Dockerfile").read()
if not re.search(r"^RUN cargo chef cook", dockerfile, re.M):
    problems.append("the Dockerfile builds no dependency-only layer (cargo chef cook)")
users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
if not users or users[-1] in ("root", "0"):
    problems.append("the final image runs as root")
for p in problems:
    print(f"check-docker: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
echo "docker-compose.yml and Dockerfile: ok"
