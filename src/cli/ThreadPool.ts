/**
 * Sizes libuv's thread pool before anything uses it (the first import of the command).
 *
 * node-llama-cpp runs every decode and every sampling as a job on that pool, and the job lands on
 * whichever of its threads is free. With libuv's default of 4 threads, a decode on several threads
 * is far slower: measured on 2 cores, node-llama-cpp's prebuilt binary, 4 sequences of bench-25m on
 * 2 threads made 267-446 tok/s with the default pool and 1057-1284 with a pool of 1 (bench-110m:
 * 152 against 282); the OpenMP build, 637 against 1396-1503 (BENCHMARKS.md). So the pool has one
 * thread unless UV_THREADPOOL_SIZE says otherwise. The cost: file-system calls wait for the decode
 * or sampling in progress (one batch of a prompt at most).
 */
if (process.env.UV_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = "1"
