#!/usr/bin/env node
// Soak: K clients for M minutes against a spawned `shimmy serve`, mixing streaming and
// non-streaming /api/generate, /v1/chat/completions, WebSocket requests and clients that leave
// mid-answer. Prints requests, errors by code, the server's RSS after warm-up and at the end (and
// the medians of the first and last minute's samples), and sequences still held once the clients
// have stopped. The minutes are counted after the warm-up.
//
//   npm run soak -- --clients 64 --minutes 5 [--warmup 150] [--model synthetic/bench-25m.gguf] [--parallel 4] [--max-queue 64]
//
// Not a test: it runs for minutes and its figures depend on the machine. `npm run build` first.
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import WebSocket from "ws"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

const args = process.argv.slice(2)
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback
}
const clients = Number(flag("clients", "64"))
const minutes = Number(flag("minutes", "5"))
// the model loads, and the JIT, V8's heap and malloc's arenas grow to this load's working set: in
// a 15-minute run (BENCHMARKS.md) RSS rose for the first ~2.5 minutes, then held within +-2%
const warmupSeconds = Number(flag("warmup", "150"))
const modelPath = path.resolve(flag("model", path.join(root, "synthetic", "bench-25m.gguf")))
const parallel = flag("parallel", "4")
const maxQueue = flag("max-queue", "64")

if (!fs.existsSync(modelPath)) {
  if (path.basename(modelPath) !== "bench-25m.gguf") throw new Error(`no model at ${modelPath}`)
  console.log(`making ${modelPath} ...`)
  fs.mkdirSync(path.dirname(modelPath), { recursive: true })
  execFileSync(process.execPath, [
    path.join(root, "..", "shared", "tools", "make-model.mjs"),
    "--preset",
    "bench-25m",
    "--out",
    modelPath
  ], {
    stdio: "inherit"
  })
}
const model = path.basename(modelPath, ".gguf")

// --- the server -------------------------------------------------------------------------------

const server = spawn(process.execPath, [
  path.join(root, "bin", "shimmy.js"),
  "serve",
  "--bind",
  "127.0.0.1:0",
  "--model-dirs",
  modelPath,
  "--parallel",
  parallel,
  "--max-queue",
  maxQueue
], {
  env: { SHIMMY_THREADS: "1", ...process.env, SHIMMY_DISCOVER_SYSTEM: "false" },
  stdio: ["ignore", "pipe", "inherit"]
})
const url = await new Promise((resolve, reject) => {
  let out = ""
  server.stdout.on("data", (d) => {
    out += d
    const found = /listening on (http:\/\/\S+)/.exec(out)?.[1]
    if (found !== undefined) resolve(found)
  })
  server.once("exit", (code) => reject(new Error(`shimmy serve exited (${code}):\n${out}`)))
})
const wsUrl = `${url.replace(/^http/, "ws")}/ws/generate`

/** Resident set size of the server process, from /proc (Linux). */
const rss = () => {
  const status = fs.readFileSync(`/proc/${server.pid}/status`, "utf8")
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024
}
const mib = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

// --- the clients ------------------------------------------------------------------------------

const counts = { requests: 0, ok: 0, disconnected: 0 }
const errors = new Map()
// the first message of each code, to tell what went wrong
const firstMessages = new Map()
const countError = (code, message) => {
  errors.set(code, (errors.get(code) ?? 0) + 1)
  if (message !== undefined && !firstMessages.has(code)) firstMessages.set(code, message)
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const prompts = ["Once upon a time", "The little dog", "Tell me about the sea", "One day", "A story about a cat"]
const pick = (list) => list[Math.floor(Math.random() * list.length)]
const tokens = () => 8 + Math.floor(Math.random() * 40)

const failed = async (response) => {
  const text = await response.text()
  try {
    const error = JSON.parse(text).error
    countError(error?.code ?? `http_${response.status}`, error?.message)
  } catch {
    countError(`http_${response.status}_not_json`)
  }
}

const jsonGenerate = async () => {
  const r = await fetch(`${url}/api/generate`, {
    method: "POST",
    body: JSON.stringify({ model, prompt: pick(prompts), max_tokens: tokens() })
  })
  if (r.status !== 200) return failed(r)
  const body = await r.json()
  if (body.choices?.[0]?.finish_reason === undefined) return countError("bad_json_answer")
  counts.ok++
}

const sseGenerate = async (path, body, leaveAfter) => {
  const controller = new AbortController()
  const r = await fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body), signal: controller.signal })
  if (r.status !== 200) return failed(r)
  const reader = r.body.getReader()
  const decoder = new TextDecoder()
  let text = ""
  let chunks = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    text += decoder.decode(value, { stream: true })
    if (leaveAfter !== undefined && ++chunks >= leaveAfter) {
      controller.abort()
      counts.disconnected++
      return
    }
  }
  if (!text.trimEnd().endsWith("data: [DONE]")) return countError("stream_without_done")
  // an error event has `error` at its top level (generated text may contain the word)
  for (const line of text.split("\n")) {
    if (!line.startsWith("data: {")) continue
    const event = JSON.parse(line.slice("data: ".length))
    if (event.error !== undefined) {
      return countError(event.error.code ?? "stream_error", event.error.message ?? event.error.details)
    }
  }
  counts.ok++
}

