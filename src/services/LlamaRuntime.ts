import { Context, Effect, Layer } from "effect"
import type * as NodeLlamaCpp from "node-llama-cpp"
import type { Llama } from "node-llama-cpp"
import { RuntimeUnavailable } from "../domain/Errors.js"
import { ShimmyConfig } from "./ShimmyConfig.js"

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

let loaded: typeof NodeLlamaCpp | undefined

/**
 * node-llama-cpp, imported on first use: importing it costs more than the rest of the command
 * together (~400 modules), so nothing imports its values statically and the server listens
 * before it is loaded. Node caches the module; later uses resolve at once.
 */
export const loadNodeLlamaCpp: Effect.Effect<typeof NodeLlamaCpp, RuntimeUnavailable> = Effect.tryPromise({
  try: () => import("node-llama-cpp").then((module) => (loaded = module)),
  catch: (cause) => new RuntimeUnavailable({ reason: `cannot load node-llama-cpp: ${describe(cause)}` })
})

/** The module `loadNodeLlamaCpp` loaded, for synchronous code that runs only after it (a model exists). */
export const loadedNodeLlamaCpp = (): typeof NodeLlamaCpp => {
  if (loaded === undefined) throw new Error("node-llama-cpp is used before the runtime loaded it")
  return loaded
}

/** Whether the loaded llama.cpp binary runs its threads with OpenMP (a local build can). */
export const usesOpenMp = (llama: Llama): boolean => /OPENMP = 1/.test(llama.systemInfo)

/**
 * The threads a context gets. Measured on a 2-core machine (BENCHMARKS.md): node-llama-cpp's
 * prebuilt CPU binary has no OpenMP and starts its worker threads anew for every batch, which
 * makes 2 threads 5-7x slower than 1 there (and its own default of 4, ~500x slower). A binary
 * built with OpenMP keeps its threads, but taking every core still starves Node's own thread:
 * bench-25m halves with 2 threads, and bench-110m gains nothing at K=1. So `auto` leaves one
 * core to Node with OpenMP, and takes half the cores without it: 1 on a 2-core machine either way.
 */
export const threadsFor = (llama: Llama, setting: number | "auto"): number => {
  if (setting !== "auto") return setting
  const cores = Math.max(1, llama.cpuMathCores)
  return usesOpenMp(llama) ? Math.max(1, cores - 1) : Math.max(1, Math.floor(cores / 2))
}

/** The native llama.cpp binding: one per process, disposed with its scope. */
export class LlamaRuntime extends Context.Tag("shimmy/LlamaRuntime")<LlamaRuntime, Llama>() {
  /** Uses the prebuilt binaries node-llama-cpp ships; never downloads or compiles anything. */
  static readonly make = Effect.gen(function*() {
    const config = yield* ShimmyConfig
    const { getLlama, LlamaLogLevel } = yield* loadNodeLlamaCpp
    return yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          getLlama({
            gpu: config.gpu === "off" ? false : config.gpu,
            build: "never",
            usePrebuiltBinaries: true,
            skipDownload: true,
            progressLogs: false,
            logLevel: LlamaLogLevel.error,
            logger: (_level, message) => process.stderr.write(`[llama.cpp] ${message}\n`)
          }),
        catch: (cause) => new RuntimeUnavailable({ reason: describe(cause) })
      }),
      (llama) => Effect.promise(() => llama.dispose())
    )
  }).pipe(Effect.withSpan("LlamaRuntime.make"))

  static readonly layer = Layer.scoped(LlamaRuntime, LlamaRuntime.make)
}
