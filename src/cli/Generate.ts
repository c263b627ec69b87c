import { Command, Options } from "@effect/cli"
import { Console, Effect, Option, ParseResult, Schema, Stream } from "effect"
import { InvalidRequest } from "../domain/Errors.js"
import { GenerateRequest, samplingOf } from "../domain/SeedApi.js"
import { liveWith } from "../services/Live.js"
import { LlamaEngine } from "../services/LlamaEngine.js"
import { ModelRegistry } from "../services/ModelRegistry.js"
import { configOverrides, modelDirs, root, threads } from "./Shared.js"

const options = {
  prompt: Options.text("prompt").pipe(Options.withAlias("p"), Options.withDescription("The prompt to complete")),
  model: Options.text("model").pipe(
    Options.withAlias("m"),
    Options.withDescription("Model name (may be left out when exactly one model is found)"),
    Options.optional
  ),
  maxTokens: Options.integer("max-tokens").pipe(
    Options.withDescription("Maximum tokens to generate"),
    Options.withDefault(100)
  ),
  temperature: Options.float("temperature").pipe(
    Options.withDescription("Sampling temperature; 0 is greedy"),
    Options.withDefault(0.7)
  ),
  topP: Options.float("top-p").pipe(Options.optional),
  topK: Options.integer("top-k").pipe(Options.optional),
  minP: Options.float("min-p").pipe(Options.optional),
  seed: Options.integer("seed").pipe(Options.optional),
  repeatPenalty: Options.float("repeat-penalty").pipe(Options.optional),
  stop: Options.text("stop").pipe(Options.withDescription("Stop string (repeatable)"), Options.repeated),
  modelDirs,
  threads
}

const optional = <K extends string, A>(key: K, value: Option.Option<A>) =>
  Option.match(value, { onNone: () => ({}), onSome: (v) => ({ [key]: v }) }) as { [P in K]?: A }

export const generateCommand = Command.make("generate", options, (o) =>
  Effect.gen(function*() {
    const { verbose } = yield* root
    const registry = yield* ModelRegistry
    const engine = yield* LlamaEngine
    const model = yield* registry.resolveDefault(o.model)
    // the CLI validates with the same schema as the HTTP API, so bounds and defaults agree
    const request = yield* Schema.decodeUnknown(GenerateRequest)({
      model: model.info.name,
      prompt: o.prompt,
      max_tokens: o.maxTokens,
      temperature: o.temperature,
      ...optional("top_p", o.topP),
      ...optional("top_k", o.topK),
      ...optional("min_p", o.minP),
      ...optional("seed", o.seed),
      ...optional("repeat_penalty", o.repeatPenalty),
      ...(o.stop.length > 0 ? { stop: o.stop } : {})
    }).pipe(
      Effect.mapError((e) => {
        const issue = ParseResult.ArrayFormatter.formatErrorSync(e)[0]
        return new InvalidRequest({ reason: `${issue?.path.join(".") ?? ""}: ${issue?.message ?? e.message}` })
      })
    )
    const started = performance.now()
    let firstToken = 0
    const done = yield* engine.generate({ model: request.model, prompt: request.prompt, sampling: samplingOf(request) })
      .pipe(
        Stream.tap((event) =>
          Effect.sync(() => {
            if (event._tag !== "Token") return
            if (firstToken === 0) firstToken = performance.now()
            process.stdout.write(event.text)
          })
        ),
        Stream.runLast
      )
    process.stdout.write("\n")
    if (verbose && Option.isSome(done) && done.value._tag === "Done") {
      const { usage, finishReason } = done.value
      const seconds = (performance.now() - started) / 1000
      const decode = (performance.now() - firstToken) / 1000
      yield* Console.error(
        `[${model.info.name}: ${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion tokens in ${
          seconds.toFixed(3)
        } s; ` +
          `first token ${((firstToken - started) / 1000).toFixed(3)} s; ` +
          `${
            usage.completion_tokens > 1 ? ((usage.completion_tokens - 1) / decode).toFixed(1) : "-"
          } tokens/s decode; finish: ${finishReason}]`
      )
    }
  })).pipe(
    // a one-shot command has no other requests to protect from a model that aborts llama.cpp: the
    // child-process probe would only add its ~2 s to every run
    Command.provide((o) => liveWith({ ...configOverrides(o), probeModels: false })),
    Command.withDescription("Generate text from a prompt, streamed to stdout as it is generated")
  )
