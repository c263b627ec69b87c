#!/usr/bin/env node
// Load benchmark of a Shimmy server (or any OpenAI-compatible server) against the in-process ceiling.
//
//   npm run bench -- [--model PATH] [--k 1,4,16] [--rounds N] [--tokens 128]
//                    [--transports json,sse,chat,ws,completions] [--threads N|auto] [--parallel N]
//                    [--context-size N] [--no-direct] [--direct-generation] [--json]   (--render FILE: tables of a saved --json)
//                    [--llama-server [BIN_DIR]] [--llama-threads 1,2] [--llama-parallel N]
//   npm run bench -- --url http://127.0.0.1:8080 --model NAME [--transports chat,completions]
//                    [--pid PID] [--gguf PATH]   (another server: llama-server, Ollama, ...)
//
// Starts `node bin/shimmy.js serve` on a free port with the model's directory, times start -> first
// 200 from /api/health and the first request (the model loads on it), then, for each transport and
// each K, runs rounds of K concurrent greedy requests of `--tokens` tokens (temperature 0; the
// synthetic models never stop early) with a prompt unique to each request ("0042 Once upon a time"),
// so neither another client's nor an earlier round's prefix is reused. The server is then stopped
// and scripts/bench-direct.mjs runs the same rounds straight on node-llama-cpp with the binary,
// threads, sequences and context size Shimmy's own code resolves from the same environment.
//
// --llama-server runs llama.cpp's llama-server (built from the sources inside node-llama-cpp's
// package by scripts/build-llama-server.sh, cached) side by side: one per --llama-threads setting,
// --llama-parallel slots (Shimmy's sequences by default) of Shimmy's context size, all started
// before the first round; every round of a cell runs on Shimmy, then on each llama-server, so
// drift in the machine's load reaches both. Each Shimmy transport is compared with llama-server's
// nearest one (json, sse, ws, completions: streamed /v1/completions; chat: streamed chat),
// against its best thread setting; llama-batched-bench gives the engine's own limit. The servers'
// decodes per generated token come from /api/health.
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import WebSocket from "ws"
import * as LlamaServer from "./llama-server.mjs"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const DEFAULT_MODEL = "synthetic/bench-25m.gguf"

// --- options ------------------------------------------------------------------------------------

