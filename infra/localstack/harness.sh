#!/usr/bin/env bash
# Run the project's LocalStack in host mode (no Docker engine), Lambda functions as local processes.
#
# Usage: infra/localstack/harness.sh {install|start|stop|restart|status|logs [-f]}
#   install  run install.sh (idempotent)
#   start    install if needed, start LocalStack in the background on 127.0.0.1:$LOCALSTACK_PORT, wait
#            (bounded) until it and the services the project uses are up, warm DynamoDB Local.
#            Already healthy -> says so, exit 0.
#   stop     stop LocalStack and its whole process tree (DynamoDB Local, function processes)
#   status   health summary; exit 0 when healthy
#   logs     tail of the LocalStack log (-f to follow)
#   test     the executor plugin's own tests (unit, bridge, and live ones against LocalStack)
#
# Environment: MEDIA_INGEST_CACHE (default ~/.cache/media-ingest), LOCALSTACK_PORT (default
# 4566; any other port gets its own home, see install.sh, so two instances run side by side
# without sharing venvs, state, temporary files or the executor build), LOCALSTACK_START_TIMEOUT
# (seconds, default 120), LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT (seconds a function process may
# take to start, default 90 rather than LocalStack's 20: a first cold start on a busy
# two-core machine can take longer, and a failed start returns the batch to the queue for
# the whole visibility timeout), LAMBDA_PROCESS_MEMORY_LIMIT (auto|cgroup|watchdog|off, how the
# process executor enforces MemorySize, see README.md), LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC
# (default 0: an SQS event source polls again as soon as a batch is done, as AWS's pollers do;
# LocalStack's own default waits 1 s after every batch, which caps a queue at about one batch a
# second). Project code only needs
# AWS_ENDPOINT_URL=http://127.0.0.1:$LOCALSTACK_PORT.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="${LOCALSTACK_PORT:-4566}"
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "LOCALSTACK_PORT must be a number, not '$PORT'" >&2; exit 2; }
LS_HOME="$("$HERE/install.sh" --print-home)"
VENV="$LS_HOME/venv"
LOG_FILE="$LS_HOME/localstack.log"
PID_FILE="$LS_HOME/localstack.pid"
ENDPOINT="http://127.0.0.1:$PORT"
SERVICES="s3 sqs lambda dynamodb cloudformation iam sts logs events"
START_TIMEOUT="${LOCALSTACK_START_TIMEOUT:-120}"

say() { printf '[localstack] %s\n' "$*" >&2; }

health_json() { curl -sf --max-time 3 "$ENDPOINT/_localstack/health" 2>/dev/null; }

# Prints the services not yet available/running; exit 0 when all are up.
services_missing() {
  health_json | python3 -c '
import json, sys
want = sys.argv[1].split()
try:
    services = json.load(sys.stdin).get("services", {})
except ValueError:
    print("health endpoint not answering"); sys.exit(1)
missing = [s for s in want if services.get(s) not in ("available", "running")]
print(" ".join(missing)); sys.exit(1 if missing else 0)' "$SERVICES"
}