const wsGenerate = (leave) =>
  new Promise((resolve) => {
    const ws = new WebSocket(wsUrl)
    let frames = 0
    ws.once("error", () => {
      countError("ws_error")
      resolve()
    })
    ws.once("open", () => ws.send(JSON.stringify({ model, prompt: pick(prompts), max_tokens: tokens() })))
    ws.on("message", (data) => {
      const frame = JSON.parse(data.toString())
      frames++
      if (leave && frames >= 2) {
        counts.disconnected++
        ws.terminate()
        return resolve()
      }
      if (frame.error !== undefined) countError(frame.error.code, frame.error.message)
      else if (frame.done === true) counts.ok++
      else return
      ws.close()
      resolve()
    })
    ws.once("close", () => resolve())
  })

const jsonLeave = async () => {
  const controller = new AbortController()
  const pending = fetch(`${url}/api/generate`, {
    method: "POST",
    body: JSON.stringify({ model, prompt: pick(prompts), max_tokens: 200 }),
    signal: controller.signal
  }).then((r) => r.text(), () => undefined)
  await sleep(50 + Math.random() * 200)
  controller.abort()
  counts.disconnected++
  await pending.catch(() => undefined)
}

const kinds = [
  () => jsonGenerate(),
  () => sseGenerate("/api/generate", { model, prompt: pick(prompts), max_tokens: tokens(), stream: true }),
  () =>
    sseGenerate("/v1/chat/completions", {
      model,
      messages: [{ role: "user", content: pick(prompts) }],
      max_tokens: tokens(),
      stream: true
    }),
  () => wsGenerate(false),
  // clients that leave mid-answer
  () => sseGenerate("/api/generate", { model, prompt: pick(prompts), max_tokens: 200, stream: true }, 3),
  () => wsGenerate(true),
  () => jsonLeave()
]

let running = true
const client = async () => {
  while (running) {
    counts.requests++
    try {
      await pick(kinds)()
    } catch (e) {
      countError(`client_${e?.cause?.code ?? e?.name ?? "error"}`, e?.message)
    }
    // a 503 says to come back later
    await sleep(errors.size > 0 ? 20 : 0)
  }
}

const health = async () => (await fetch(`${url}/api/health`)).json()

// --- the run ----------------------------------------------------------------------------------

const startRss = rss()
console.log(
  `soak: ${clients} clients for ${minutes} min on ${model} (parallel ${parallel}, max queue ${maxQueue}) at ${url}`
)
const workers = Array.from({ length: clients }, client)
await sleep(warmupSeconds * 1000)
const warmRss = rss()
const warmRequests = counts.requests
console.log(
  `after ${warmupSeconds} s warm-up: RSS ${mib(warmRss)} (cold start ${mib(startRss)}), ${warmRequests} requests`
)
const deadline = Date.now() + minutes * 60_000
const peaks = { rss: warmRss }
// RSS every 15 s after the warm-up, with the minute it was taken
const samples = [{ at: 0, rss: warmRss }]
while (Date.now() < deadline) {
  await sleep(Math.min(15_000, Math.max(0, deadline - Date.now())))
  const now = rss()
  peaks.rss = Math.max(peaks.rss, now)
  samples.push({ at: minutes - (deadline - Date.now()) / 60_000, rss: now })
  const memory = (await health()).memory
  const heap = memory === undefined ? "" : `, V8 heap ${mib(memory.heap_used)} of ${mib(memory.heap_total)}`
  console.log(
    `  ${((minutes * 60_000 - (deadline - Date.now())) / 60_000).toFixed(1)} min: ${counts.requests} requests, RSS ${
      mib(now)
    }${heap}`
  )
}
running = false
await Promise.all(workers)
await sleep(500)
const endRss = rss()
const end = await health()
const leaked = end.sequences.total - end.sequences.free

const intended = errors.get("server_busy") ?? 0
const unintended = [...errors].filter(([code]) => code !== "server_busy").reduce((n, [, c]) => n + c, 0)
console.log("")
console.log(
  `requests:            ${counts.requests} (${counts.ok} complete answers, ${counts.disconnected} clients left mid-answer)`
)
console.log(`errors by code:      ${errors.size === 0 ? "none" : [...errors].map(([c, n]) => `${c} ${n}`).join(", ")}`)
for (const [code, message] of firstMessages) console.log(`  first ${code}: ${message}`)
console.log(`unintended errors:   ${unintended} (server_busy 503s are intended back-pressure: ${intended})`)
console.log(
  `RSS:                 cold ${mib(startRss)}, after warm-up ${mib(warmRss)}, end ${mib(endRss)}, peak ${
    mib(peaks.rss)
  }`
)
console.log(`RSS growth:          ${(((endRss - warmRss) / warmRss) * 100).toFixed(2)}% from warm-up to end`)
// one sample is at the mercy of where the garbage collector is; the medians of the first and the
// last minute of samples show the trend
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const firstMinute = median(samples.filter((s) => s.at <= 1).map((s) => s.rss))
const lastMinute = median(samples.filter((s) => s.at >= minutes - 1).map((s) => s.rss))
console.log(
  `RSS trend:           median of the first minute ${mib(firstMinute)}, of the last ${mib(lastMinute)}: ${
    (((lastMinute - firstMinute) / firstMinute) * 100).toFixed(2)
  }%`
)
console.log(
  `sequences at end:    ${end.sequences.free}/${end.sequences.total} free, ${end.sequences.queued} queued; leaked ${leaked}`
)

server.kill("SIGTERM")
const code = await new Promise((resolve) => server.once("exit", resolve))
console.log(`server exit code:    ${code}`)
process.exitCode = unintended === 0 && leaked === 0 && code === 0 ? 0 : 1
