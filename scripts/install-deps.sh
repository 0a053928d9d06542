#!/usr/bin/env bash
# Installs the system packages devatar needs (Debian/Ubuntu), only when something is missing.
# Usage: scripts/install-deps.sh [--test]   (--test adds what the test suite needs)
set -euo pipefail

need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if [ "${1:-}" = "--test" ]; then
  # The browser tests drive Debian's Chromium through its chromedriver (tests/it/ui_browser.rs).
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
  # The PostgreSQL pass of the suite creates a database per test folder with psql.
  command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
fi

if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  echo "Installing: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "Rust (cargo >= 1.95) is required: install it with rustup (https://rustup.rs), then re-run." >&2
  exit 3
fi
