#!/usr/bin/env bash
# Builds the Lambda layers into build/layers/: the shared package with its dependencies
# (Linux x86_64 wheels for CPython 3.13 up to glibc 2.34, as on Amazon Linux 2023, pinned by
# constraints.txt) and the ffprobe layer.
# Usage: infra/build.sh     (idempotent; rebuilds the shared layer each time, it is quick)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build/layers"
python=${PYTHON:-"$root/.venv/bin/python"}

shared="$out/shared/python"
rm -rf "$out/shared"
mkdir -p "$shared"
# boto3 is left to the Lambda runtime, which ships it; the layer would otherwise carry
# ~100 MB of botocore data (Lambda allows 250 MB for code and layers together).
grep -vE '^(boto3|botocore|s3transfer|urllib3|python-dateutil|six)==' "$root/constraints.txt" \
  > "$out/constraints-layer.txt"
PIP_CONSTRAINT="" "$python" -m pip install --quiet --disable-pip-version-check --no-warn-conflicts \
  --target "$shared" --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_34_x86_64 --implementation cp \
  --python-version 3.13 --only-binary=:all: --no-compile \
  -c "$out/constraints-layer.txt" \
  "aws-lambda-powertools[parser,tracer]" pydantic pydantic-settings pydicom pillow \
  2> >(grep -v "^WARNING: Location" >&2)
# Dependencies of our dependencies that the runtime ships too (aws-xray-sdk pulls botocore):
# a second, newer botocore in the layer would shadow the runtime's and mismatch its boto3.
(cd "$shared" && rm -rf boto3 boto3-* botocore botocore-* s3transfer s3transfer-* \
  urllib3 urllib3-* dateutil python_dateutil-* six.py six-* jmespath jmespath-*)
cp -R "$root/layers/shared/media_ingest" "$shared/"
# Operator tooling (the CLI and what only it uses) never ships in the layer: no function
# imports it (tests/unit/test_layout.py checks).
rm -rf "$shared/media_ingest/ops"
find "$shared" -name "__pycache__" -type d -prune -exec rm -rf {} +
rm -rf "$shared"/bin
# Ship bytecode: /opt is read-only on Lambda, so without it every cold start compiles
# pydantic, Powertools and our package again. unchecked-hash: zip extraction does not keep
# the source mtimes a timestamp-checked .pyc would be validated against.
"$python" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$shared" >/dev/null

bash "$root/layers/ffprobe/build.sh" "$out/ffprobe"

# The Label Studio sink's layer: label-studio-sdk and the distributions its client imports,
# --no-deps (layers/label_studio/requirements.txt says why), pinned by constraints.txt.
# Rebuilt only when its inputs change (about 30 s; it is 170 MB).
ls_layer="$out/label_studio"
ls_want=$(cat "$root/layers/label_studio/requirements.txt" "$out/constraints-layer.txt" | sha256sum | cut -c1-16)
if [ "$(cat "$ls_layer/.media-ingest-stamp" 2>/dev/null)" != "$ls_want" ]; then
  rm -rf "$ls_layer"
  mkdir -p "$ls_layer/python"
  PIP_CONSTRAINT="" "$python" -m pip install --quiet --disable-pip-version-check --no-warn-conflicts \
    --target "$ls_layer/python" --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_34_x86_64 --implementation cp \
    --python-version 3.13 --only-binary=:all: --no-compile --no-deps \
    -c "$out/constraints-layer.txt" -r "$root/layers/label_studio/requirements.txt" \
    2> >(grep -v "^WARNING: Location" >&2)
  # Test suites (pandas ships 18 MB of them, numpy 5 MB) are never imported.
  find "$ls_layer/python" -type d -name tests -prune -exec rm -rf {} +
  rm -rf "$ls_layer/python/bin"
  "$python" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$ls_layer/python" >/dev/null
  echo "$ls_want" > "$ls_layer/.media-ingest-stamp"
fi
# The sink's import path must be complete in the layers alone (Lambda has no site-packages
# of ours): import it with the shared layer and this layer, isolated from this venv, beside
# only what the Lambda runtime ships (boto3 and its dependencies).
runtime_sim="$out/.runtime-sim"
if [ ! -d "$runtime_sim/boto3" ]; then
  PIP_CONSTRAINT="" "$python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$runtime_sim" -c "$root/constraints.txt" \
    boto3 botocore jmespath s3transfer urllib3 python-dateutil six \
    2> >(grep -v "^WARNING: Location" >&2)
fi
"$python" -I -S -c "
import sys
sys.path[:0] = ['$ls_layer/python', '$shared', '$runtime_sim']
from label_studio_sdk import LabelStudio
from label_studio_sdk.label_interface.interface import LabelInterface
import media_ingest.adapters.label_studio, media_ingest.sinks.runner
client = LabelStudio(base_url='http://127.0.0.1:9', api_key='x')
client.projects, client.tasks
LabelInterface('<View><Image name=\"i\" value=\"\$image\"/></View>').objects
" || { echo "build: the Label Studio layer misses a module the sink imports" >&2; exit 1; }
# Lambda allows 250 MB (262,144,000 bytes) unzipped for a function's code and layers.
sink_bytes=$(du -sb "$shared" "$ls_layer/python" "$root/functions/sink" | awk '{s+=$1} END {print s}')
if [ "$sink_bytes" -gt 262144000 ]; then
  echo "build: the sink function's code and layers take $sink_bytes bytes, over Lambda's 262,144,000" >&2
  exit 1
fi

echo "layers built in $out (sink function with its layers: $((sink_bytes / 1048576)) MiB of 250):"
du -sh "$out/shared" "$out/ffprobe" "$ls_layer"
