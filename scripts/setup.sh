#!/usr/bin/env bash
# Sets Shimmy up on a fresh machine: Debian's chromium (the browser the playground's tests drive;
# scripts/install-chromium.sh, which does nothing when one is there), `npm ci` (which builds Shimmy),
# then llama.cpp with OpenMP from the sources inside node-llama-cpp's package (scripts/build-llama.sh:
# ~7 minutes on 2 cores the first time, then restored from ~/.cache/shimmy), which the server runs on
# a machine without a GPU. cmake and a C++ compiler come from apt when they are missing.
# SHIMMY_SKIP_LLAMA_BUILD=1 skips that build: the server then runs node-llama-cpp's prebuilt binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-chromium.sh
npm ci
if [ "${SHIMMY_SKIP_LLAMA_BUILD:-}" = "1" ]; then
  echo "llama.cpp local build: skipped (SHIMMY_SKIP_LLAMA_BUILD=1); the server runs the prebuilt binary"
  exit 0
fi
if ! command -v cmake >/dev/null || ! command -v c++ >/dev/null || ! command -v git >/dev/null; then
  if command -v apt-get >/dev/null; then
    bash scripts/apt-install.sh cmake g++ make git
  else
    echo "llama.cpp local build: skipped, no cmake, C++ compiler or git and no apt-get to install them;" \
      "the server runs the prebuilt binary (install them and run: npm run build:llama)" >&2
    exit 0
  fi
fi
bash scripts/build-llama.sh
