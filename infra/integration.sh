#!/usr/bin/env bash
# The LocalStack part of the test command: start LocalStack, run the executor plugin's own
# tests and the stack's integration tests (one stack per worker, deployed in parallel on the
# one LocalStack),
# and stop LocalStack again, whatever happened, unless it was already running before.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source infra/localenv.sh
export MEDIA_INGEST_STACK=media-ingest-it
harness=infra/localstack/harness.sh
was_running=0
bash "$harness" status >/dev/null 2>&1 && was_running=1
[ "$was_running" = 1 ] || trap 'bash "$harness" stop || true' EXIT
bash "$harness" start
bash "$harness" test
# The tests deploy stacks of their own in parallel (one per worker, tests/integration/
# conftest.py); the layers they deploy are built once, here.
bash infra/build.sh >/dev/null
export MEDIA_INGEST_LAYERS_BUILT=1
.venv/bin/pytest -m integration tests/integration -n "${MEDIA_INGEST_IT_WORKERS:-2}" \
  --dist loadfile --durations=0
