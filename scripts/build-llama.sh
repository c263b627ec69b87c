#!/usr/bin/env bash
# Optional: builds node-llama-cpp's binding with OpenMP from the llama.cpp sources it ships in its
# npm package (a git bundle; nothing is downloaded), for machines where the prebuilt binary's
# threads do not scale. node-llama-cpp then prefers this build; `npm run clean:llama` goes back to
# the prebuilt one. CPU flags are explicit, never -march=native: some VMs advertise AMX without
# enabling it, and a native build then dies with SIGILL in ggml's AMX kernel (see
# scripts/build-llama-server.sh). Needs cmake, a C++ compiler and git; ~25 minutes on 2 busy cores.
set -euo pipefail
cd "$(dirname "$0")/.."
release=$(node -p 'JSON.parse(require("fs").readFileSync("node_modules/node-llama-cpp/llama/llama.cpp.info.json", "utf8")).tag')
npx --no node-llama-cpp source download --release "$release" --skipBuild --gpu false
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
npx --no node-llama-cpp source build --gpu false --noUsageExample
