import { Duration, Effect, Exit, Option, RcMap, Stream } from "effect"
import { GenerationFailed, InvalidRequest, ModelLoadFailed } from "../domain/Errors.js"
import type { GenerationEvent, GenerationRequest } from "../domain/Generation.js"
import { aheadFeed } from "./Ahead.js"
import * as BatchSchedule from "./BatchSchedule.js"
import { capabilitiesOf } from "./ChatFormat.js"
import { chatFormatFor } from "./ChatTemplate.js"
import { type Feedable, feedable, toStream } from "./Feed.js"
import { generate as generateTokens, GrammarDeadEnd } from "./Generation.js"
import { Grammar, grammarStops } from "./Grammar.js"
import * as KeepAlive from "./KeepAlive.js"
import { backendOf, LlamaRuntime, loadNodeLlamaCpp, stepThreadsFor } from "./LlamaRuntime.js"
import type { LoadedModel } from "./LoadedModel.js"
import { Metrics } from "./Metrics.js"
import { ModelProbe } from "./ModelProbe.js"
import { ModelRegistry } from "./ModelRegistry.js"
import * as ModelSlots from "./ModelSlots.js"
import { makeNativeGarbage, NATIVE_GARBAGE_BUDGET, samplerGarbage } from "./NativeGarbage.js"
import * as Prompt from "./Prompt.js"
import { guardSampling } from "./SamplerGuard.js"
import * as SequencePool from "./SequencePool.js"
import { ShimmyConfig } from "./ShimmyConfig.js"

export type { LoadedModel } from "./LoadedModel.js"

/** A loaded model's scheduler at one moment. */
export interface SchedulerStats {
  readonly model: string
  readonly sequences: number
  readonly free: number
  /** requests waiting for a sequence */
  readonly queued: number
  /** decodes its context ran, and the tokens they carried (tokens / decodes: how well steps batch) */
  readonly decodes: number
  readonly decodedTokens: number
  /** the threads a decode of one token runs on now, and the last step of several (each measured, see StepThreads.ts) */
  readonly loneThreads: number
  readonly threads: number
}

/** A model in memory: what it takes and when it is due to leave. */
export interface ResidentModel {
  readonly model: string
  /** bytes of its weights in memory */
  readonly sizeBytes: number
  /** of those, bytes offloaded to the GPU */
  readonly vramBytes: number
  readonly contextSize: number
  readonly loadMillis: number
  /** when its load finished (epoch ms) */
  readonly loadedAt: number
  /** when a use of it last began or ended (epoch ms) */
  readonly lastUsed: number | undefined
  readonly expiry: KeepAlive.Expiry
}

/** A model being loaded now (its probe, weights and context), since when (epoch ms). */
export interface LoadingModel {
  readonly model: string
  readonly since: number
}

// a vocabulary's size where the model's metadata does not tell it
const VOCABULARY_GUESS = 32_000

// the longest a step waits for a generating sequence that has not asked to decode again (its
// client reads slowly); longer than the JS work between two tokens on a busy machine
const BATCH_WAIT_MS = 10

// events a generation may run ahead of its consumer
const AHEAD = 16
// a reply that is not streamed takes its events AHEAD at a time, with room for more, so that the
// decode never waits for the consumer to take a chunk
const WHOLE = { capacity: 4 * AHEAD, chunk: AHEAD } as const

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** The prompt a chat request renders to, its text included (tests, diagnostics); nothing is generated. */
export const renderPrompt = (request: GenerationRequest) =>
  Effect.flatMap(LlamaEngine, (engine) => engine.render(request))

/** What a model's chat template supports: tools (and parallel calls), thinking. Loads the model. */
export const chatCapabilities = (name: string) => Effect.flatMap(LlamaEngine, (engine) => engine.capabilities(name))