const parseArgs = (argv) => {
  const o = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`)
    const [key, inline] = a.slice(2).split("=", 2)
    if (["json", "no-direct", "direct-generation", "help"].includes(key)) o[key] = true
    else if (key === "llama-server" && inline === undefined && (argv[i + 1] ?? "--").startsWith("--")) o[key] = true
    else o[key] = inline ?? argv[++i]
  }
  return o
}
const args = parseArgs(process.argv.slice(2))
if (args.help) {
  console.log(
    fs.readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").slice(1, 10).map((l) => l.slice(3)).join("\n")
  )
  process.exit(0)
}
const external = args.url !== undefined
const ks = (args.k ?? "1,4,16").split(",").map(Number)
const tokens = Number(args.tokens ?? 128)
const transports = (args.transports ?? (external ? "chat" : "json,sse,chat,ws")).split(",")
const fixedRounds = args.rounds === undefined ? undefined : Number(args.rounds)
const asJson = args.json === true
const log = (...xs) => asJson ? console.error(...xs) : console.log(...xs)

// what the server and the direct run read; options override the caller's environment
const env = {
  ...process.env,
  SHIMMY_DISCOVER_SYSTEM: "false",
  ...(args.threads !== undefined ? { SHIMMY_THREADS: String(args.threads) } : {}),
  ...(args.parallel !== undefined ? { SHIMMY_PARALLEL: String(args.parallel) } : {}),
  ...(args["context-size"] !== undefined ? { SHIMMY_CONTEXT_SIZE: String(args["context-size"]) } : {})
}
delete env.SHIMMY_MODEL_PATHS

const ggufPath = external ? args.gguf : path.resolve(root, args.model ?? DEFAULT_MODEL)
const modelName = external ? args.model : path.basename(ggufPath).replace(/\.gguf$/i, "")
if (external && modelName === undefined) throw new Error("--url needs --model NAME (the name that server knows)")

// --- small helpers ------------------------------------------------------------------------------

const sorted = (xs) => [...xs].filter((x) => x !== null && x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b)
const pct = (xs, p) => {
  const s = sorted(xs)
  if (s.length === 0) return null
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
}
const median = (xs) => {
  const s = sorted(xs)
  if (s.length === 0) return null
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}
const mean = (xs) => {
  const s = sorted(xs)
  return s.length === 0 ? null : s.reduce((a, b) => a + b, 0) / s.length
}
const MiB = (b) => b === null || b === undefined ? null : b / 1048576
const fmt = (x, digits = 0) => x === null || x === undefined ? "-" : x.toFixed(digits)

const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100

/** CPU seconds (user + system) and RSS of a process, from /proc. */
const procStat = (pid) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
    const kb = (name) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024
    // fields[11], [12] are utime, stime (fields 14 and 15 of proc(5), counted from the state)
    return { cpu: (Number(fields[11]) + Number(fields[12])) / CLK_TCK, rss: kb("VmRSS"), hwm: kb("VmHWM") }
  } catch {
    return null
  }
}

const loadAverage = () => os.loadavg().map((x) => x.toFixed(2)).join(" ")

// --- the workload -------------------------------------------------------------------------------

let counter = 0
const nextPrompt = () => `${String(counter++).padStart(4, "0")} Once upon a time`

const post = (url, body) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })

const failIfBad = async (response) => {
  if (!response.ok) throw new Error(`${response.status} ${await response.text()}`)
  return response
}

/** Reads an SSE body; `onData` gets each parsed `data:` payload with the time it arrived. */
const readSse = async (response, onData) => {
  const decoder = new TextDecoder()
  let buffer = ""
  for await (const bytes of response.body) {
    const now = performance.now()
    buffer += decoder.decode(bytes, { stream: true })
    const events = buffer.split(/\r?\n\r?\n/)
    buffer = events.pop()
    for (const event of events) {
      for (const line of event.split(/\r?\n/)) {
        if (!line.startsWith("data:")) continue
        const data = line.slice(5).trim()
        if (data !== "[DONE]" && data.length > 0) onData(JSON.parse(data), now)
      }
    }
  }
}

/** A streamed request: times of the first and last text, tokens from the usage the server reports. */
const streamed = async (started, response, textOf) => {
  let first
  let last
  let pieces = 0
  let usage
  await readSse(await failIfBad(response), (chunk, now) => {
    if ((textOf(chunk) ?? "").length > 0) {
      first ??= now
      last = now
      pieces++
    }
    if (chunk.usage) usage = chunk.usage
  })
  const count = usage?.completion_tokens ?? pieces
  return result(started, count, first, last)
}

const result = (started, count, first, last) => ({
  tokens: count,
  latency: performance.now() - started,
  ttft: first === undefined ? null : first - started,
  gap: first !== undefined && count > 1 ? (last - first) / (count - 1) : null
})

const base = external ? args.url.replace(/\/$/, "") : undefined
let serverUrl

const clients = {
  json: {
    open: async () => ({}),
    send: async () => {
      const started = performance.now()
      const r = await failIfBad(
        await post(`${serverUrl}/api/generate`, {
          model: modelName,
          prompt: nextPrompt(),
          max_tokens: tokens,
          temperature: 0
        })
      )
      const answer = await r.json()
      return { tokens: answer.usage.completion_tokens, latency: performance.now() - started, ttft: null, gap: null }
    }
  },
  sse: {
    open: async () => ({}),
    send: async () => {
      const started = performance.now()
      const r = await post(`${serverUrl}/api/generate`, {
        model: modelName,
        prompt: nextPrompt(),
        max_tokens: tokens,
        temperature: 0,
        stream: true
      })
      return streamed(started, r, (c) => c.choices?.[0]?.text)
    }
  },
  chat: {
    open: async () => ({}),
    send: async () => {
      const started = performance.now()
      const r = await post(`${serverUrl}/v1/chat/completions`, {
        model: modelName,
        messages: [{ role: "user", content: nextPrompt() }],
        max_tokens: tokens,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true }
      })
      return streamed(started, r, (c) => c.choices?.[0]?.delta?.content)
    }
  },
  completions: {
    open: async () => ({}),
    send: async () => {
      const started = performance.now()
      const r = await post(`${serverUrl}/v1/completions`, {
        model: modelName,
        prompt: nextPrompt(),
        max_tokens: tokens,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true }
      })
      return streamed(started, r, (c) => c.choices?.[0]?.text)
    }
  },
  // one connection per client, opened before its rounds and kept, as a real WebSocket client does
  ws: {
    open: () =>
      new Promise((resolve, reject) => {
        const socket = new WebSocket(`${serverUrl.replace(/^http/, "ws")}/ws/generate`)
        socket.once("open", () => resolve({ socket }))
        socket.once("error", reject)
      }),
    close: ({ socket }) => socket.close(),
    send: ({ socket }) =>
      new Promise((resolve, reject) => {
        const started = performance.now()
        let first
        let last
        const onMessage = (data) => {
          const now = performance.now()
          const frame = JSON.parse(String(data))
          if (frame.error) {
            socket.off("message", onMessage)
            reject(new Error(JSON.stringify(frame.error)))
          } else if (frame.done) {
            socket.off("message", onMessage)
            resolve(result(started, frame.usage.completion_tokens, first, last))
          } else if ((frame.token ?? "").length > 0) {
            first ??= now
            last = now
          }
        }
        socket.on("message", onMessage)
        socket.send(JSON.stringify({ model: modelName, prompt: nextPrompt(), max_tokens: tokens, temperature: 0 }))
      })
  }
}

/** Samples the server's RSS while a round runs. */
const sampler = (pid) => {
  const rss = []
  const timer = pid === undefined ? undefined : setInterval(() => {
    const s = procStat(pid)
    if (s) rss.push(s.rss)
  }, 50)
  return { stop: () => (clearInterval(timer), rss) }
}

const runCell = async (transport, k, rounds, pid) => {
  const client = clients[transport]
  const conns = await Promise.all(Array.from({ length: k }, () => client.open()))
  const out = []
  try {
    for (let r = 0; r < rounds; r++) {
      const before = pid === undefined ? null : procStat(pid)
      const cpu0 = process.cpuUsage()
      const watch = sampler(pid)
      const started = performance.now()
      const results = await Promise.all(conns.map((c) => client.send(c)))
      const wall = performance.now() - started
      const rss = watch.stop()
      const after = pid === undefined ? null : procStat(pid)
      const own = process.cpuUsage(cpu0)
      out.push({
        wall,
        results,
        serverCpuSeconds: before && after ? after.cpu - before.cpu : null,
        clientCpuSeconds: (own.user + own.system) / 1e6,
        rssPeak: rss.length > 0 ? Math.max(...rss, after?.rss ?? 0) : after?.rss ?? null
      })
    }
  } finally {
    for (const c of conns) client.close?.(c)
  }
  return out
}

/** Figures of one (transport, K) cell from its rounds. */
const summarize = (rounds) => {
  const rates = rounds.map((r) => r.results.reduce((a, x) => a + x.tokens, 0) / (r.wall / 1000))
  const all = rounds.flatMap((r) => r.results)
  const wall = rounds.reduce((a, r) => a + r.wall, 0) / 1000
  const cpu = rounds.every((r) => r.serverCpuSeconds !== null && r.serverCpuSeconds !== undefined)
    ? rounds.reduce((a, r) => a + r.serverCpuSeconds, 0)
    : null
  return {
    rounds: rounds.length,
    tokensPerRequest: median(all.map((x) => x.tokens)),
    tokS: { median: median(rates), min: Math.min(...rates), max: Math.max(...rates) },
    latencyMs: { p50: pct(all.map((x) => x.latency), 50), p95: pct(all.map((x) => x.latency), 95) },
    ttftMs: { p50: pct(all.map((x) => x.ttft), 50), p95: pct(all.map((x) => x.ttft), 95) },
    gapMs: mean(all.map((x) => x.gap)),
    cpuPercent: cpu === null ? null : (100 * cpu) / wall,
    clientCpuPercent: (100 * rounds.reduce((a, r) => a + r.clientCpuSeconds, 0)) / wall,
    rssPeakMiB: MiB(Math.max(...rounds.map((r) => r.rssPeak ?? 0)) || null)
  }
}

// --- the server ---------------------------------------------------------------------------------

// the synthetic models the bench makes when they are missing (random weights, real dimensions):
// bench-1b is the size users run (1-8B), at Q4_0
const SYNTHETIC = {
  "bench-25m": ["--preset", "bench-25m"],
  "bench-110m": ["--preset", "bench-110m"],
  "bench-1b": ["--dim", "2048", "--layers", "16", "--heads", "32", "--kv-heads", "8", "--ffn", "8192", "--type", "q4_0"]
}

const ensureModel = () => {
  if (fs.existsSync(ggufPath)) return
  const name = path.basename(ggufPath).replace(/\.gguf$/i, "")
  if (path.dirname(ggufPath) !== path.join(root, "synthetic") || SYNTHETIC[name] === undefined) {
    throw new Error(`no model at ${ggufPath}`)
  }
  log(`generating synthetic/${name}.gguf (random weights) ...`)
  fs.mkdirSync(path.dirname(ggufPath), { recursive: true })
  const made = spawnSync(process.execPath, [
    path.join(root, "../shared/tools/make-model.mjs"),
    ...SYNTHETIC[name],
    "--name",
    name,
    "--out",
    ggufPath,
    "--quiet"
  ], {
    stdio: ["ignore", "ignore", "inherit"]
  })
  if (made.status !== 0) throw new Error("make-model.mjs failed")
}

/** Rebuilds dist/ when a source file is newer than it; the server and the direct run both use dist/. */
const ensureBuilt = () => {
  const newest = (dir, ext) => {
    let t = 0
    if (!fs.existsSync(dir)) return 0
    for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
      if (e.isFile() && e.name.endsWith(ext)) {
        t = Math.max(t, fs.statSync(path.join(e.parentPath ?? e.path, e.name)).mtimeMs)
      }
    }
    return t
  }
  if (newest(path.join(root, "src"), ".ts") <= newest(path.join(root, "dist/src"), ".js")) return
  log("dist/ is older than src/: building ...")
  const built = spawnSync("npx", ["tsc", "-p", "tsconfig.build.json"], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"]
  })
  if (built.status !== 0) log("warning: the build failed; measuring the dist/ that is there")
}

const startServer = async () => {
  const port = await freePort()
  const started = performance.now()
  const child = spawn(process.execPath, [
    path.join(root, "bin/shimmy.js"),
    "serve",
    "--bind",
    `127.0.0.1:${port}`,
    "--model-dirs",
    path.dirname(ggufPath)
  ], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stdout.on("data", (d) => (output += d))
  child.stderr.on("data", (d) => (output += d))
  const exited = new Promise((resolve) => child.once("exit", resolve))
  const url = `http://127.0.0.1:${port}`
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}):\n${output}`)
    try {
      const r = await fetch(`${url}/api/health`)
      if (r.status === 200) {
        const health = await r.json()
        return { child, url, healthyMillis: performance.now() - started, health, exited, output: () => output }
      }
    } catch {
      // not listening yet
    }
    if (performance.now() - started > 60000) throw new Error(`no healthy answer in 60 s:\n${output}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const stopServer = async (server) => {
  server.child.kill("SIGTERM")
  const timer = setTimeout(() => server.child.kill("SIGKILL"), 10000)
  await server.exited
  clearTimeout(timer)
}