pid_alive() {
  [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

descendants() {  # all processes below $1
  local kids
  kids="$(ps -o pid= --ppid "$1" 2>/dev/null || true)"
  for k in $kids; do echo "$k"; descendants "$k"; done
}

# Processes of this installation left behind by a LocalStack that did not stop cleanly
# (killed with SIGKILL): DynamoDB Local runs in its own session, so it outlives it.
# Only orphans (parent 1) whose command line names this installation are matched.
orphans() {
  local pid cmd
  for pid in $(ps -eo pid=,ppid= | awk '$2 == 1 {print $1}'); do
    cmd="$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)"
    case "$cmd" in
      *"$LS_HOME/"*|*"/var/lib/localstack/lib/dynamodb-local/"*) echo "$pid" ;;
    esac
  done
}

reap_orphans() {
  local left
  left="$(orphans)"
  [[ -n "$left" ]] || return 0
  say "killing processes left by an earlier LocalStack: $(echo $left)"
  kill -KILL $left 2>/dev/null || true
}

# The process executor's memory cgroups (memory.py: media-ingest-lambda.<LocalStack pid>/ in
# LocalStack's own cgroup). LocalStack removes its folder when it exits; after a SIGKILL the
# folder stays (empty once its processes are gone) until removed here or by the next start.
reap_cgroups() {  # pid
  [[ -n "${1:-}" ]] || return 0
  local dir
  for dir in $(find /sys/fs/cgroup -maxdepth 8 -type d -name "media-ingest-lambda.$1" 2>/dev/null); do
    find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

fail() {
  say "ERROR: $*"
  say "log: $LOG_FILE (last 40 lines below)"
  tail -n 40 "$LOG_FILE" >&2 2>/dev/null || true
  exit 1
}

warm_dynamodb() {
  # DynamoDB Local (Java) starts on the first DynamoDB call: pay that here, not in a test.
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
  "$VENV/bin/python" - "$ENDPOINT" <<'EOF'
import sys, boto3
from botocore.config import Config
ddb = boto3.client("dynamodb", endpoint_url=sys.argv[1],
                   config=Config(read_timeout=90, retries={"max_attempts": 2}))
ddb.list_tables()
EOF
}

cmd_install() { "$HERE/install.sh"; }

cmd_start() {
  if services_missing >/dev/null 2>&1; then
    say "already running and healthy at $ENDPOINT"; return 0
  fi
  if pid_alive; then
    say "LocalStack (pid $(cat "$PID_FILE")) is starting or unhealthy; waiting for it"
  else
    if curl -s --max-time 2 -o /dev/null "$ENDPOINT" 2>/dev/null; then
      fail "something else answers on $ENDPOINT but is not a healthy LocalStack"
    fi
    reap_orphans
    "$HERE/install.sh" 2>&1 | sed 's/^/  /' >&2
    mkdir -p "$LS_HOME"
    : > "$LOG_FILE"
    # Nothing LocalStack keeps survives a restart, so nothing derived from it may either:
    # unzipped code and merged layer sets from an earlier run (keyed by ids a fresh LocalStack
    # hands out again) would otherwise be run in place of what is deployed now.
    rm -rf "$LS_HOME/tmp/lambda"
    mkdir -p "$LS_HOME/tmp"
    # setsid: LocalStack leads its own process group, so stop can take the whole tree.
    # Function processes (own groups) die with it through their watchdog pipe.
    # TMPDIR: LocalStack's tmp dir ($TMPDIR/localstack, wiped at start and stop, holding
    # DynamoDB Local's tables), unzipped function code and the executor's work dir all
    # derive from it, so each home keeps them apart from any other instance's.
    (
      cd "$LS_HOME"
      exec env GATEWAY_LISTEN="127.0.0.1:$PORT" LOCALSTACK_HOST="127.0.0.1:$PORT" \
        TMPDIR="$LS_HOME/tmp" \
        SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 DNS_ADDRESS=0 \
        SQS_ENDPOINT_STRATEGY=dynamic \
        LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT="${LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT:-90}" \
        LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC="${LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC:-0}" \
        LAMBDA_RUNTIME_EXECUTOR=process LAMBDA_PROCESS_RUNTIME_VENV="$LS_HOME/runtime-venv" \
        setsid "$VENV/bin/python" -m localstack.runtime.main
    ) >>"$LOG_FILE" 2>&1 </dev/null &
    echo $! > "$PID_FILE"
    say "started pid $(cat "$PID_FILE"), log $LOG_FILE"
  fi
  local deadline=$((SECONDS + START_TIMEOUT)) missing=""
  while ((SECONDS < deadline)); do
    pid_alive || fail "LocalStack exited during startup"
    if missing="$(services_missing 2>/dev/null)"; then
      warm_dynamodb >>"$LOG_FILE" 2>&1 || fail "DynamoDB Local did not answer (see log)"
      say "ready at $ENDPOINT ($SERVICES) in ${SECONDS}s"
      return 0
    fi
    sleep 1
  done
  fail "not healthy after ${START_TIMEOUT}s (waiting for: ${missing:-health endpoint})"
}

cmd_stop() {
  if ! pid_alive; then
    reap_orphans
    reap_cgroups "$(cat "$PID_FILE" 2>/dev/null || true)"
    say "not running"; rm -f "$PID_FILE"; return 0
  fi
  local pid tree
  pid="$(cat "$PID_FILE")"
  tree="$(descendants "$pid")"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  # anything of the tree that left the group (function processes have their own session)
  for p in $tree; do kill -KILL "$p" 2>/dev/null || true; done
  reap_orphans
  reap_cgroups "$pid"
  rm -f "$PID_FILE"
  say "stopped (pid $pid and its process tree)"
}

cmd_status() {
  local missing
  if missing="$(services_missing 2>/dev/null)"; then
    say "healthy at $ENDPOINT (pid $(cat "$PID_FILE" 2>/dev/null || echo '?'), log $LOG_FILE)"
    health_json | python3 -c 'import json,sys; s=json.load(sys.stdin)["services"]; print(" ".join(f"{k}={v}" for k,v in sorted(s.items())))'
    return 0
  fi
  if pid_alive; then say "running (pid $(cat "$PID_FILE")) but not healthy: ${missing}"; else say "not running"; fi
  return 1
}

cmd_logs() {
  [[ -f "$LOG_FILE" ]] || { say "no log yet ($LOG_FILE)"; return 1; }
  if [[ "${1:-}" == "-f" ]]; then tail -n 100 -f "$LOG_FILE"; else tail -n 200 "$LOG_FILE"; fi
}

# The executor plugin's own tests, with LocalStack's interpreter (they import its classes).
cmd_test() {
  cmd_install
  "$VENV/bin/python" -m pytest -q -c "$HERE/pytest.ini" "$HERE/tests" "$@"
}

case "${1:-}" in
  install) cmd_install ;;
  test) shift; cmd_test "$@" ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  logs) shift; cmd_logs "$@" ;;
  *) echo "usage: $0 {install|start|stop|restart|status|logs [-f]|test [pytest args]}" >&2; exit 2 ;;
esac
