#!/usr/bin/env bash
# The LocalStack part of the test command: start LocalStack and a real Label Studio, run the
# executor plugin's own tests and the stack's integration tests (one stack per worker,
# deployed in parallel on the one LocalStack), and stop both again, whatever happened, unless
# they were already running before.
#   LS_PORT: Label Studio's port (default 8480; infra/labelstudio/harness.sh keeps each port's
#   state apart). It is started with LocalStack as its S3 endpoint, so the S3 storages the
#   tests create resolve s3:// task URLs against LocalStack.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source infra/localenv.sh
export MEDIA_INGEST_STACK=media-ingest-it
harness=infra/localstack/harness.sh
ls_harness=infra/labelstudio/harness.sh
export LS_PORT=${LS_PORT:-8480}
was_running=0 ls_was_running=0
bash "$harness" status >/dev/null 2>&1 && was_running=1
bash "$ls_harness" status >/dev/null 2>&1 && ls_was_running=1
cleanup() {
  [ "$ls_was_running" = 1 ] || bash "$ls_harness" stop || true
  [ "$was_running" = 1 ] || bash "$harness" stop || true
}
trap cleanup EXIT
bash "$harness" start
# Installs Label Studio on first use (its own Python 3.12 venv, about 80 s), then starts it.
LS_S3_ENDPOINT="$AWS_ENDPOINT_URL" bash "$ls_harness" start
export LABEL_STUDIO_URL="http://127.0.0.1:$LS_PORT"
bash "$harness" test
# The tests deploy stacks of their own in parallel (one per worker, tests/integration/
# conftest.py); the layers they deploy are built once, here.
bash infra/build.sh >/dev/null
export MEDIA_INGEST_LAYERS_BUILT=1
.venv/bin/pytest -m integration tests/integration -n "${MEDIA_INGEST_IT_WORKERS:-2}" \
  --dist loadfile --durations=0
