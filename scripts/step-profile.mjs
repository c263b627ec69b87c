// Where a step's time goes in one process, straight on node-llama-cpp: K sequences of one context
// generate TOKENS greedy tokens each; prints tokens/s, the decodes and the tokens they carried, the
// time in llama_decode and in sampling (both on node-llama-cpp's worker threads).
//   node scripts/step-profile.mjs MODEL THREADS K [TOKENS=64]
//   SCHEDULE=1 ...   with Shimmy's BatchSchedule (dist/; npm run build): every step decodes all K
//   LONE=N ...       and a step on N threads where it measures faster (StepThreads: N or THREADS, by step size)
//   FA=0|1 ...       flash attention off / on (node-llama-cpp's default: off)
//   SEQUENCES=N CONTEXT=N ...   the context's sequences (default K) and tokens per sequence (1024)
//   UV_THREADPOOL_SIZE=N ...   libuv's pool (default 1, as the server's: bin/shimmy.js)
//   LOCAL=1 ...      the last local build (npm run build:llama) instead of the prebuilt binary
//   SAMPLING=server ...   the sampling options Generation.ts passes for a greedy request
import "./one-pool-thread.mjs"
import { getLlama, LlamaLogLevel } from "node-llama-cpp"
const [modelPath, threads, k, tokens] = [
  process.argv[2],
  Number(process.argv[3]),
  Number(process.argv[4]),
  Number(process.argv[5] ?? 64)
]
const env = process.env
const llama = env.LOCAL === "1"
  ? await getLlama("lastBuild", { logLevel: LlamaLogLevel.error })
  : await getLlama({
    gpu: false,
    build: "never",
    usePrebuiltBinaries: true,
    skipDownload: true,
    logLevel: LlamaLogLevel.error
  })
const model = await llama.loadModel({ modelPath, gpuLayers: 0 })
const schedule = env.SCHEDULE === "1"
  ? (await import("../dist/src/services/BatchSchedule.js")).make({
    maxWaitMs: 10,
    ...(env.LONE ? { fewerThreads: Number(env.LONE) } : {})
  })
  : undefined
const context = await model.createContext({
  sequences: Number(env.SEQUENCES ?? k),
  contextSize: Number(env.CONTEXT ?? 1024),
  threads,
  ...(env.FA ? { flashAttention: env.FA === "1" } : {}),
  ...(schedule ? { batching: { dispatchSchedule: schedule.dispatch } } : {})
})
if (schedule && !schedule.attach(context)) throw new Error("BatchSchedule could not attach")

// the native context's methods are read-only properties: a proxy in front of it times them
const native = context._ctx
const stats = { decode: 0, decodes: 0, sample: 0, samples: 0, tokens: 0 }
const timed = {
  decodeBatch: async () => {
    const t = performance.now()
    await native.decodeBatch()
    stats.decode += performance.now() - t
    stats.decodes++
  },
  sampleToken: async (...args) => {
    const t = performance.now()
    const result = await native.sampleToken(...args)
    stats.sample += performance.now() - t
    stats.samples++
    return result
  },
  addToBatch: (...args) => {
    stats.tokens += args[2].length
    return native.addToBatch(...args)
  }
}
context._ctx = new Proxy(native, {
  get: (target, key) => timed[key] ?? (typeof target[key] === "function" ? target[key].bind(target) : target[key])
})

// SAMPLING=server: the options Generation.ts passes for a greedy request (llama.cpp server's defaults)
const sampling = process.env.SAMPLING === "server"
  ? { temperature: 0, topK: 40, topP: 0.95, minP: 0.05 }
  : { temperature: 0 }
const sequences = Array.from({ length: k }, () => context.getSequence())
const run = async (sequence, i) => {
  let n = 0
  for await (const _token of sequence.evaluate(model.tokenize(`${i} Once upon a time`), sampling)) {
    if (++n >= tokens) break
  }
  return n
}
// a warm-up round, then the measured one from empty sequences
await Promise.all(sequences.map((s, i) => run(s, i + 1000)))
for (const s of sequences) await s.clearHistory()
for (const key in stats) stats[key] = 0
const started = performance.now()
const generated = (await Promise.all(sequences.map((s, i) => run(s, i)))).reduce((a, b) => a + b, 0)
const wall = performance.now() - started
const f = (n, d = 2) => n.toFixed(d)
console.log(
  `${llama.buildType} openmp=${/OPENMP = 1/.test(llama.systemInfo)} threads=${threads} K=${k}${
    schedule ? " schedule" : ""
  }: ${f(generated / wall * 1000, 0)} tok/s; ` +
    `${stats.decodes} decodes of ${f(stats.tokens / stats.decodes)} tokens, ${
      f(stats.decode / stats.decodes)
    } ms each ` +
    `(${f(100 * stats.decode / wall, 0)}% of the wall time); ${stats.samples} samplings, ${
      f(stats.sample / stats.samples, 3)
    } ms each`
)
await context.dispose()
await model.dispose()
