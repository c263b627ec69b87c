#!/usr/bin/env bash
# Sets Shimmy up on a fresh machine: Debian's chromium (the browser the playground's tests drive;
# skipped when one is on PATH or SHIMMY_CHROMIUM names one), then `npm ci` (which builds Shimmy).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SHIMMY_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y --no-install-recommends chromium || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends chromium; }
fi
npm ci
