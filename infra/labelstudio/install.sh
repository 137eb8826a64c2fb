#!/usr/bin/env bash
# Install Label Studio 1.23.2 (the real server, from PyPI) into its own Python 3.12 venv.
#
# Its pins clash with the project's (label-studio-sdk 2.1.2 needs opencv-python-headless
# 4.12, which needs numpy<2.3; constraints.txt at the repository root pins numpy 2.5.5), so it
# never shares the project's .venv. The label-studio-sdk it pins (2.1.2) is installed here too:
# run SDK clients with this venv's python.
#
# Idempotent: the install is skipped when the venv exists and was built from the same
# constraints.txt (its hash is kept in the venv).
#
# Creates: ${MEDIA_INGEST_CACHE:-$HOME/.cache/media-ingest}/label-studio-1.23.2/venv
# Environment: MEDIA_INGEST_CACHE, LABEL_STUDIO_PYTHON (default /root/.pyenv/versions/3.12.1/bin/python)
#
# constraints.txt beside this script is `pip freeze --all` (less pip) of an install that
# starts; refresh it after changing LS_VERSION with: rm -rf <venv>; LS_NO_CONSTRAINTS=1 ./install.sh;
# <venv>/bin/pip freeze --all | grep -v '^pip==' > constraints.txt (then check the harness starts).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LS_VERSION="1.23.2"
CACHE="${MEDIA_INGEST_CACHE:-$HOME/.cache/media-ingest}"
LS_HOME="$CACHE/label-studio-$LS_VERSION"
VENV="$LS_HOME/venv"
PY="${LABEL_STUDIO_PYTHON:-/root/.pyenv/versions/3.12.1/bin/python}"
CONSTRAINTS="$HERE/constraints.txt"
MARKER="$VENV/.media-ingest-constraints"

log() { printf '[labelstudio-install] %s\n' "$*" >&2; }

want="$(sha256sum "$CONSTRAINTS" | cut -c1-16)"
if [[ -x "$VENV/bin/label-studio" && -f "$MARKER" && "$(cat "$MARKER")" == "$want" ]]; then
  log "label-studio $LS_VERSION already installed in $VENV"
  exit 0
fi

[[ -x "$PY" ]] || { log "Python 3.12 not found at $PY (set LABEL_STUDIO_PYTHON)"; exit 1; }
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
  || { log "$PY is not Python 3.12"; exit 1; }

mkdir -p "$LS_HOME"
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating venv $VENV"
  "$PY" -m venv "$VENV"
fi
rm -f "$MARKER"
args=("label-studio==$LS_VERSION")
[[ "${LS_NO_CONSTRAINTS:-}" == 1 ]] || args+=(-c "$CONSTRAINTS")
log "pip install ${args[*]} (about 1-2 minutes)"
start=$SECONDS
"$VENV/bin/pip" install -q --disable-pip-version-check "${args[@]}" 2>&1 \
  | grep -v "^WARNING: Location 'file://" >&2 || true
# (captured first: `pip show | grep -q` can die of SIGPIPE under pipefail)
shown="$("$VENV/bin/pip" show label-studio 2>/dev/null || true)"
grep -qx "Version: $LS_VERSION" <<<"$shown" \
  || { log "label-studio $LS_VERSION is not installed in $VENV after pip"; exit 1; }
"$VENV/bin/pip" check >&2 || { log "pip check failed in $VENV"; exit 1; }
echo "$want" > "$MARKER"
log "installed label-studio $LS_VERSION in $((SECONDS - start))s"
