import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Duration, Effect, Option } from "effect"
import { InvalidRequest, ModelNotFound } from "../../domain/Errors.js"
import { type Answer, collect, type GenerationEvent, type GenerationRequest } from "../../domain/Generation.js"
import { Embeddings } from "../../services/Embeddings.js"
import { LlamaEngine } from "../../services/LlamaEngine.js"
import { ModelRegistry } from "../../services/ModelRegistry.js"
import { requestUrl } from "../RequestUrl.js"
import * as Sse from "../Sse.js"
import {
  chatGeneration,
  chatRequest,
  embeddingsRequest,
  embedRequest,
  generateGeneration,
  generateRequest,
  keepAliveOf,
  samplingOf
} from "./Decode.js"
import * as Render from "./Render.js"

/**
 * `/api/chat`, `/api/generate`, `/api/embed` and `/api/embeddings`: each through the one engine,
 * answered as one JSON object (`stream: false`) or NDJSON chunks (Ollama's default).
 */

const whereOf = Effect.map(HttpServerRequest.HttpServerRequest, (request) => ({
  method: request.method,
  path: requestUrl(request).pathname
}))

/** A model the registry can serve; an unusable one is as unknown to Ollama's clients as a missing one. */
export const usableModel = (name: string) =>
  Effect.gen(function*() {
    const registry = yield* ModelRegistry
    const found = yield* registry.resolve(name)
    if (found.info.status === "unusable") {
      const usable = (yield* registry.list).filter((m) => m.status !== "unusable").map((m) => m.name)
      return yield* Effect.fail(new ModelNotFound({ model: name, available: usable }))
    }
    return found
  })

/**
 * Holds the model for the caller's scope (loading it if it is not in memory) and records how long
 * a load took; the generation's own hold then finds it loaded.
 */
const using = (name: string, keep: Duration.Duration | undefined, timing: Render.Timing) =>
  Effect.gen(function*() {
    const engine = yield* LlamaEngine
    const registered = yield* usableModel(name)
    const before = yield* engine.residentOf(registered.info.name)
    const started = process.hrtime.bigint()
    yield* engine.acquire(name, keep)
    timing.evalStart = process.hrtime.bigint()
    if (Option.isNone(before)) timing.loadNs = Number(timing.evalStart - started)
  })

/** Tools and thinking only where the model's template has them, as Ollama refuses them otherwise. */
const supported = (name: string, generation: GenerationRequest) =>
  Effect.gen(function*() {
    if (generation.tools === undefined && generation.thinking?.enabled !== true) return
    const engine = yield* LlamaEngine
    const capabilities = yield* engine.capabilities(name)
    if (generation.tools !== undefined && !capabilities.tools) {
      return yield* Effect.fail(
        new InvalidRequest({ param: "tools", reason: `model '${name}' does not support tools` })
      )
    }
    if (generation.thinking?.enabled === true && !capabilities.thinking) {
      return yield* Effect.fail(
        new InvalidRequest({ param: "think", reason: `model '${name}' does not support thinking` })
      )
    }
  })

/** A request with nothing to generate: loads the model (a preload), or with `keep_alive` 0 unloads it. */
const loadOnly = <A>(
  name: string,
  keep: Duration.Duration | undefined,
  render: (reason: "load" | "unload") => A
) =>
  Effect.gen(function*() {
    const engine = yield* LlamaEngine
    yield* usableModel(name)
    if (keep !== undefined && Duration.isZero(keep)) {
      yield* engine.unload(name)
      return HttpServerResponse.unsafeJson(render("unload"))
    }
    yield* engine.preload(name, keep)
    return HttpServerResponse.unsafeJson(render("load"))
  })

/**
 * Runs a generation as Ollama answers it: one JSON object (the model held only until the answer is
 * complete, so `keep_alive: 0` unloads it before the answer is sent), or NDJSON chunks (the model
 * held for the request, which lasts as long as the stream).
 */