const runDirect = (job) => {
  const r = spawnSync(process.execPath, [path.join(root, "scripts/bench-direct.mjs"), JSON.stringify(job)], {
    cwd: root,
    env,
    encoding: "utf8",
    maxBuffer: 64 * 1048576,
    stdio: ["ignore", "pipe", "inherit"]
  })
  if (r.status !== 0) throw new Error(`bench-direct.mjs failed (${r.status})`)
  return JSON.parse(r.stdout.trim().split("\n").pop())
}

/** Rounds per K: --rounds, else as many as fit ~8 s a cell (2 to 5), from the warm K=1 speed. */
const roundsFor = (k, warmTokS, parallel) => {
  if (fixedRounds !== undefined) return fixedRounds
  // K requests over `parallel` sequences: batching gains little on a CPU, so assume ~1.3x at most
  const roundSeconds = (k * tokens) / (warmTokS * (k > 1 && parallel > 1 ? 1.3 : 1))
  return Math.max(2, Math.min(5, Math.floor(8 / roundSeconds)))
}

if (args.render !== undefined) {
  render(JSON.parse(fs.readFileSync(args.render, "utf8")))
  process.exit(0)
}

// --- main ---------------------------------------------------------------------------------------

const report = {
  when: new Date().toISOString(),
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGiB: os.totalmem() / 2 ** 30,
    node: process.version,
    loadBefore: loadAverage()
  },
  model: modelName,
  gguf: ggufPath ?? null,
  tokens,
  ks,
  transports,
  env: Object.fromEntries(
    Object.entries(env).filter(([k]) => k.startsWith("SHIMMY_") || k.startsWith("NODE_LLAMA_CPP_"))
  )
}
log(`load average before: ${report.machine.loadBefore} (${report.machine.cpus} CPUs: ${report.machine.cpuModel})`)

