import { Duration, Effect, RcMap } from "effect"
import type { LlamaEmbeddingContext, Token } from "node-llama-cpp"
import { ContextLengthExceeded, GenerationFailed, InvalidRequest, ModelLoadFailed } from "../domain/Errors.js"
import { unsupportedCharacters } from "./Gguf.js"
import { LlamaEngine } from "./LlamaEngine.js"

/** Vectors for a batch of inputs, in input order, with the tokens they took. */
export interface EmbeddingResult {
  readonly vectors: ReadonlyArray<ReadonlyArray<number>>
  readonly promptTokens: number
}

export interface EmbedOptions {
  /** an input longer than the context is cut to fit instead of refused */
  readonly truncate?: boolean | undefined
  /** how long the model stays loaded afterwards; left out: the default */
  readonly keepAlive?: Duration.Duration | undefined
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

    // the lookup holds the engine's loaded model, so it stays in memory while its context lives;
    // the context lives until the engine unloads the model (its keep-alive)
    const contexts = yield* RcMap.make({
      lookup: (name: string) =>
        Effect.gen(function*() {
          const loaded = yield* engine.hold(name)
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
      idleTimeToLive: Duration.infinity
    })
    yield* engine.onUnload((name) => RcMap.invalidate(contexts, name))

    const embed = Effect.fn("Embeddings.embed")(function*(
      model: string,
      inputs: ReadonlyArray<string>,
      options: EmbedOptions = {}
    ) {
      const loaded = yield* engine.acquire(model, options.keepAlive ?? engine.defaultKeepAlive)
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
      for (let tokens of tokenized) {
        // the count includes the BOS / EOS tokens the embedding context adds
        let length = embedding.context.calculateInputLength(tokens)
        if (length >= embedding.contextSize && options.truncate === true) {
          tokens = tokens.slice(0, Math.max(1, tokens.length - (length - embedding.contextSize + 1)))
          length = embedding.context.calculateInputLength(tokens)
        }
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
