#!/usr/bin/env bash
# Run a real Label Studio 1.23.2 server locally (SQLite, no Docker) for tests fed live.
#
# Usage: infra/labelstudio/harness.sh {install|start|stop|restart|status|token|logs [-f]|smoke [args]}
#   install  run install.sh (idempotent)
#   start    install if needed, start Label Studio in the background on 127.0.0.1:$LS_PORT, wait
#            (bounded) until /health answers, create the admin user if missing.
#            Already healthy -> says so, exit 0. A port held by something else -> error (the
#            server itself would silently move to the next free port).
#   stop     stop the server and its whole process tree
#   status   exit 0 when healthy
#   token    print the admin's personal access token (created once, then reused; ls_token.py)
#   logs     tail of the server log (-f to follow)
#   smoke    smoke.py with the server's venv: project, 3 s3:// tasks, list, delete, S3 storage
#
# Environment:
#   MEDIA_INGEST_CACHE   default ~/.cache/media-ingest; everything lives in label-studio-1.23.2/ there
#   LS_PORT              default 8480; any other port keeps its own state (data, log, pid,
#                        password, token) in <home>/port-<PORT>/, so servers run side by side
#   LS_START_TIMEOUT     seconds, default 180 (a first start applies ~36 s of migrations here)
#   LS_ADMIN_EMAIL       default admin@localhost; the password is generated once into
#                        <home>/admin-password (mode 600)
#   LS_S3_ENDPOINT       e.g. http://127.0.0.1:5055: the endpoint S3 storages use when they
#                        name none (Label Studio's operator setting S3_ENDPOINT, trusted)
#   LS_SSRF_PROTECTION   default true; false lets a storage's own s3_endpoint name a loopback
#                        address (Label Studio refuses local addresses otherwise)
#   LS_LOCAL_FILES_ROOT  default <home>/files: the root local-files storages may serve
# The server gets a clean environment (env -i): Label Studio reads plain HOST, PORT,
# USERNAME, PASSWORD, ... as settings when no LABEL_STUDIO_-prefixed one is set.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${MEDIA_INGEST_CACHE:-$HOME/.cache/media-ingest}"
LS_HOME="$CACHE/label-studio-1.23.2"
VENV="$LS_HOME/venv"
PORT="${LS_PORT:-8480}"
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "LS_PORT must be a number, not '$PORT'" >&2; exit 2; }
# Any port but the default keeps its own state (data, log, pid, password, token) beside the
# shared venv, so two servers run side by side without sharing one SQLite file.
STATE="$LS_HOME"
[[ "$PORT" == 8480 ]] || STATE="$LS_HOME/port-$PORT"
DATA_DIR="$STATE/data"
LOG_FILE="$STATE/server.log"
PID_FILE="$STATE/server.pid"
PASSWORD_FILE="$STATE/admin-password"
TOKEN_FILE="$STATE/token"
URL="http://127.0.0.1:$PORT"
START_TIMEOUT="${LS_START_TIMEOUT:-180}"
ADMIN_EMAIL="${LS_ADMIN_EMAIL:-admin@localhost}"
FILES_ROOT="${LS_LOCAL_FILES_ROOT:-$STATE/files}"

say() { printf '[labelstudio] %s\n' "$*" >&2; }

fail() {
  say "ERROR: $*"
  say "log: $LOG_FILE (last 40 lines below)"
  tail -n 40 "$LOG_FILE" >&2 2>/dev/null || true
  exit 1
}

healthy() { curl -sf --max-time 3 "$URL/health" 2>/dev/null | grep -q '"UP"'; }