let runtime
if (!external) {
  ensureModel()
  ensureBuilt()
  report.modelBytes = fs.statSync(ggufPath).size
  // the binary, threads, sequences and context the server's own code resolves from this environment
  runtime = runDirect({ info: true }).info
  log(
    `llama.cpp: ${runtime.buildType} build${runtime.openmp ? " with OpenMP" : " without OpenMP"} ` +
      `threads ${runtime.threads} (setting ${runtime.threadsSetting}), parallel ${runtime.parallel}, context ${runtime.contextSizeSetting} per sequence (capped at the model's)`
  )
  report.runtime = runtime
}

let pid = args.pid === undefined ? undefined : Number(args.pid)
let server
if (external) {
  serverUrl = base
} else {
  server = await startServer()
  serverUrl = server.url
  pid = server.child.pid
  const idle = procStat(pid)
  report.startup = { healthyMillis: server.healthyMillis, idleRssMiB: MiB(idle?.rss), health: server.health }
  const extra = Object.keys(server.health).filter((k) =>
    ![
      "status",
      "models_loaded",
      "memory_usage",
      "memory_bytes",
      "uptime_seconds",
      "version",
      "models_available",
      "loaded_models"
    ].includes(k)
  )
  log(
    `start -> first 200 from /api/health: ${fmt(server.healthyMillis)} ms; idle RSS ${fmt(MiB(idle?.rss), 1)} MiB` +
      (extra.length > 0
        ? `; health also reports ${JSON.stringify(Object.fromEntries(extra.map((k) => [k, server.health[k]])))}`
        : "")
  )
}

