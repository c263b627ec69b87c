import { Effect, RcMap } from "effect"
import type { LlamaEmbeddingContext, Token } from "node-llama-cpp"
import { ContextLengthExceeded, GenerationFailed, InvalidRequest, ModelLoadFailed } from "../domain/Errors.js"
import { unsupportedCharacters } from "./Gguf.js"
import { LlamaEngine } from "./LlamaEngine.js"
import { ShimmyConfig } from "./ShimmyConfig.js"

/** Vectors for a batch of inputs, in input order, with the tokens they took. */
export interface EmbeddingResult {
  readonly vectors: ReadonlyArray<ReadonlyArray<number>>
  readonly promptTokens: number
}

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

interface EmbeddingModel {
  readonly context: LlamaEmbeddingContext
  readonly contextSize: number
  /** one sequence per embedding context: inputs are evaluated one at a time */
  readonly lock: Effect.Semaphore
}

/**
 * Embeddings from any loaded GGUF model, through a separate embedding context next to the model's
 * generation context (sharing its weights). Models that are not embedding models still give
 * valid vectors, just without meaning.
 */
export class Embeddings extends Effect.Service<Embeddings>()("shimmy/Embeddings", {
  scoped: Effect.gen(function*() {
    const engine = yield* LlamaEngine
    const config = yield* ShimmyConfig

    // the lookup holds the engine's loaded model, so it stays in memory while its context lives
    const contexts = yield* RcMap.make({
      lookup: (name: string) =>
        Effect.gen(function*() {
          const loaded = yield* engine.acquire(name)
          const context = yield* Effect.acquireRelease(
            Effect.tryPromise({
              try: () =>
                loaded.model.createEmbeddingContext({ contextSize: loaded.contextSize, threads: loaded.threads }),
              catch: (cause) =>
                new ModelLoadFailed({ model: name, reason: `cannot create an embedding context: ${describe(cause)}` })
            }),
            (context) => Effect.promise(() => context.dispose())
          )
          return {
            context,
            contextSize: loaded.contextSize,
            lock: yield* Effect.makeSemaphore(1)
          } satisfies EmbeddingModel
        }),
      idleTimeToLive: config.modelIdleTimeout
    })

    const embed = Effect.fn("Embeddings.embed")(function*(model: string, inputs: ReadonlyArray<string>) {
      const loaded = yield* engine.acquire(model)
      const name = loaded.registered.info.name
      const tokenized: Array<Array<Token>> = []
      for (const [index, input] of inputs.entries()) {
        const param = inputs.length > 1 ? `input[${index}]` : "input"
        if (input.length === 0) {
          return yield* Effect.fail(new InvalidRequest({ param, reason: "input must not be empty" }))
        }
        const bad = unsupportedCharacters(loaded.registered.vocabulary, input)
        if (bad.length > 0) {
          return yield* Effect.fail(
            new InvalidRequest({
              param,
              reason: `model '${name}' has no tokens for these characters: ${
                bad.slice(0, 16).map((c) => JSON.stringify(c)).join(", ")
              }`
            })
          )
        }
        tokenized.push(
          yield* Effect.try({
            try: () => loaded.model.tokenize(input, false),
            catch: (cause) => new GenerationFailed({ model: name, reason: `tokenization failed: ${describe(cause)}` })
          })
        )
      }
      const embedding = yield* RcMap.get(contexts, name)
      let promptTokens = 0
      const vectors: Array<ReadonlyArray<number>> = []
      for (const tokens of tokenized) {
        // the count includes the BOS / EOS tokens the embedding context adds
        const length = embedding.context.calculateInputLength(tokens)
        if (length >= embedding.contextSize) {
          return yield* Effect.fail(
            new ContextLengthExceeded({ model: name, promptTokens: length, contextSize: embedding.contextSize })
          )
        }
        const result = yield* embedding.lock.withPermits(1)(
          Effect.tryPromise({
            try: () => embedding.context.getEmbeddingFor(tokens),
            catch: (cause) => new GenerationFailed({ model: name, reason: `embedding failed: ${describe(cause)}` })
          })
        )
        promptTokens += length
        vectors.push(result.vector)
      }
      return { vectors, promptTokens } satisfies EmbeddingResult
    }, Effect.scoped)

    return {
      /** One vector per input; fails before any evaluation if an input cannot be tokenized or is too long. */
      embed
    } as const
  }),
  dependencies: [LlamaEngine.Default]
}) {}
