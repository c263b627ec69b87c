// Tokens/s of node-llama-cpp in one process, by threads and concurrent sequences: the binary alone.
//   node scripts/threads-direct.mjs MODEL THREADS K [TOKENS=64]        (the binding npm installed)
//   LOCAL=1 node scripts/threads-direct.mjs ...                        (the last local build: npm run build:llama)
import { getLlama, LlamaLogLevel } from "node-llama-cpp"
const [model, threads, k, tokens] = [
  process.argv[2],
  Number(process.argv[3]),
  Number(process.argv[4]),
  Number(process.argv[5] ?? 64)
]
const llama = process.env.LOCAL !== "1"
  ? await getLlama({
    gpu: false,
    build: "never",
    usePrebuiltBinaries: true,
    skipDownload: true,
    logLevel: LlamaLogLevel.error
  })
  : await getLlama("lastBuild", { logLevel: LlamaLogLevel.error })
const m = await llama.loadModel({ modelPath: model, gpuLayers: 0 })
const ctx = await m.createContext({ sequences: k, contextSize: 1024, threads })
const seqs = Array.from({ length: k }, () => ctx.getSequence())
const run = async (seq, i) => {
  let n = 0
  for await (const _token of seq.evaluate(m.tokenize(`${i} Once upon a time`), { temperature: 0 })) {
    if (++n >= tokens) break
  }
  return n
}
await Promise.all(seqs.map((s, i) => run(s, i + 1000)))
for (const s of seqs) await s.clearHistory()
const t0 = performance.now()
const n = (await Promise.all(seqs.map((s, i) => run(s, i)))).reduce((a, b) => a + b, 0)
console.log(
  `${llama.buildType} openmp=${/OPENMP = 1/.test(llama.systemInfo)} threads=${threads} K=${k}: ${
    (n / (performance.now() - t0) * 1000).toFixed(0)
  } tok/s`
)