// the model loads on the first request that names it
const probe = external ? clients[transports.find((t) => t !== "ws") ?? "chat"] : clients.json
const cold = await probe.send({})
const warm = []
for (let i = 0; i < 3; i++) warm.push(await probe.send({}))
const warmLatency = median(warm.map((w) => w.latency))
const warmTokS = (tokens / warmLatency) * 1000
report.firstRequest = {
  coldMillis: cold.latency,
  warmMillis: warmLatency,
  loadEstimateMillis: cold.latency - warmLatency
}
if (!external) {
  const models = await (await fetch(`${serverUrl}/api/models`)).json()
  const entry = models.models?.find((m) => m.id === modelName)
  if (entry && entry.load_ms !== undefined) report.firstRequest.serverLoadMillis = entry.load_ms
  const loaded = procStat(pid)
  report.firstRequest.loadedRssMiB = MiB(loaded?.rss)
}
log(
  `first request ${fmt(cold.latency)} ms, warm ${fmt(warmLatency)} ms: model load ~${
    fmt(cold.latency - warmLatency)
  } ms; ` +
    `RSS loaded ${fmt(report.firstRequest.loadedRssMiB, 1)} MiB`
)

const parallel = runtime?.parallel ?? 4
const roundsPlan = Object.fromEntries(ks.map((k) => [k, roundsFor(k, warmTokS, parallel)]))
report.rounds = roundsPlan
log(
  `${modelName}: ${tokens} tokens a request, greedy; rounds per K ${
    JSON.stringify(roundsPlan)
  }; load average ${loadAverage()}`
)

