#!/usr/bin/env node
// The in-process ceiling for scripts/bench.mjs: the same greedy workload straight on node-llama-cpp,
// with no HTTP, Effect stream or detokenizing in the way. The llama.cpp binary, threads, sequences
// and context size are resolved by Shimmy's own code (dist/src: LlamaRuntime, settings, threadsFor),
// and the context decodes in the engine's steps (BatchSchedule, with its threads for a lone sequence)
// from the same SHIMMY_* environment the server gets, so both sides run the same binary the same way.
// Usage (normally spawned by bench.mjs): node scripts/bench-direct.mjs '{"model":PATH,"ks":[1,4],"rounds":{"1":5},"tokens":128}'
// Prints one JSON line on stdout; {"info":true} only resolves and reports the runtime.
import "./one-pool-thread.mjs"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const job = JSON.parse(process.argv[2] ?? "{}")

const { Config, Effect, Scope } = await import("effect")
// only the modules that resolve the runtime, so that the RSS before the load is Node plus llama.cpp
const lib = {
  ...(await import(pathToFileURL(path.join(root, "dist/src/services/LlamaRuntime.js")).href)),
  ...(await import(pathToFileURL(path.join(root, "dist/src/services/ShimmyConfig.js")).href))
}
const BatchSchedule = await import(pathToFileURL(path.join(root, "dist/src/services/BatchSchedule.js")).href)
  .catch(() => undefined)

const config = await Effect.runPromise(Config.all(lib.settings))
const scope = await Effect.runPromise(Scope.make())
const llamaStarted = performance.now()
const made = await Effect.runPromise(
  lib.LlamaRuntime.make.pipe(Effect.provideService(lib.ShimmyConfig, config), Scope.extend(scope))
)
// since the runtime loads on first use, `make` gives a service whose `llama` loads the binding
const llama = Effect.isEffect(made?.llama) ? await Effect.runPromise(made.llama) : made
const getLlamaMillis = performance.now() - llamaStarted
// `threadsFor` arrived with `SHIMMY_THREADS=auto`; before it, the setting was always a number
const threads = typeof lib.threadsFor === "function" ? lib.threadsFor(llama, config.threads) : config.threads
const info = {
  buildType: llama.buildType,
  openmp: /OPENMP = 1/.test(llama.systemInfo),
  llamaCpp: llama.llamaCppRelease?.release ?? null,
  cpuMathCores: llama.cpuMathCores,
  threadsSetting: config.threads,
  threads,
  parallel: config.parallel,
  contextSizeSetting: config.contextSize,
  getLlamaMillis: Math.round(getLlamaMillis)
}

const rssBytes = () => {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"))
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss
}

if (job.info === true) {
  process.stdout.write(JSON.stringify({ info, rssBytes: rssBytes() }) + "\n")
  await llama.dispose()
  process.exit(0)
}

const rssBeforeLoad = rssBytes()
const loadStarted = performance.now()
const model = await llama.loadModel({ modelPath: job.model, ...(config.gpu === "off" ? { gpuLayers: 0 } : {}) })
const contextSize = Math.min(config.contextSize, model.trainContextSize)
// as LlamaEngine: the engine's step schedule, a lone sequence on fewer threads where measured faster
const lone = typeof lib.stepThreadsFor === "function" ? lib.stepThreadsFor(llama, config.threads).lone : undefined
const schedule = BatchSchedule?.make({
  maxWaitMs: 10,
  ...(lone !== undefined ? { fewerThreads: lone } : {}),
  cores: llama.cpuMathCores
})
const context = await model.createContext({
  sequences: config.parallel,
  contextSize,
  threads,
  ...(schedule !== undefined ? { batching: { dispatchSchedule: schedule.dispatch } } : {})
})
info.schedule = schedule?.attach(context) ?? false
const loadMillis = performance.now() - loadStarted
info.contextSize = contextSize
const sequences = Array.from({ length: config.parallel }, () => context.getSequence())
const rssLoaded = rssBytes()

// as LlamaEngine.tokenize: no special tokens, BOS when the vocabulary wants it
const tokenize = (text) => {
  const body = model.tokenize(text, false)
  const bos = model.tokens.bos
  return model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...body] : body
}

