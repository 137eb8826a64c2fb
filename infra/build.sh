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
echo "layers built in $out:"
du -sh "$out/shared" "$out/ffprobe"
