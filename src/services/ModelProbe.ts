import { Duration, Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import { createRequire } from "node:module"
import { pathToFileURL } from "node:url"
import { ModelLoadFailed } from "../domain/Errors.js"
import type { RegisteredModel } from "./ModelRegistry.js"
import { ShimmyConfig } from "./ShimmyConfig.js"

/**
 * A load in a child process before a model is first loaded in this one. llama.cpp aborts the
 * process (GGML_ASSERT, an uncaught C++ exception) on some files whose header reads fine, and no
 * check of the header can know every such case: the child loads the model with the same binary
 * choice, creates a small context and evaluates a few tokens by id (never tokenizing text, which
 * the vocabulary guard handles in this process). A child that dies, or outlives the timeout, makes
 * the model fail with `ModelLoadFailed` and the child's last words; this process never loads it.
 * Results are kept per file identity (device, inode, size, modification time of every part), so a
 * model is probed once per version of its files.
 */

// CommonJS fed to `node -` on stdin: node-llama-cpp tests its binary in a process that inherits
// execArgv, so the script cannot be an `-e` argument. argv: "-", node-llama-cpp's entry URL,
// the model's path, the gpu setting.
const CHILD = `(async () => {
const [entry, modelPath, gpu] = process.argv.slice(2)
const { getLlama, LlamaLogLevel } = await import(entry)
const llama = await getLlama({
  gpu: gpu === "off" ? false : gpu, build: "never", usePrebuiltBinaries: true, skipDownload: true,
  progressLogs: false, logLevel: LlamaLogLevel.error, logger: (_l, m) => process.stderr.write(m + "\\n")
})
try {
  const model = await llama.loadModel({ modelPath, ...(gpu === "off" ? { gpuLayers: 0 } : {}) })
  const context = await model.createContext({ contextSize: Math.min(256, model.trainContextSize), threads: 1 })
  const sequence = context.getSequence()
  const first = model.tokens.bos ?? model.tokens.eos ?? 0
  const vocabulary = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 1
  const tokens = [first, ...[1, 2, 3].map((t) => t % vocabulary)]
  for await (const _ of sequence.evaluate(tokens)) break
  process.stdout.write(JSON.stringify({ ok: true }) + "\\n")
} catch (error) {
  process.stdout.write(JSON.stringify({ ok: false, reason: error instanceof Error ? error.message : String(error) }) + "\\n")
}
process.exit(0)
})()
`

/** The lines of a dead child's stderr that say why (llama.cpp's assert, the C++ exception), without stack frames. */
const lastWords = (stderr: string): string => {
  const lines = stderr.split("\n").map((l) => l.trim()).filter((l) => l.length > 0 && !/^\d+: 0x|^#\d+ |^\[?0x/.test(l))
  const telling = lines.filter((l) => /GGML_ASSERT|GGML_ABORT|terminate called|what\(\)|error|fatal/i.test(l))
  return (telling.length > 0 ? telling : lines).slice(-3).join("; ").slice(0, 500)
}

type Outcome =
  | { readonly ok: true }
  /** `again`: the child could not even start (no memory, no process slots); worth another try later */
  | { readonly ok: false; readonly reason: string; readonly again?: boolean }

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** One child's test load; interrupting it (the timeout, a client gone) kills the child. */
const run = (entry: string, modelPath: string, gpu: string) =>
  Effect.async<Outcome>((resume) => {
    const child = spawn(process.execPath, ["-", entry, modelPath, gpu], {
      stdio: ["pipe", "pipe", "pipe"],
      // the child's own threads: one, like the contexts on a small machine; it evaluates 4 tokens
      env: { ...process.env, OMP_NUM_THREADS: "1" }
    })
    child.stdin.end(CHILD)
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")))
    // keep the end: the assert comes last, after whatever llama.cpp logged
    child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString("utf8")).slice(-16_384)))
    child.on("error", (error) =>
      resume(Effect.succeed({ ok: false, reason: `cannot start a test load: ${describe(error)}`, again: true })))
    child.on("close", (code, signal) => {
      const line = stdout.split("\n").find((l) =>
        l.startsWith("{")
      )
      if (line !== undefined && code === 0) {
        try {
          resume(Effect.succeed(JSON.parse(line) as Outcome))
          return
        } catch {
          // fall through: a child that printed half a line died while printing it
        }
      }
      const why = `a test load in a child process ${
        signal !== null ? `was killed by ${signal}` : `exited with code ${code}`
      }`
      const words = lastWords(stderr)
      resume(Effect.succeed({ ok: false, reason: words.length > 0 ? `${why}: ${words}` : why }))
    })
    return Effect.sync(() => void child.kill("SIGKILL"))
  })

export class ModelProbe extends Effect.Service<ModelProbe>()("shimmy/ModelProbe", {
  effect: Effect.gen(function*() {
    const config = yield* ShimmyConfig
    const entry = pathToFileURL(createRequire(import.meta.url).resolve("node-llama-cpp")).href
    const outcomes = new Map<string, Outcome>()

    const identity = (name: string, files: ReadonlyArray<string>) =>
      Effect.forEach(files, (file) =>
        Effect.tryPromise({
          try: () => fs.stat(file),
          catch: () => new ModelLoadFailed({ model: name, reason: `the file ${file} is missing` })
        }).pipe(Effect.map((s) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`))).pipe(Effect.map((ids) => ids.join(",")))

    /** Succeeds when a child process loaded the model and evaluated a few tokens with it. */
    const check = Effect.fn("ModelProbe.check")(function*(registered: RegisteredModel) {
      if (!config.probeModels) return
      const name = registered.info.name
      const key = yield* identity(name, registered.info.files)
      const outcome = outcomes.get(key) ?? (yield* run(entry, registered.info.path, config.gpu).pipe(
        Effect.timeoutTo({
          duration: config.probeTimeout,
          onSuccess: (outcome): Outcome => outcome,
          onTimeout: (): Outcome => ({
            ok: false,
            reason: `a test load did not finish within ${Duration.format(config.probeTimeout)}`
          })
        })
      ))
      if (outcome.ok || outcome.again !== true) outcomes.set(key, outcome)
      if (!outcome.ok) return yield* Effect.fail(new ModelLoadFailed({ model: name, reason: outcome.reason }))
    })

    return { check } as const
  })
}) {}