// the sampling Generation.ts passes for a greedy request
const sampling = { temperature: 0, topK: 40, topP: 0.95, minP: 0.05 }

// with "viaGeneration", requests go through Shimmy's per-token loop (dist/src/services/Generation.js:
// detokenizing, whole characters, stop strings) instead of the bare evaluate loop below
const { reusePrefix } = await import(pathToFileURL(path.join(root, "dist/src/services/Generation.js")).href)
const generation = job.viaGeneration === true
  ? await import(pathToFileURL(path.join(root, "dist/src/services/Generation.js")).href)
  : undefined

const runGeneration = async (sequence, promptTokens, started) => {
  let first
  let last
  let count = 0
  const events = generation.generate({
    model,
    sequence,
    promptTokens,
    sampling: { temperature: 0, maxTokens: job.tokens, stop: [] },
    contextSize
  })
  for await (const event of events) {
    if (event._tag !== "Token") {
      count = event.usage.completion_tokens ?? event.usage.completionTokens ?? count
      continue
    }
    last = performance.now()
    first ??= last
  }
  return {
    tokens: count,
    latency: performance.now() - started,
    ttft: first - started,
    gap: count > 1 ? (last - first) / (count - 1) : null
  }
}

/** One request on a sequence, with Generation.ts's prefix reuse; times relative to `started`. */
const run = async (sequence, promptTokens, started) => {
  if (generation !== undefined) return runGeneration(sequence, promptTokens, started)
  const common = await reusePrefix(sequence, promptTokens)
  const begun = performance.now()
  let first
  let last
  let count = 0
  for await (const _token of sequence.evaluate(promptTokens.slice(common), sampling)) {
    last = performance.now()
    first ??= last
    if (++count >= job.tokens) break
  }
  return {
    tokens: count,
    latency: last - started,
    ttft: first - started,
    queued: begun - started,
    gap: count > 1 ? (last - first) / (count - 1) : null
  }
}

/** K requests at once through the pool of `parallel` sequences (more wait, as on the server). */
const round = async (k, roundIndex) => {
  // as SequencePool: the first free sequence, so those in use have consecutive ids
  const free = [...sequences]
  const waiters = []
  const take = () => free.length > 0 ? Promise.resolve(free.shift()) : new Promise((resolve) => waiters.push(resolve))
  const give = (s) => {
    if (waiters.length > 0) return waiters.shift()(s)
    free.push(s)
    free.sort((a, b) => sequences.indexOf(a) - sequences.indexOf(b))
  }
  const prompts = Array.from({ length: k }, (_, i) => tokenize(job.prompt(roundIndex, i)))
  const cpu0 = process.cpuUsage()
  const started = performance.now()
  const results = await Promise.all(prompts.map(async (p) => {
    const s = await take()
    try {
      return await run(s, p, started)
    } finally {
      // as the engine: a sequence given back decodes no more, the schedule stops waiting for it
      schedule?.leave(s)
      give(s)
    }
  }))
  const wall = performance.now() - started
  const cpu = process.cpuUsage(cpu0)
  return { wall, results, cpuMillis: (cpu.user + cpu.system) / 1000, rss: rssBytes() }
}

// the prompt text comes from bench.mjs as a template: "{n}" is replaced by a number unique to the request
const template = job.promptTemplate ?? "{n} Once upon a time"
let counter = job.promptStart ?? 5000
job.prompt = () => template.replace("{n}", String(counter++).padStart(4, "0"))

await round(1, 0) // first decode allocates compute buffers; keep it out of the figures
const cells = []
for (const k of job.ks) {
  const rounds = []
  for (let r = 0; r < (job.rounds[k] ?? 3); r++) rounds.push(await round(k, r))
  cells.push({ k, rounds })
}
process.stdout.write(
  JSON.stringify({
    info,
    loadMillis,
    stateSize: context.stateSize ?? null,
    rssBeforeLoad,
    rssLoaded,
    rssEnd: rssBytes(),
    cells
  }) + "\n"
)
await context.dispose()
await model.dispose()
await llama.dispose()
