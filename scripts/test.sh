#!/usr/bin/env bash
# Runs every test: the behaviour suite on SQLite and PostgreSQL, the worker and CLI end-to-end
# tests, and the doc tests. PostgreSQL is found at UNDERLING_TEST_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --workspace "$@"