// llama-server side by side: one per thread setting, started (and warmed) before the first round
const llamaThreads = (args["llama-threads"] ?? "1,2").split(",").map(Number)
const llamaBin = args["llama-server"] !== undefined && !external
  ? LlamaServer.binaries(args["llama-server"])
  : undefined
const llamaServers = []
if (llamaBin !== undefined) {
  const models = await (await fetch(`${serverUrl}/api/models`)).json()
  const trained = models.models?.find((m) => m.id === modelName)?.context_length ?? Infinity
  const contextSize = Math.min(Number(runtime.contextSizeSetting), trained)
  const llamaParallel = Number(args["llama-parallel"] ?? parallel)
  for (const threads of llamaThreads) {
    const started = await LlamaServer.start({
      bin: llamaBin,
      gguf: ggufPath,
      threads,
      parallel: llamaParallel,
      contextSize,
      alias: modelName
    })
    llamaServers.push({ threads, ...started })
    serverUrl = started.url
    for (let i = 0; i < 2; i++) await clients.completions.send({})
  }
  serverUrl = server.url
  report.llamaServer = { bin: llamaBin, threads: llamaThreads, parallel: llamaParallel, contextSize, cells: {} }
  log(`llama-server: threads ${llamaThreads.join(", ")}; ${llamaParallel} slots of ${contextSize} tokens`)
}
// llama-server's nearest transport to each of Shimmy's
// (json too: llama-server answers some random-weight outputs unstreamed with a 500, "does not match
// the expected Content-only format", which its streamed answers do not)
const llamaTransport = {
  json: "completions",
  sse: "completions",
  ws: "completions",
  completions: "completions",
  chat: "chat"
}

/** The decodes and the tokens they carried so far, from Shimmy's /api/health. */
const decodeCounts = async () => {
  if (external) return null
  const health = await (await fetch(`${server.url}/api/health`)).json()
  const scheduler = health.schedulers?.find((s) => s.model === modelName)
  return scheduler?.decodes === undefined ? null : { decodes: scheduler.decodes, tokens: scheduler.decoded_tokens }
}

