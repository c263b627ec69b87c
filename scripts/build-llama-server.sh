#!/usr/bin/env bash
# Builds llama-server and llama-batched-bench, for the side-by-side bench (`npm run bench --
# --llama-server`), from the llama.cpp sources node-llama-cpp carries in its npm package (a git
# bundle: the exact commit of the binary Shimmy runs; nothing is downloaded). Cached outside
# node_modules, in $SHIMMY_LLAMA_CACHE (default ~/.cache/shimmy), keyed by that commit; a second
# run only prints where the binaries are.
#
# CPU flags are explicit, never -march=native: some VMs advertise AMX without enabling it, and a
# native build (or the sapphirerapids variant of a GGML_CPU_ALL_VARIANTS build) then dies with
# SIGILL in ggml's AMX kernel. AVX-512 is used where /proc/cpuinfo lists it. OpenMP on, as in
# llama.cpp's own releases. Needs cmake, a C++ compiler and git; about 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=node_modules/node-llama-cpp/llama/gitRelease.bundle
[ -f "$bundle" ] || { echo "no $bundle: run npm ci first" >&2; exit 1; }
cache=${SHIMMY_LLAMA_CACHE:-$HOME/.cache/shimmy}
commit=$(git bundle list-heads "$bundle" | head -1 | cut -c1-12)
src="$cache/llama.cpp-$commit"
out="$src/build/bin"
if [ -x "$out/llama-server" ] && [ -x "$out/llama-batched-bench" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$cache"
if [ ! -d "$src/.git" ]; then
  rm -rf "$src"
  git -c advice.detachedHead=false clone -q "$bundle" "$src"
fi

flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { [[ " $flags " == *" $1 "* ]] && echo ON || echo OFF; }
options=(
  -DGGML_NATIVE=OFF -DGGML_OPENMP=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release
  -DGGML_AVX="$(has avx)" -DGGML_AVX2="$(has avx2)" -DGGML_FMA="$(has fma)" -DGGML_F16C="$(has f16c)"
  -DGGML_AVX_VNNI="$(has avx_vnni)"
  -DGGML_AVX512="$(has avx512f)" -DGGML_AVX512_VBMI="$(has avx512vbmi)"
  -DGGML_AVX512_VNNI="$(has avx512_vnni)" -DGGML_AVX512_BF16="$(has avx512_bf16)"
  # never AMX: see above
  -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
)
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
cmake -S "$src" -B "$src/build" "${generator[@]}" "${options[@]}" > "$src/build.log"
cmake --build "$src/build" --target llama-server llama-batched-bench -j "$(nproc)" >> "$src/build.log"
echo "$out"
