import { Context, Effect, Layer } from "effect"
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp"
import { RuntimeUnavailable } from "../domain/Errors.js"
import { ShimmyConfig } from "./ShimmyConfig.js"

/** Whether the loaded llama.cpp binary runs its threads with OpenMP (a local build can). */
export const usesOpenMp = (llama: Llama): boolean => /OPENMP = 1/.test(llama.systemInfo)

/**
 * The threads a context gets. Measured on a 2-core machine (BENCHMARKS.md): node-llama-cpp's
 * prebuilt CPU binary has no OpenMP and starts its worker threads anew for every batch, which
 * makes 2 threads 5-7x slower than 1 there (and its own default of 4, ~500x slower); a binary
 * built with OpenMP keeps its threads and gains from every core. `auto` is therefore every math
 * core with OpenMP, else half of them (1 on a 2-core machine).
 */
export const threadsFor = (llama: Llama, setting: number | "auto"): number =>
  setting !== "auto" ? setting : usesOpenMp(llama) ? Math.max(1, llama.cpuMathCores) : Math.max(1, Math.floor(llama.cpuMathCores / 2))

/** The native llama.cpp binding: one per process, disposed with its scope. */
export class LlamaRuntime extends Context.Tag("shimmy/LlamaRuntime")<LlamaRuntime, Llama>() {
  /** Uses the prebuilt binaries node-llama-cpp ships; never downloads or compiles anything. */
  static readonly make = Effect.gen(function*() {
    const config = yield* ShimmyConfig
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
        catch: (cause) => new RuntimeUnavailable({ reason: cause instanceof Error ? cause.message : String(cause) })
      }),
      (llama) => Effect.promise(() => llama.dispose())
    )
  }).pipe(Effect.withSpan("LlamaRuntime.make"))

  static readonly layer = Layer.scoped(LlamaRuntime, LlamaRuntime.make)
}
