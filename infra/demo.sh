#!/usr/bin/env bash
# The main job, locally: start LocalStack, deploy template.yaml to it, drop a generated
# sample set into the drop bucket, wait for every outcome and show them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source infra/localenv.sh
echo "[demo] starting LocalStack (host mode; installs itself on first use)"
bash infra/localstack/harness.sh start
echo "[demo] deploying stack $MEDIA_INGEST_STACK to LocalStack"
bash infra/deploy.sh "$MEDIA_INGEST_STACK"
.venv/bin/python infra/demo.py
echo "[demo] LocalStack keeps running for you to explore (AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL):"
echo "         source infra/localenv.sh && .venv/bin/media-ingest status"
echo "       stop it with: make localstack-stop"