const answer = <W, C>(
  model: string,
  stream: boolean,
  generation: GenerationRequest,
  timing: Render.Timing,
  render: {
    readonly whole: (model: string, answer: Answer, timing: Render.Timing) => W
    readonly chunks: (model: string, timing: Render.Timing) => (event: GenerationEvent) => ReadonlyArray<C>
  }
) =>
  Effect.gen(function*() {
    const engine = yield* LlamaEngine
    const prepared = Effect.gen(function*() {
      yield* using(model, generation.keepAlive, timing)
      yield* supported(model, generation)
      timing.evalStart = process.hrtime.bigint()
      return engine.generate(generation)
    })
    if (!stream) {
      // whole answers too take each event as it is made: the first one's arrival is when the
      // prompt's evaluation ended (prompt_eval_duration), which chunks would put later
      return yield* Effect.scoped(
        Effect.map(
          Effect.flatMap(prepared, (events) => collect(model, Render.timed(events, timing))),
          (whole) => HttpServerResponse.unsafeJson(render.whole(model, whole, timing))
        )
      )
    }
    const events = yield* prepared
    return yield* Sse.answer(
      events,
      Render.timedFrames(render.chunks(model, timing), timing),
      Render.dialect,
      yield* whereOf,
      {
        framing: Sse.ndjson
      }
    )
  })

const chat = Effect.gen(function*() {
  const timing = Render.startTiming()
  const request = yield* chatRequest
  const messages = request.messages ?? []
  if (messages.length === 0) {
    const keep = yield* keepAliveOf(request.keep_alive)
    return yield* loadOnly(request.model, keep, (r) => Render.loadChat(request.model, r))
  }
  const generation = yield* chatGeneration(request, messages)
  return yield* answer(request.model, request.stream, generation, timing, {
    whole: Render.chatResponse,
    chunks: Render.chatChunks
  })
})

const generate = Effect.gen(function*() {
  const timing = Render.startTiming()
  const request = yield* generateRequest
  const prompt = request.prompt ?? ""
  if (prompt.length === 0 && (request.suffix ?? "").length === 0) {
    const keep = yield* keepAliveOf(request.keep_alive)
    return yield* loadOnly(request.model, keep, (r) => Render.loadGenerate(request.model, r))
  }
  const generation = yield* generateGeneration(request, prompt)
  return yield* answer(request.model, request.stream, generation, timing, {
    whole: Render.generateResponse,
    chunks: Render.generateChunks
  })
})

/** Ollama's `/api/embed` answers unit vectors. */
const normalized = (vector: ReadonlyArray<number>): ReadonlyArray<number> => {
  const norm = Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0))
  return norm === 0 ? vector : vector.map((x) => x / norm)
}

const embed = Effect.gen(function*() {
  const service = yield* Embeddings
  const engine = yield* LlamaEngine
  const timing = Render.startTiming()
  const request = yield* embedRequest
  const keep = yield* keepAliveOf(request.keep_alive)
  yield* samplingOf(request.options)
  const inputs = typeof request.input === "string" ? [request.input] : request.input
  const registered = yield* usableModel(request.model)
  const before = yield* engine.residentOf(registered.info.name)
  const { promptTokens, vectors } = yield* service.embed(request.model, inputs, {
    truncate: request.truncate,
    keepAlive: keep
  })
  const dimensions = request.dimensions
  if (dimensions !== undefined && vectors[0] !== undefined && dimensions > vectors[0].length) {
    return yield* Effect.fail(
      new InvalidRequest({
        param: "dimensions",
        reason: `dimensions ${dimensions} is more than the model's ${vectors[0].length}`
      })
    )
  }
  const loaded = Option.isNone(before) ? yield* engine.residentOf(registered.info.name) : Option.none()
  return HttpServerResponse.unsafeJson({
    model: request.model,
    embeddings: vectors.map((v) => normalized(dimensions === undefined ? v : v.slice(0, dimensions))),
    total_duration: Number(process.hrtime.bigint() - timing.start),
    load_duration: Option.match(loaded, { onNone: () => 0, onSome: (r) => r.loadMillis * 1e6 }),
    prompt_eval_count: promptTokens
  })
})

/** The older `/api/embeddings`: the vector as the model gives it. */
const embeddings = Effect.gen(function*() {
  const service = yield* Embeddings
  const request = yield* embeddingsRequest
  const keep = yield* keepAliveOf(request.keep_alive)
  yield* usableModel(request.model)
  // Ollama answers an empty prompt with an empty vector
  if (request.prompt.length === 0) return HttpServerResponse.unsafeJson({ embedding: [] })
  const { vectors } = yield* service.embed(request.model, [request.prompt], { keepAlive: keep })
  return HttpServerResponse.unsafeJson({ embedding: vectors[0] ?? [] })
})

export const handlers = { chat, generate, embed, embeddings } as const