report.server = {}
for (const transport of transports) {
  report.server[transport] = {}
  for (const k of ks) {
    const rounds = []
    const theirs = llamaServers.map(() => [])
    const before = await decodeCounts()
    let decodes = 0
    for (let r = 0; r < roundsPlan[k]; r++) {
      serverUrl = server?.url ?? base
      const d0 = await decodeCounts()
      rounds.push((await runCell(transport, k, 1, pid))[0])
      const d1 = await decodeCounts()
      if (d0 !== null && d1 !== null) decodes += d1.decodes - d0.decodes
      for (const [i, llama] of llamaServers.entries()) {
        serverUrl = llama.url
        theirs[i].push((await runCell(llamaTransport[transport], k, 1, llama.pid))[0])
      }
    }
    serverUrl = server?.url ?? base
    const cell = summarize(rounds)
    const generated = rounds.reduce((n, round) => n + round.results.reduce((a, x) => a + x.tokens, 0), 0)
    if (before !== null) cell.decodesPerToken = decodes / generated
    report.server[transport][k] = cell
    const llamaCells = theirs.map((t) => summarize(t))
    if (llamaServers.length > 0) {
      report.llamaServer.cells[transport] ??= {}
      report.llamaServer.cells[transport][k] = Object.fromEntries(
        llamaServers.map((l, i) => [l.threads, llamaCells[i]])
      )
    }
    const best = llamaCells.length === 0 ? null : Math.max(...llamaCells.map((c) => c.tokS.median))
    log(
      `  ${transport.padEnd(5)} K=${String(k).padEnd(2)} ${fmt(cell.tokS.median).padStart(5)} tok/s` +
        (cell.decodesPerToken !== undefined ? `, ${fmt(cell.decodesPerToken, 3)} decodes/token` : "") +
        (best === null
          ? ""
          : `; llama-server ${
            llamaCells.map((c, i) => `-t ${llamaServers[i].threads}: ${fmt(c.tokS.median)}`).join(", ")
          }` +
            ` -> ratio ${fmt(cell.tokS.median / best, 2)}`)
    )
  }
}
for (const llama of llamaServers) await llama.stop()
if (llamaBin !== undefined) {
  report.llamaServer.batchedBench = Object.fromEntries(
    llamaThreads.map((
      threads
    ) => [threads, LlamaServer.batchedBench({ bin: llamaBin, gguf: ggufPath, threads, ks, tokens })])
  )
}
if (pid !== undefined) report.serverHwmMiB = MiB(procStat(pid)?.hwm)
if (server) await stopServer(server)

if (!args["no-direct"] && ggufPath !== undefined && !external) {
  log("in-process ceiling (the server is stopped) ...")
  const direct = runDirect({ model: ggufPath, ks, rounds: roundsPlan, tokens, promptStart: counter })
  report.direct = {
    loadMillis: direct.loadMillis,
    stateSizeMiB: MiB(direct.stateSize),
    rssBeforeLoadMiB: MiB(direct.rssBeforeLoad),
    rssLoadedMiB: MiB(direct.rssLoaded),
    rssEndMiB: MiB(direct.rssEnd),
    info: direct.info,
    cells: Object.fromEntries(
      direct.cells.map((
        c
      ) => [
        c.k,
        summarize(
          c.rounds.map((r) => ({ ...r, serverCpuSeconds: r.cpuMillis / 1000, clientCpuSeconds: 0, rssPeak: r.rss }))
        )
      ])
    )
  }
  if (args["direct-generation"] === true) {
    // the same, through Shimmy's per-token loop: what Generation.ts costs without HTTP or Effect
    const via = runDirect({
      model: ggufPath,
      ks,
      rounds: roundsPlan,
      tokens,
      promptStart: counter + 5000,
      viaGeneration: true
    })
    report.directGeneration = {
      cells: Object.fromEntries(
        via.cells.map((
          c
        ) => [
          c.k,
          summarize(
            c.rounds.map((r) => ({ ...r, serverCpuSeconds: r.cpuMillis / 1000, clientCpuSeconds: 0, rssPeak: r.rss }))
          )
        ])
      )
    }
  }
} else if (external && ggufPath !== undefined && !args["no-direct"]) {
  const direct = runDirect({ model: path.resolve(ggufPath), ks, rounds: roundsPlan, tokens, promptStart: counter })
  report.direct = {
    loadMillis: direct.loadMillis,
    info: direct.info,
    cells: Object.fromEntries(
      direct.cells.map((
        c
      ) => [
        c.k,
        summarize(
          c.rounds.map((r) => ({ ...r, serverCpuSeconds: r.cpuMillis / 1000, clientCpuSeconds: 0, rssPeak: r.rss }))
        )
      ])
    )
  }
}
report.loadAfter = loadAverage()

// --- output -------------------------------------------------------------------------------------

if (asJson) console.log(JSON.stringify(report, null, 2))
else render(report)

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  console.log("")
  for (const r of rows) console.log(r.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join("  "))
  console.log("")
}

