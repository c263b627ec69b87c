#!/usr/bin/env bash
# Builds node-llama-cpp's binding with OpenMP from the llama.cpp sources it ships in its npm package
# (a git bundle; nothing is downloaded). scripts/setup.sh runs it; the server then takes this build
# on a machine without a GPU (SHIMMY_BUILD=auto; src/services/LlamaRuntime.ts, chooseBuild): the
# prebuilt binary starts a thread for every decode on several threads, and on a 2-core VM enough of
# them landed on a busy core to make a second thread a loss (BENCHMARKS.md, sixth run).
# `npm run clean:llama` removes it. CPU flags are explicit, never -march=native: some VMs advertise
# AMX without enabling it, and a native build then dies with SIGILL in ggml's AMX kernel (see
# scripts/build-llama-server.sh). Needs cmake, a C++ compiler and git; ~7 minutes on 2 cores.
# The build is kept in ~/.cache/shimmy (by llama.cpp release, node-llama-cpp version and CPU flags)
# and copied back after a later `npm ci`, which empties node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
# the release of the sources in the package (llama.cpp.info.json goes with `npm run clean:llama`)
release=$(node -p 'const fs = require("fs"), d = "node_modules/node-llama-cpp/llama/";
  fs.existsSync(d + "llama.cpp.info.json") ? JSON.parse(fs.readFileSync(d + "llama.cpp.info.json", "utf8")).tag
    : JSON.parse(fs.readFileSync(d + "binariesGithubRelease.json", "utf8")).release')
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { [[ " $flags " == *" $1 "* ]] && echo ON || echo OFF; }
export NODE_LLAMA_CPP_CMAKE_OPTION_GGML_OPENMP=ON NODE_LLAMA_CPP_CMAKE_OPTION_GGML_NATIVE=OFF
export NODE_LLAMA_CPP_CMAKE_OPTION_GGML_AVX="$(has avx)" NODE_LLAMA_CPP_CMAKE_OPTION_GGML_AVX2="$(has avx2)"
export NODE_LLAMA_CPP_CMAKE_OPTION_GGML_FMA="$(has fma)" NODE_LLAMA_CPP_CMAKE_OPTION_GGML_F16C="$(has f16c)"
export NODE_LLAMA_CPP_CMAKE_OPTION_GGML_AVX_VNNI="$(has avx_vnni)" NODE_LLAMA_CPP_CMAKE_OPTION_GGML_AVX512="$(has avx512f)"
export NODE_LLAMA_CPP_CMAKE_OPTION_GGML_AVX512_VBMI="$(has avx512vbmi)"
export NODE_LLAMA_CPP_CMAKE_OPTION_GGML_AVX512_VNNI="$(has avx512_vnni)"
export NODE_LLAMA_CPP_CMAKE_OPTION_GGML_AVX512_BF16="$(has avx512_bf16)"
export NODE_LLAMA_CPP_CMAKE_OPTION_GGML_AMX_TILE=OFF NODE_LLAMA_CPP_CMAKE_OPTION_GGML_AMX_INT8=OFF
export NODE_LLAMA_CPP_CMAKE_OPTION_GGML_AMX_BF16=OFF
key=$(printf '%s\n' "$release" "$(node -p 'JSON.parse(require("fs").readFileSync("node_modules/node-llama-cpp/package.json", "utf8")).version')" \
  "$(env | grep '^NODE_LLAMA_CPP_CMAKE_OPTION_' | sort)" | sha256sum | cut -c1-16)
llama=node_modules/node-llama-cpp/llama
cache="${XDG_CACHE_HOME:-$HOME/.cache}/shimmy/llama-local-$key"
# the sources (a clone of the package's git bundle, ~15 s): the build reads its grammars from them
npx --no node-llama-cpp source download --release "$release" --skipBuild --gpu false
if [ -f "$cache/lastBuild.json" ] && [ -d "$cache/localBuilds" ]; then
  mkdir -p "$llama/localBuilds"
  cp -a "$cache/localBuilds/." "$llama/localBuilds/"
  cp "$cache/lastBuild.json" "$llama/lastBuild.json"
  echo "llama.cpp local build: restored from $cache"
  exit 0
fi
npx --no node-llama-cpp source build --gpu false --noUsageExample
rm -rf "$cache.tmp"
mkdir -p "$cache.tmp"
cp -a "$llama/localBuilds" "$llama/lastBuild.json" "$cache.tmp/"
rm -rf "$cache"
mv "$cache.tmp" "$cache"
echo "llama.cpp local build: built, and kept in $cache"
