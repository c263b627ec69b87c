import { Context, Deferred, Effect, ExecutionStrategy, Layer, Option, Scope, Stream } from "effect"
import { ModelLoadFailed, type RuntimeUnavailable } from "../domain/Errors.js"
import { openAiServices } from "../http/OpenAi.js"
import { Embeddings } from "../services/Embeddings.js"
import { Grammar } from "../services/Grammar.js"
import { LlamaEngine } from "../services/LlamaEngine.js"
import { LlamaRuntime } from "../services/LlamaRuntime.js"
import { ModelProbe } from "../services/ModelProbe.js"
import type { ModelRegistry } from "../services/ModelRegistry.js"
import type { ShimmyConfig } from "../services/ShimmyConfig.js"

/** What generation needs beyond the registry: everything that holds the native runtime. */
export type EngineServices = LlamaEngine | Grammar | Embeddings

/**
 * The engine and the `/v1` services over the native runtime, sharing the registry and config the
 * caller already built (so models are not discovered twice).
 */
export const engineServices: Layer.Layer<EngineServices, RuntimeUnavailable, ModelRegistry | ShimmyConfig> = openAiServices.pipe(
  Layer.provideMerge(LlamaEngine.DefaultWithoutDependencies),
  Layer.provideMerge(Grammar.DefaultWithoutDependencies),
  Layer.provide(LlamaRuntime.layer),
  Layer.provide(ModelProbe.Default)
)

const modelOf = (name: string) => (e: RuntimeUnavailable) => new ModelLoadFailed({ model: name, reason: e.message })

/**
 * Starts building the engine services on a fiber of their own and returns at once with stand-ins
 * for them, so the server can listen and answer while llama.cpp loads (importing node-llama-cpp
 * alone takes longer than the rest of start-up). Until the build completes the stand-ins report
 * nothing loaded; generation, tokenizing and grammars wait for it, then go to the real services.
 *
 * The services live in a scope forked from the caller's here, before anything the caller adds
 * later, so a server started afterwards drains before the models are unloaded. `ready` fails
 * when the runtime cannot be loaded.
 */
export const start = Effect.gen(function*() {
  const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
  const built = yield* Deferred.make<Context.Context<EngineServices>, RuntimeUnavailable>()
  yield* Layer.buildWithScope(engineServices, scope).pipe(Effect.intoDeferred(built), Effect.forkIn(scope))
  const service = <I extends EngineServices, S>(tag: Context.Tag<I, S>) => Effect.map(Deferred.await(built), (c) => Context.get(c, tag))
  const engine = service(LlamaEngine)
  // a grammar's only failure is a bad schema; without a runtime the command is ending anyway
  // (`ready` fails), and a request that asked for one meanwhile gets a server error
  const grammar = Effect.orDie(service(Grammar))
  // before the build completes nothing is loaded; a failed build ends the command (`ready`)
  const whenBuilt = <A>(f: (engine: LlamaEngine) => Effect.Effect<A>, before: A) =>
    Effect.flatMap(Deferred.poll(built), (poll) =>
      Option.match(poll, {
        onNone: () => Effect.succeed(before),
        onSome: (result) => result.pipe(Effect.flatMap((context) => f(Context.get(context, LlamaEngine))), Effect.orElseSucceed(() => before))
      }))

  const standIns = Context.make(
    LlamaEngine,
    LlamaEngine.make({
      generate: (request) => Stream.unwrap(Effect.map(Effect.mapError(engine, modelOf(request.model)), (e) => e.generate(request))),
      preload: (name) => Effect.flatMap(Effect.mapError(engine, modelOf(name)), (e) => e.preload(name)),
      loaded: whenBuilt((e) => e.loaded, []),
      tokenize: (name, text) => Effect.flatMap(Effect.mapError(engine, modelOf(name)), (e) => e.tokenize(name, text)),
      acquire: (name) => Effect.flatMap(Effect.mapError(engine, modelOf(name)), (e) => e.acquire(name)),
      stats: whenBuilt((e) => e.stats, [])
    })
  ).pipe(
    Context.add(
      Grammar,
      Grammar.make({
        json: Effect.flatMap(grammar, (g) => g.json),
        forJsonSchema: (schema) => Effect.flatMap(grammar, (g) => g.forJsonSchema(schema))
      })
    ),
    Context.add(
      Embeddings,
      Embeddings.make({
        embed: (model, inputs) => Effect.flatMap(Effect.mapError(service(Embeddings), modelOf(model)), (e) => e.embed(model, inputs))
      })
    )
  )
  return { context: standIns, ready: Effect.asVoid(Deferred.await(built)) } as const
})
