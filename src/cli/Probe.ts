import { Args, Command } from "@effect/cli"
import { Console, Effect, Option, Stream } from "effect"
import { GenerationFailed } from "../domain/Errors.js"
import { LlamaEngine } from "../services/LlamaEngine.js"
import { ModelRegistry } from "../services/ModelRegistry.js"
import { live, modelDirs, threads } from "./Shared.js"

const PROBE_PROMPT = "Once upon a time"
const PROBE_TOKENS = 16

export const probeCommand = Command.make(
  "probe",
  { model: Args.text({ name: "model" }).pipe(Args.optional), modelDirs, threads },
  (o) =>
    Effect.gen(function*() {
      const registry = yield* ModelRegistry
      const engine = yield* LlamaEngine
      const targets = Option.isSome(o.model) ? [(yield* registry.resolve(o.model.value)).info] : yield* registry.list
      let failures = 0
      for (const info of targets) {
        const outcome = yield* Effect.gen(function*() {
          const { loadMillis, contextSize } = yield* engine.preload(info.name)
          const started = performance.now()
          const text = yield* engine.generate({
            model: info.name,
            prompt: PROBE_PROMPT,
            sampling: { maxTokens: PROBE_TOKENS, temperature: 0, stop: [] }
          }).pipe(
            Stream.runFold("", (acc, e) => (e._tag === "Token" ? acc + e.text : acc))
          )
          const millis = performance.now() - started
          const chat = yield* engine.capabilities(info.name)
          const tools = chat.tools ? `tools${chat.parallelToolCalls ? " (parallel)" : ""}` : "no tools"
          const thinking = chat.thinking ? `thinking${chat.reasoningEffort ? " (effort)" : ""}` : "no thinking"
          return `ok    ${info.name}: loaded in ${loadMillis} ms (context ${contextSize}), ` +
            `${PROBE_TOKENS} tokens in ${millis.toFixed(0)} ms: ${JSON.stringify(text)}\n` +
            `      chat template ${chat.template}: ${tools}, ${thinking}`
        }).pipe(
          Effect.catchAll((e) =>
            Effect.sync(() => {
              failures++
              return `FAIL  ${info.name}: ${e.message}`
            })
          )
        )
        yield* Console.log(outcome)
      }
      if (targets.length === 0) yield* Console.log("No models found.")
      if (failures > 0) {
        return yield* Effect.fail(
          new GenerationFailed({ model: "probe", reason: `${failures} of ${targets.length} model(s) failed` })
        )
      }
    })
).pipe(
  Command.provide((o) => live(o)),
  Command.withDescription("Load a model (all models when none is named), time it and run a short generation")
)
