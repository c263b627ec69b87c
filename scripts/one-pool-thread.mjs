// Imported first by the in-process scripts: they run with libuv's pool of one thread, as the server
// (bin/shimmy.js). The pool is sized when first used, and Node's ES module loader has used it before
// any line of a module runs, so without UV_THREADPOOL_SIZE the script runs again with it set.
import { spawnSync } from "node:child_process"

if (process.env.UV_THREADPOOL_SIZE === undefined) {
  const again = spawnSync(process.execPath, process.argv.slice(1), {
    stdio: "inherit",
    env: { ...process.env, UV_THREADPOOL_SIZE: "1" }
  })
  process.exit(again.status ?? 1)
}