pid_alive() { [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

descendants() {  # all processes below $1
  local kids
  kids="$(ps -o pid= --ppid "$1" 2>/dev/null || true)"
  for k in $kids; do echo "$k"; descendants "$k"; done
}

ensure_password() {
  if [[ ! -s "$PASSWORD_FILE" ]]; then
    mkdir -p "$STATE"
    (umask 077; "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(18))' > "$PASSWORD_FILE")
  fi
}

# The server's environment, also used for its management commands (ls_token.py fallback).
server_env() {
  local -a e=(
    "PATH=$VENV/bin:/usr/local/bin:/usr/bin:/bin" "HOME=$HOME" "LANG=C.UTF-8"
    "LABEL_STUDIO_BASE_DATA_DIR=$DATA_DIR"
    "LABEL_STUDIO_HOST=$URL"
    "LABEL_STUDIO_LATEST_VERSION_CHECK=false"
    "LABEL_STUDIO_COLLECT_ANALYTICS=false"
    "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK=true"
    "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true"
    "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=$FILES_ROOT"
    "LABEL_STUDIO_SSRF_PROTECTION_ENABLED=${LS_SSRF_PROTECTION:-true}"
    "LABEL_STUDIO_USERNAME=$ADMIN_EMAIL"
    "LABEL_STUDIO_PASSWORD=$(cat "$PASSWORD_FILE")"
  )
  [[ -z "${LS_S3_ENDPOINT:-}" ]] || e+=("LABEL_STUDIO_S3_ENDPOINT=$LS_S3_ENDPOINT")
  # Credentials for storages that name none (moto and LocalStack accept any).
  [[ -z "${AWS_ACCESS_KEY_ID:-}" ]] || e+=("AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID")
  [[ -z "${AWS_SECRET_ACCESS_KEY:-}" ]] || e+=("AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY")
  printf '%s\n' "${e[@]}"
}

run_in_server_env() {
  local -a e
  mapfile -t e < <(server_env)
  env -i "${e[@]}" "$@"
}

cmd_install() { "$HERE/install.sh"; }

cmd_start() {
  if healthy; then say "already running and healthy at $URL"; return 0; fi
  if pid_alive; then
    say "Label Studio (pid $(cat "$PID_FILE")) is starting or unhealthy; waiting for it"
  else
    port_taken && fail "port $PORT is taken by something that is not a healthy Label Studio (set LS_PORT)"
    "$HERE/install.sh" 2>&1 | sed 's/^/  /' >&2
    ensure_password
    mkdir -p "$DATA_DIR" "$FILES_ROOT"
    : > "$LOG_FILE"
    # setsid: the server leads its own process group, so stop takes the whole tree.
    # --internal-host: the default is 0.0.0.0. The username and password come from the
    # environment (not argv), which also creates the user on a first start.
    (
      cd "$STATE"
      mapfile -t e < <(server_env)
      exec env -i "${e[@]}" setsid "$VENV/bin/label-studio" start --no-browser \
        --internal-host 127.0.0.1 --port "$PORT" --data-dir "$DATA_DIR" --log-level WARNING
    ) >>"$LOG_FILE" 2>&1 </dev/null &
    echo $! > "$PID_FILE"
    say "started pid $(cat "$PID_FILE"), log $LOG_FILE"
  fi
  local deadline=$((SECONDS + START_TIMEOUT)) t0=$SECONDS
  while ((SECONDS < deadline)); do
    pid_alive || fail "Label Studio exited during startup"
    if healthy; then say "ready at $URL in $((SECONDS - t0))s"; return 0; fi
    sleep 1
  done
  fail "not healthy after ${START_TIMEOUT}s"
}

cmd_stop() {
  if ! pid_alive; then say "not running"; rm -f "$PID_FILE"; return 0; fi
  local pid tree
  pid="$(cat "$PID_FILE")"
  tree="$(descendants "$pid")"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  for p in $tree; do kill -KILL "$p" 2>/dev/null || true; done
  rm -f "$PID_FILE"
  say "stopped (pid $pid and its process tree)"
}

cmd_status() {
  if healthy; then say "healthy at $URL (pid $(cat "$PID_FILE" 2>/dev/null || echo '?'), log $LOG_FILE)"; return 0; fi
  if pid_alive; then say "running (pid $(cat "$PID_FILE")) but not healthy"; else say "not running"; fi
  return 1
}

cmd_token() {
  healthy || fail "not running at $URL (harness.sh start)"
  ensure_password
  run_in_server_env "$VENV/bin/python" "$HERE/ls_token.py" --url "$URL" --email "$ADMIN_EMAIL" \
    --password-file "$PASSWORD_FILE" --token-file "$TOKEN_FILE"
}

cmd_logs() {
  [[ -f "$LOG_FILE" ]] || { say "no log yet ($LOG_FILE)"; return 1; }
  if [[ "${1:-}" == "-f" ]]; then tail -n 100 -f "$LOG_FILE"; else tail -n 200 "$LOG_FILE"; fi
}

cmd_smoke() {
  local token
  token="$(cmd_token)"
  LABEL_STUDIO_URL="$URL" LABEL_STUDIO_API_KEY="$token" "$VENV/bin/python" "$HERE/smoke.py" "$@"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  token) cmd_token ;;
  logs) shift; cmd_logs "$@" ;;
  smoke) shift; cmd_smoke "$@" ;;
  *) echo "usage: $0 {install|start|stop|restart|status|token|logs [-f]|smoke [args]}" >&2; exit 2 ;;
esac
