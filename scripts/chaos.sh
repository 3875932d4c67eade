#!/usr/bin/env bash
# The chaos run (README, "Reliability"): worker processes SIGKILLed and replaced throughout,
# PostgreSQL crashed and restarted once, one worker's connection frozen and then cut, on a
# throw-away PostgreSQL cluster; then the record of every execution is judged. Exits non-zero
# if a job was lost or ran twice at the same time, or a worker exited on its own.
#
#   bash scripts/chaos.sh            # 20,000 jobs, 8 workers
#   bash scripts/chaos.sh --quick    # 3,000 jobs, 4 workers (CI)
#   bash scripts/chaos.sh --help     # every option (--seed, --jobs, --workers, --json, --keep)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p underling-worker -p underling-chaos
exec ./target/release/underling-chaos "$@"
