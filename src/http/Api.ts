import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { Cause, Console, Effect, Stream } from "effect"
import { type EngineError, GenerationFailed } from "../domain/Errors.js"
import { Choice, GenerateResponse } from "../domain/Generate.js"
import type { DoneEvent, GenerationEvent } from "../domain/Generation.js"
import type { ModelInfo } from "../domain/Model.js"
import { formatBytes } from "../Format.js"
import { LlamaEngine } from "../services/LlamaEngine.js"
import { ModelRegistry } from "../services/ModelRegistry.js"
import { decodeGenerate, generationOf, jsonBody } from "./Body.js"
import { errorBody, errorResponse, internalErrorReply, replyFor } from "./Errors.js"
import { VERSION } from "../Version.js"
import * as Sse from "./Sse.js"
import { generateSocket } from "./WebSocket.js"

/** The seed API of spec/API.md: `/api/generate`, `/api/models`, `/api/health`, `/ws/generate`. */

// --- POST /api/generate ----------------------------------------------------------------------

interface Collected {
  readonly text: string
  readonly done: DoneEvent | undefined
}

/** The JSON rendering: the same event stream, collected. */
const collect = (model: string, events: Stream.Stream<GenerationEvent, EngineError>) =>
  Stream.runFold(events, { text: "", done: undefined } as Collected, (acc, event): Collected =>
    event._tag === "Token"
      ? { text: acc.text + event.text, done: acc.done }
      : event._tag === "Done"
      ? { text: acc.text, done: event }
      : acc).pipe(
      Effect.flatMap(({ done, text }) =>
        done === undefined
          ? Effect.fail(new GenerationFailed({ model, reason: "the generation ended without a finish reason" }))
          : Effect.succeed(
            new GenerateResponse({
              choices: [new Choice({ text, index: 0, finish_reason: done.finishReason === "length" ? "length" : "stop" })],
              usage: done.usage
            })
          )
      )
    )

/** The SSE rendering of /api/generate: one event per piece of text, a last chunk with finish_reason and usage, then [DONE]. */
export const sseFrames = (events: Stream.Stream<GenerationEvent, EngineError>): Stream.Stream<string> =>
  events.pipe(
    Stream.mapConcat((event) =>
      event._tag === "Token"
        ? [Sse.data({ choices: [{ text: event.text, index: 0 }] })]
        : event._tag === "Done"
        ? [Sse.data({ choices: [{ text: "", index: 0, finish_reason: event.finishReason }], usage: event.usage })]
        : []
    ),
    Stream.catchAll((error) => Stream.make(Sse.data(errorBody(replyFor(error))))),
    Stream.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause)
        ? Stream.failCause(cause)
        : Stream.fromEffect(
          Console.error(`shimmy: unexpected error while streaming /api/generate\n${Cause.pretty(cause)}`).pipe(
            Effect.as(Sse.data(errorBody(internalErrorReply)))
          )
        )
    ),
    Stream.concat(Stream.make(Sse.done))
  )

const generate = Effect.gen(function*() {
  const engine = yield* LlamaEngine
  const body = yield* jsonBody.pipe(Effect.flatMap(decodeGenerate))
  const events = engine.generate(generationOf(body))
  if (!body.stream) return HttpServerResponse.unsafeJson(yield* collect(body.model, events))
  // errors before the first token still get their status code; later ones become an event
  return Sse.response(sseFrames(yield* Sse.started(events)))
})

/**
 * Models in memory: those with a scheduler. The engine's `loaded` also names models whose load
 * is under way or failed (their RcMap entry), which are not loaded.
 */
const loadedModels = (engine: LlamaEngine) => Effect.map(engine.stats, (stats) => stats.map((s) => s.model))

// --- GET /api/models -------------------------------------------------------------------------

const describeModel = (m: ModelInfo): string => {
  const kind = [m.architecture, m.quantization].filter((s) => s !== undefined).join(" ")
  const what = `${kind.length > 0 ? `${kind} ` : ""}GGUF model, ${formatBytes(m.sizeBytes)}`
  return m.status === "ok" ? what : `${what} (${m.status}${m.reason !== undefined ? `: ${m.reason}` : ""})`
}

const models = Effect.gen(function*() {
  const registry = yield* ModelRegistry
  const engine = yield* LlamaEngine
  const loaded = new Set(yield* loadedModels(engine))
  const list = yield* registry.list
  return HttpServerResponse.unsafeJson({
    models: list.map((m) => ({
      id: m.name,
      name: m.displayName ?? m.name,
      description: describeModel(m),
      size_bytes: m.sizeBytes,
      size: formatBytes(m.sizeBytes),
      architecture: m.architecture ?? null,
      parameters: m.parameters ?? null,
      quantization: m.quantization ?? null,
      context_length: m.contextLength ?? null,
      status: m.status,
      guarded: m.status === "guarded",
      ...(m.reason !== undefined ? { reason: m.reason } : {}),
      source: m.source,
      loaded: loaded.has(m.name)
    }))
  })
})

// --- GET /api/health -------------------------------------------------------------------------

const health = Effect.gen(function*() {
  const registry = yield* ModelRegistry
  const engine = yield* LlamaEngine
  const schedulers = yield* engine.stats
  const loaded = schedulers.map((s) => s.model)
  const list = yield* registry.list
  const memory = process.memoryUsage()
  const sum = (pick: (s: (typeof schedulers)[number]) => number) => schedulers.reduce((n, s) => n + pick(s), 0)
  return HttpServerResponse.unsafeJson({
    status: "healthy",
    models_loaded: loaded.length,
    memory_usage: formatBytes(memory.rss),
    memory_bytes: memory.rss,
    // where the resident memory is: V8's heap, buffers outside it (native, incl. llama.cpp's own
    // allocations only where Node is told of them)
    memory: { rss: memory.rss, heap_used: memory.heapUsed, heap_total: memory.heapTotal, external: memory.external, array_buffers: memory.arrayBuffers },
    uptime_seconds: Math.round(process.uptime()),
    version: VERSION,
    models_available: list.filter((m) => m.status !== "unusable").length,
    loaded_models: loaded,
    // what clients wait for: every loaded model's sequences, the free ones, the queued requests
    sequences: { total: sum((s) => s.sequences), free: sum((s) => s.free), queued: sum((s) => s.queued) },
    schedulers: schedulers.map((s) => ({ model: s.model, sequences: s.sequences, free: s.free, queued: s.queued }))
  })
})

/** Failures a handler expects become their status and body here; the rest go to Server.ts's catch-all. */
const replying = <E extends Parameters<typeof replyFor>[0], R>(
  handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
) => Effect.catchAll(handler, (error) => Effect.succeed(errorResponse(replyFor(error))))

export const apiRouter = HttpRouter.empty.pipe(
  HttpRouter.post("/api/generate", replying(generate)),
  HttpRouter.get("/api/models", models),
  HttpRouter.get("/api/health", health),
  HttpRouter.get("/ws/generate", replying(generateSocket))
)
