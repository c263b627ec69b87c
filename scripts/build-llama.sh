#!/usr/bin/env bash
# Optional: builds llama.cpp with OpenMP from the sources node-llama-cpp ships in its npm package
# (a git bundle; nothing is downloaded), for machines where the prebuilt binary's threads do not
# scale. node-llama-cpp then prefers this build; `npm run clean:llama` goes back to the prebuilt one.
# Needs cmake, a C++ compiler and git; takes about 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
release=$(node -p 'JSON.parse(require("fs").readFileSync("node_modules/node-llama-cpp/llama/llama.cpp.info.json", "utf8")).tag')
npx --no node-llama-cpp source download --release "$release" --skipBuild
NODE_LLAMA_CPP_CMAKE_OPTION_GGML_OPENMP=ON npx --no node-llama-cpp source build --gpu false --noUsageExample