/** The tables of a report (this run's, or a saved `--json` one given to `--render FILE`). */
function render(report) {
  const { ks, transports } = report
  const head = [
    "transport",
    "K",
    "rounds",
    "tok/s med",
    "min",
    "max",
    "x direct",
    "lat p50",
    "p95",
    "TTFT p50",
    "p95",
    "gap ms",
    "srv CPU%",
    "cli CPU%",
    "RSS MiB"
  ]
  const rows = [head]
  const row = (name, k, c, ratio) => [
    name,
    String(k),
    String(c.rounds),
    fmt(c.tokS.median),
    fmt(c.tokS.min),
    fmt(c.tokS.max),
    ratio === null ? "-" : ratio.toFixed(2),
    fmt(c.latencyMs.p50),
    fmt(c.latencyMs.p95),
    fmt(c.ttftMs.p50, 1),
    fmt(c.ttftMs.p95, 1),
    fmt(c.gapMs, 2),
    fmt(c.cpuPercent),
    fmt(c.clientCpuPercent),
    fmt(c.rssPeakMiB, 1)
  ]
  for (const transport of transports) {
    for (const k of ks) {
      const c = report.server[transport][k]
      const d = report.direct?.cells[k]
      rows.push(row(transport, k, c, d ? c.tokS.median / d.tokS.median : null))
    }
  }
  if (report.direct) { for (const k of ks) rows.push(row("direct", k, report.direct.cells[k], 1)) }
  if (report.directGeneration) {
    for (const k of ks) {
      const c = report.directGeneration.cells[k]
      rows.push(row("direct+gen", k, c, c.tokS.median / report.direct.cells[k].tokS.median))
    }
  }
  table(rows)
  if (report.llamaServer) {
    const threads = report.llamaServer.threads
    const side = [[
      "transport",
      "K",
      "Shimmy tok/s",
      ...threads.map((t) => `llama -t ${t}`),
      "ratio to best",
      "Shimmy decodes/token",
      "TTFT p50 Shimmy",
      "llama best"
    ]]
    for (const transport of transports) {
      for (const k of ks) {
        const c = report.server[transport][k]
        const theirs = threads.map((t) => report.llamaServer.cells[transport][k][t])
        const best = theirs.reduce((a, b) => (b.tokS.median > a.tokS.median ? b : a))
        side.push([
          transport,
          String(k),
          fmt(c.tokS.median),
          ...theirs.map((x) => fmt(x.tokS.median)),
          fmt(c.tokS.median / best.tokS.median, 2),
          fmt(c.decodesPerToken, 3),
          fmt(c.ttftMs.p50, 1),
          fmt(best.ttftMs.p50, 1)
        ])
      }
    }
    console.log(`side by side with llama-server (${report.llamaServer.parallel} slots; same rounds, alternating):`)
    table(side)
    for (const t of threads) {
      const bb = report.llamaServer.batchedBench?.[t] ?? {}
      console.log(
        `llama-batched-bench -t ${t} (16 prompt + ${report.tokens} generated tokens a sequence), generated tok/s: ` +
          ks.map((k) => `K=${k} ${fmt(bb[k])}`).join(", ")
      )
    }
    console.log("")
  }
  if (report.direct) {
    const d1 = report.direct.cells[ks[0]]
    for (const t of transports.filter((t) => t !== "json")) {
      const s = report.server[t][ks[0]]
      console.log(`TTFT added at K=${ks[0]} over direct (p50): ${t} ${fmt(s.ttftMs.p50 - d1.ttftMs.p50, 1)} ms`)
    }
    console.log(
      `direct: load ${fmt(report.direct.loadMillis)} ms, RSS ${
        fmt(report.direct.rssBeforeLoadMiB, 1)
      } MiB before load, ` +
        `${fmt(report.direct.rssLoadedMiB, 1)} loaded, ${fmt(report.direct.rssEndMiB, 1)} at the end; context state ${
          fmt(report.direct.stateSizeMiB, 1)
        } MiB`
    )
  }
  if (report.modelBytes) {
    console.log(
      `model file ${fmt(MiB(report.modelBytes), 1)} MiB; server peak RSS (VmHWM) ${fmt(report.serverHwmMiB, 1)} MiB`
    )
  }
  console.log(`load average after: ${report.loadAfter}`)
}