export class LlamaEngine extends Effect.Service<LlamaEngine>()("shimmy/LlamaEngine", {
  scoped: Effect.gen(function*() {
    const config = yield* ShimmyConfig
    const registry = yield* ModelRegistry
    const runtime = yield* LlamaRuntime
    const grammars = yield* Grammar
    const probe = yield* ModelProbe
    const metrics = yield* Metrics
    // the schedulers of the loaded models, for `stats`; an entry lives as long as its model
    const schedulers = new Map<string, Effect.Effect<SchedulerStats>>()
    const resident = new Map<string, Omit<ResidentModel, "expiry" | "lastUsed">>()
    // models whose load has begun and not ended, with when it began
    const loading = new Map<string, number>()
    // what else holds a loaded model (embedding contexts) lets go of it before it unloads
    const unloadHooks: Array<(name: string) => Effect.Effect<void>> = []
    const garbage = makeNativeGarbage(NATIVE_GARBAGE_BUDGET)

    // idle models in memory, least recently used first: the order in which they make room
    const idleModels: Effect.Effect<ReadonlyArray<string>> = Effect.suspend(() =>
      Effect.forEach([...resident.keys()], (model) =>
        Effect.map(
          Effect.all([keepAlive.isIdle(model), keepAlive.lastUsed(model)]),
          ([idle, at]) => ({ model, idle, at: at ?? 0 })
        ))
    ).pipe(Effect.map((all) => all.filter((m) => m.idle).sort((a, b) => a.at - b.at).map((m) => m.model)))
    const slots: ModelSlots.ModelSlots = yield* ModelSlots.make({
      max: config.maxLoadedModels,
      maxQueue: config.maxQueue,
      idleModels,
      evict: (model): Effect.Effect<boolean> =>
        Effect.tap(Effect.suspend(() => keepAlive.evictIfIdle(model)), (evicted) =>
          evicted
            ? Effect.zipRight(
              Effect.sync(() => metrics.evicted(model)),
              Effect.logInfo(`unloaded '${model}' to make room (SHIMMY_MAX_LOADED_MODELS=${config.maxLoadedModels})`)
            )
            : Effect.void)
    })

    const load = (name: string) =>
      Effect.gen(function*() {
        // the slot is the model's until it leaves memory (this scope closes) or its load fails
        // (a failed load stays in the map, its scope open, so the slot is given back here too)
        yield* Effect.addFinalizer(() => slots.release(name))
        // the request that started this load claimed the slot; it is held still unless that
        // request left before the load began
        yield* slots.claim(name, { unbounded: true })
        yield* Effect.acquireRelease(
          Effect.sync(() => void loading.set(name, Date.now())),
          () => Effect.sync(() => void loading.delete(name))
        )
        const registered = yield* registry.resolve(name)
        if (registered.info.status === "unusable") {
          return yield* Effect.fail(new ModelLoadFailed({ model: name, reason: registered.info.reason ?? "unusable" }))
        }
        // what llama.cpp would abort on is found in a child process, not here
        yield* probe.check(registered)
        const llama = yield* Effect.mapError(runtime.llama, (e) =>
          new ModelLoadFailed({ model: name, reason: e.message }))
        // generation constructs node-llama-cpp's classes synchronously; a runtime a library user
        // provides may come from their own import of it
        yield* Effect.mapError(loadNodeLlamaCpp, (e) =>
          new ModelLoadFailed({ model: name, reason: e.message }))
        const stepThreads = stepThreadsFor(llama, config.threads)
        const threads = stepThreads.batch
        const started = Date.now()
        const model = yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: () =>
              llama.loadModel({
                modelPath: registered.info.path,
                useMmap: config.mmap,
                ...(config.gpu === "off" ? { gpuLayers: 0 } : {})
              }),
            catch: (cause) => new ModelLoadFailed({ model: name, reason: describe(cause) })
          }),
          (model) => Effect.promise(() => model.dispose())
        )
        const contextSize = Math.min(config.contextSize, model.trainContextSize)
        const batching = BatchSchedule.make({
          maxWaitMs: BATCH_WAIT_MS,
          fewerThreads: stepThreads.lone,
          cores: llama.cpuMathCores
        })
        const context = yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: () =>
              model.createContext({
                sequences: config.parallel,
                contextSize,
                threads,
                batching: { dispatchSchedule: batching.dispatch }
              }),
            catch: (cause) =>
              new ModelLoadFailed({ model: name, reason: `cannot create a context: ${describe(cause)}` })
          }),
          (context) => Effect.promise(() => context.dispose())
        )
        if (!guardSampling(context)) {
          yield* Effect.logWarning("node-llama-cpp's context has changed shape: a failed sampling may hang its request")
        }
        if (!batching.attach(context)) {
          yield* Effect.logWarning("node-llama-cpp's context has changed shape: concurrent requests decode apart")
        }
        const sequences = Array.from({ length: config.parallel }, () => context.getSequence())
        const pool = yield* SequencePool.make(sequences, { model: registered.info.name, maxQueue: config.maxQueue })
        const stats = Effect.map(pool.stats, (p): SchedulerStats => ({
          model: registered.info.name,
          sequences: p.size,
          free: p.free,
          queued: p.queued,
          decodes: batching.counts().decodes,
          decodedTokens: batching.counts().tokens,
          loneThreads: batching.loneThreads() ?? threads,
          threads: batching.batchThreads() ?? threads
        }))
        // a sequence given back decodes no more: the schedule stops waiting for it
        const sequence = Effect.tap(pool.take, (taken) =>
          Effect.addFinalizer(() => Effect.sync(() => batching.leave(taken))))
        yield* Effect.acquireRelease(
          Effect.sync(() =>
            void schedulers.set(registered.info.name, stats)
          ),
          () => Effect.sync(() => void schedulers.delete(registered.info.name))
        )
        const loadMillis = Date.now() - started
        const sizeBytes = model.size
        yield* Effect.acquireRelease(
          Effect.sync(() =>
            void resident.set(registered.info.name, {
              model: registered.info.name,
              sizeBytes,
              // llama.cpp offloads whole layers; a model with every layer on the GPU has its weights there
              vramBytes: model.gpuLayers === 0 ? 0 : sizeBytes,
              contextSize,
              loadMillis,
              loadedAt: Date.now()
            })
          ),
          () => Effect.sync(() => void resident.delete(registered.info.name))
        )
        yield* Effect.sync(() => metrics.loaded(registered.info.name, (Date.now() - started) / 1000))
        yield* Effect.sync(() => void loading.delete(name))

        return {
          registered,
          model,
          contextSize,
          threads,
          loadMillis,
          evaluationGarbage: samplerGarbage(
            model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? VOCABULARY_GUESS
          ),
          sequence,
          free: Effect.map(pool.stats, (p) => p.free)
        } satisfies LoadedModel
      }).pipe(
        Effect.tapErrorCause(() => Effect.zipRight(Effect.sync(() => void loading.delete(name)), slots.release(name))),
        Effect.withSpan("LlamaEngine.load", { attributes: { model: name } })
      )

    // models stay in the map until the keep-alive (below) takes them out
    const models = yield* RcMap.make({ lookup: load, idleTimeToLive: Duration.infinity })
    const keepAlive: KeepAlive.KeepAlive = yield* KeepAlive.make(
      config.modelIdleTimeout,
      (name) =>
        Effect.zipRight(
          Effect.forEach(unloadHooks, (hook) => hook(name), { discard: true }),
          RcMap.invalidate(models, name)
        ).pipe(Effect.withSpan("LlamaEngine.unload", { attributes: { model: name } })),
      // a model whose last use ended may make room for a request waiting for a slot
      { onIdle: () => slots.changed }
    )

    /**
     * The loaded model for a name (loading it on first use), held and in use for the life of the
     * scope; once its last use ends it stays loaded for `keep` (left out: the keep-alive it has; a
     * request's generation passes its own or the default, a look at the template passes none).
     */
    const acquire = Effect.fn("LlamaEngine.acquire")(function*(name: string, keep?: Duration.Duration) {
      const registered = yield* registry.resolve(name)
      // the use is marked first, so its end is seen after the map's hold is let go
      const key = registered.info.name
      yield* keepAlive.use(key, keep)
      // a slot first (it may wait, or fail with ServerBusy), outside the map, so that what a full
      // queue answers is not remembered as the model's load failing
      return yield* Effect.zipRight(slots.claim(key), RcMap.get(models, key)).pipe(
        // a claim whose load never began (interrupted, or the map remembers a failed load) is
        // given back; a load that began gives it back itself
        Effect.onExit((exit) =>
          Exit.isSuccess(exit) || resident.has(key) || loading.has(key) ? Effect.void : slots.release(key)
        )
      )
    })

    /** A loaded model held for the scope without counting as a use (what lives beside it: an embedding context). */
    const hold = (name: string) =>
      Effect.flatMap(registry.resolve(name), (registered) => RcMap.get(models, registered.info.name))

    // the binding a loaded model was loaded with (so loaded already)
    const llamaOf = (loaded: LoadedModel) =>
      Effect.mapError(
        runtime.llama,
        (e) => new ModelLoadFailed({ model: loaded.registered.info.name, reason: e.message })
      )

    // a generation's events as a feed, running in the caller's scope
    const open = (request: GenerationRequest) =>
      Effect.gen(function*() {
        // the clock of time-to-first-token: from the ask, queue wait and a first load included
        const asked = performance.now()
        const loaded = yield* acquire(request.model, request.keepAlive ?? config.modelIdleTimeout)
        const { forced, grammar, parse, prompt } = yield* Prompt.prepare(
          yield* llamaOf(loaded),
          grammars,
          loaded,
          request
        )
        const sequence = yield* loaded.sequence
        // the evaluation's sampler becomes native garbage when the generation ends
        yield* Effect.addFinalizer(() => Effect.sync(() => garbage.add(loaded.evaluationGarbage)))
        const name = loaded.registered.info.name
        // a chat template's end-of-turn markers and a grammar's terminator stop generation like
        // the request's own stops
        const extra = [...prompt.stops, ...grammarStops(grammar)]
        const sampling = extra.length === 0
          ? request.sampling
          : { ...request.sampling, stop: [...request.sampling.stop, ...extra] }
        // the generation runs ahead of its consumer, by up to AHEAD events (Ahead.ts): the next
        // token is being computed while the last one is rendered and written, a slow consumer gets
        // the waiting events in one chunk, and the bound is the back-pressure. Closing the scope
        // stops the pump, which returns the generator (after the token in progress) before the
        // sequence goes back to the pool.
        const observed = metrics.generation(name, asked)
        yield* Effect.addFinalizer(() => Effect.sync(observed.end))
        return yield* aheadFeed(
          generateTokens({
            model: loaded.model,
            sequence,
            promptTokens: prompt.tokens,
            sampling,
            contextSize: loaded.contextSize,
            grammar,
            stopTokens: prompt.stopTokens,
            parse
          }),
          {
            ...(request.streamed === false ? WHOLE : { capacity: AHEAD }),
            observe: observed.event,
            failure: (cause) =>
              cause instanceof GrammarDeadEnd
                ? new InvalidRequest({
                  param: forced ? "tool_choice" : "response_format",
                  reason: forced
                    ? `model '${name}' cannot write the forced tool call: ${cause.message}`
                    : `model '${name}' cannot write output in the requested format: ${cause.message}`
                })
                : new GenerationFailed({ model: name, reason: describe(cause) })
          }
        )
      })

    /**
     * Generates text as a stream of events (`Token`, `Reasoning`, `ToolCall`) ending in one `Done`.
     * The model is loaded on first use; a sequence is held while the stream runs and given back
     * when it ends or is interrupted (after the token in progress). The stream can also be read
     * as a `Feed`, without a fiber per event (a streamed reply's writer does).
     */
    const generate = (request: GenerationRequest) =>
      feedable(
        Stream.unwrapScoped(Effect.map(open(request), toStream)).pipe(Stream.withSpan("LlamaEngine.generate")),
        // the span lasts as long as the feed's scope, as the stream's lasts as long as the stream
        Effect.flatMap(
          Effect.makeSpanScoped("LlamaEngine.generate"),
          (span) => Effect.withParentSpan(open(request), span)
        )
      ) satisfies Feedable<GenerationEvent, unknown>

    const render = (request: GenerationRequest) =>
      Effect.scoped(Effect.gen(function*() {
        const loaded = yield* acquire(request.model)
        const { chat } = yield* Prompt.render(yield* llamaOf(loaded), loaded, request)
        if (chat === undefined) {
          return yield* Effect.fail(new InvalidRequest({ param: "prompt", reason: "only chat prompts are rendered" }))
        }
        return chat
      }))

    const capabilities = (name: string) =>
      Effect.scoped(Effect.gen(function*() {
        const loaded = yield* acquire(name)
        const llamaCpp = yield* Effect.mapError(loadNodeLlamaCpp, (e) =>
          new ModelLoadFailed({ model: name, reason: e.message }))
        return capabilitiesOf(chatFormatFor(llamaCpp, loaded.model))
      })).pipe(Effect.withSpan("LlamaEngine.capabilities", { attributes: { model: name } }))

    return {
      generate,
      /** The prompt a chat request renders to, its text included; nothing is generated. */
      render,
      /** What a model's chat template supports: tools (and parallel calls), thinking. Loads the model. */
      capabilities,
      /** Loads a model now (if it is not yet) and tells how long its load took; it then stays for `keep`. */
      preload: (name: string, keep?: Duration.Duration) =>
        Effect.scoped(
          Effect.map(
            acquire(name, keep ?? config.modelIdleTimeout),
            (l) => ({ loadMillis: l.loadMillis, contextSize: l.contextSize })
          )
        ),
      /**
       * Takes a model out of memory: now when it is idle (done when this returns), else when its
       * last use ends (a running generation is never cut short). Returns whether it left now.
       */
      unload: (name: string) =>
        Effect.flatMap(registry.resolve(name), (registered) => keepAlive.keep(registered.info.name, Duration.zero)),
      /** The models in memory, what they take and when each is due to leave. */
      resident: Effect.suspend(() =>
        Effect.forEach(
          [...resident.values()],
          (r) =>
            Effect.map(
              Effect.all([keepAlive.expiry(r.model), keepAlive.lastUsed(r.model)]),
              ([expiry, lastUsed]): ResidentModel => ({ ...r, expiry, lastUsed })
            )
        )
      ),
      /** The models being loaded now, and since when. */
      loading: Effect.sync(() => [...loading.entries()].map(([model, since]): LoadingModel => ({ model, since }))),
      /** The model slots (SHIMMY_MAX_LOADED_MODELS): the limit, those held, the requests waiting for one. */
      slots: slots.stats,
      /** The loaded model named, if it is in memory. */
      residentOf: (name: string) => Effect.sync(() => Option.fromNullable(resident.get(name))),
      /**
       * Unloads a model now if no request uses it, else when its last use ends. Unlike `unload` it
       * tells which happened and whether it was in memory at all: "unloaded" (gone now),
       * "unloading" (in use; leaves when its last use ends), "not_loaded".
       */
      unloadNamed: (name: string) =>
        Effect.flatMap(registry.resolve(name), (registered) => {
          const key = registered.info.name
          if (!resident.has(key) && !loading.has(key)) return Effect.succeed("not_loaded" as const)
          return Effect.map(
            keepAlive.keep(key, Duration.zero),
            (now) => now ? "unloaded" as const : "unloading" as const
          )
        }),
      /** How long a model stays loaded after a request that says nothing of it (SHIMMY_KEEP_ALIVE). */
      defaultKeepAlive: config.modelIdleTimeout,
      /** Runs `hook` before a model is unloaded, so what holds it lets go. */
      onUnload: (hook: (name: string) => Effect.Effect<void>) => Effect.sync(() => void unloadHooks.push(hook)),
      hold,
      /** Names of the models in memory. */
      loaded: RcMap.keys(models),
      tokenize: (name: string, text: string) =>
        Effect.scoped(Effect.flatMap(acquire(name), (l) => Prompt.tokenize(l, text))),
      acquire,
      /** Per loaded model: its sequences, how many are free and how many requests wait (read-only). */
      stats: Effect.suspend(() => Effect.all([...schedulers.values()])),
      /** What llama.cpp runs on and why, once the binding has loaded (this starts no load). */
      backend: Effect.map(runtime.current, Option.map((llama) => backendOf(llama, config.gpu, config.threads)))
    } as const
  }),
  dependencies: [ModelRegistry.Default, Grammar.Default, LlamaRuntime.layer, ModelProbe.Default, Metrics.Default]
}) {}
