#!/usr/bin/env node
// CommonJS (bin/package.json), so that this runs before Node reads any ES module: its loader
// reads them on libuv's thread pool, which takes its size from UV_THREADPOOL_SIZE when first used.
// node-llama-cpp runs every decode and sampling on that pool, and on more threads than the one
// set here a decode on several threads is far slower (BENCHMARKS.md).
if (process.env.UV_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = "1"
// the command as one bundled file (scripts/build-cli.mjs, run by `npm run build`)
import("../dist/cli/shimmy.js")
