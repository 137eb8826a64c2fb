#!/usr/bin/env bash
# Sets up a fresh machine for development, tests and the demo: system packages (ffmpeg for
# the tests' media), the project's Python 3.13 virtual environment (.venv), pinned by
# constraints.txt, and the Lambda layer's ffprobe. Idempotent: a second run only checks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

need_apt=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || need_apt+=(ffmpeg)
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v npm >/dev/null || need_apt+=(npm)
command -v zip >/dev/null || need_apt+=(zip)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing system packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python=""
for candidate in "${PYTHON313:-}" python3.13 /root/.pyenv/versions/3.13.0/bin/python; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 \
     && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
    python=$(command -v "$candidate"); break
  fi
done
[ -n "$python" ] || { echo "setup: Python 3.13 not found (set PYTHON313=/path/to/python3.13)" >&2; exit 1; }

stamp=.venv/.media-ingest-stamp
want=$(cat pyproject.toml constraints.txt layers/label_studio/requirements.txt | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "creating .venv with $python"
  "$python" -m venv .venv
  # The machine's global pip constraints (if any) are not ours: ours are constraints.txt.
  log=.venv/pip-install.log
  if ! { PIP_CONSTRAINT="" .venv/bin/pip install --disable-pip-version-check --upgrade pip \
         && PIP_CONSTRAINT="" .venv/bin/pip install --disable-pip-version-check \
              -c constraints.txt -e ".[dev]" \
         && PIP_CONSTRAINT="" .venv/bin/pip install --disable-pip-version-check --no-deps \
              -c constraints.txt -r layers/label_studio/requirements.txt; } >"$log" 2>&1; then
    tail -40 "$log" >&2; echo "setup: pip install failed (full log: $log)" >&2; exit 1
  fi
  # label-studio-sdk (the sink's client) is installed as its Lambda layer has it: with the
  # distributions its client imports and --no-deps (layers/label_studio/requirements.txt
  # says why), so the tests and mypy see the code the sink runs.
  echo "$want" > "$stamp"
fi
# checkov (make lint) gets a venv of its own: its exact pins (boto3 among them) clash with
# constraints.txt. infra/checkov-constraints.txt pins it and everything it pulls in.
checkov_venv=.cache/checkov
checkov_stamp=$checkov_venv/.media-ingest-stamp
checkov_want=$(sha256sum infra/checkov-constraints.txt | cut -c1-16)
if [ ! -x "$checkov_venv/bin/checkov" ] || [ "$(cat "$checkov_stamp" 2>/dev/null)" != "$checkov_want" ]; then
  say "creating $checkov_venv (checkov, for make lint)"
  "$python" -m venv "$checkov_venv"
  log=$checkov_venv/pip-install.log
  if ! PIP_CONSTRAINT="" "$checkov_venv/bin/pip" install --disable-pip-version-check \
       -c infra/checkov-constraints.txt checkov >"$log" 2>&1; then
    tail -40 "$log" >&2; echo "setup: checkov install failed (full log: $log)" >&2; exit 1
  fi
  echo "$checkov_want" > "$checkov_stamp"
fi
# The ffprobe the Lambda layer ships (pinned, checked): the tests probe with it, not with the
# system's (tests/conftest.py). Idempotent: a present binary with the pinned hash is kept.
PYTHON=.venv/bin/python bash layers/ffprobe/build.sh build/layers/ffprobe 2>&1 | grep -v "already present" >&2 || true
[ -x build/layers/ffprobe/bin/ffprobe ] || { echo "setup: the ffprobe layer build failed" >&2; exit 1; }
# The fast gate as the pre-commit hook, in a clone of the repository (not in a CI tarball).
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 \
   && [ "$(git config --get core.hooksPath || true)" != .githooks ]; then
  git config core.hooksPath .githooks
  say "pre-commit hook: make check (.githooks/pre-commit)"
fi
say "ready: .venv ($(.venv/bin/python --version)), ffmpeg $(ffmpeg -version | head -1 | cut -d' ' -f3), layer $(build/layers/ffprobe/bin/ffprobe -version | head -1 | cut -d' ' -f1-3)"
