// llama.cpp's own server and batch bench, built by scripts/build-llama-server.sh from the sources
// inside node-llama-cpp's npm package, for the side-by-side figures of scripts/bench.mjs.
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** The folder with llama-server and llama-batched-bench: `dir` if given, else built (or found cached). */
export const binaries = (dir) => {
  if (dir !== undefined && dir !== true) return path.resolve(dir)
  const built = spawnSync("bash", [path.join(root, "scripts/build-llama-server.sh")], {
    cwd: root,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"]
  })
  if (built.status !== 0) throw new Error("scripts/build-llama-server.sh failed")
  return built.stdout.trim().split("\n").pop()
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })

/**
 * Starts llama-server on a free port with `threads` threads and `parallel` slots of `contextSize`
 * tokens each (its `-c` is the total); resolves once `/health` answers 200.
 */
export const start = async ({ bin, gguf, threads, parallel, contextSize, alias }) => {
  const port = await freePort()
  const child = spawn(path.join(bin, "llama-server"), [
    "-m",
    gguf,
    "--alias",
    alias,
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "-t",
    String(threads),
    "-tb",
    String(threads),
    "--parallel",
    String(parallel),
    "-c",
    String(parallel * contextSize),
    "--no-webui"
  ], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LD_LIBRARY_PATH: bin } })
  let output = ""
  child.stdout.on("data", (d) => (output += d))
  child.stderr.on("data", (d) => (output += d))
  const exited = new Promise((resolve) => child.once("exit", resolve))
  const url = `http://127.0.0.1:${port}`
  const started = performance.now()
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`llama-server exited (${child.exitCode ?? child.signalCode}):\n${output.slice(-4000)}`)
    }
    try {
      if ((await fetch(`${url}/health`)).status === 200) break
    } catch {
      // not listening yet
    }
    if (performance.now() - started > 120000) throw new Error(`llama-server: no healthy answer in 120 s`)
    await new Promise((r) => setTimeout(r, 20))
  }
  return {
    url,
    pid: child.pid,
    stop: async () => {
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 10000)
      await exited
      clearTimeout(timer)
    }
  }
}

/**
 * The engine's own limit: `llama-batched-bench` with 16 prompt and `tokens` generated tokens per
 * sequence, for each K in `ks`; generated tokens/s (its S_TG column) by K.
 */
export const batchedBench = ({ bin, gguf, threads, ks, tokens }) => {
  const maxK = Math.max(...ks)
  const r = spawnSync(path.join(bin, "llama-batched-bench"), [
    "-m",
    gguf,
    "-c",
    String(Math.max(2048, maxK * (16 + tokens) + 64)),
    "-b",
    "2048",
    "-ub",
    "512",
    "-npp",
    "16",
    "-ntg",
    String(tokens),
    "-npl",
    ks.join(","),
    "-t",
    String(threads),
    "-tb",
    String(threads)
  ], { encoding: "utf8", env: { ...process.env, LD_LIBRARY_PATH: bin }, maxBuffer: 16 * 1048576 })
  if (r.status !== 0) throw new Error(`llama-batched-bench failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`)
  const out = {}
  for (const line of `${r.stdout}\n${r.stderr}`.split("\n")) {
    const cells = line.split("|").map((c) => c.trim()).filter((c) => c.length > 0)
    if (cells.length === 10 && /^\d+$/.test(cells[2])) out[Number(cells[2])] = Number(cells[7])
  }
  return out
}

export const exists = (bin) =>
  fs.existsSync(path.join(bin, "llama-server")) && fs.existsSync(path.join(bin, "llama-batched-bench"))
