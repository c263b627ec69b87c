import { Context, Effect, Layer } from "effect"
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp"
import { RuntimeUnavailable } from "../domain/Errors.js"
import { ShimmyConfig } from "./ShimmyConfig.js"

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
