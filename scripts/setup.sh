#!/usr/bin/env bash
# Sets Shimmy up on a fresh machine: Debian's chromium (the browser the playground's tests drive;
# scripts/install-chromium.sh, which does nothing when one is there), then `npm ci` (which builds Shimmy).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-chromium.sh
npm ci
