import { HttpServerResponse } from "@effect/platform"
import { Cause, Effect, Stream } from "effect"
import * as crypto from "node:crypto"
import { type EngineError, GenerationFailed } from "../../domain/Errors.js"
import type {
  DoneEvent,
  FinishReason,
  GenerationEvent,
  GenerationRequest,
  ResponseFormat as DomainFormat,
  Usage
} from "../../domain/Generation.js"
import type { ResponseFormat } from "../../domain/OpenAi.js"
import { LlamaEngine } from "../../services/LlamaEngine.js"
import * as Sse from "../Sse.js"
import { internalError, openAiErrorBody, openAiReply } from "./Errors.js"
import { chatMessagesOf, chatRequest, completionRequest, samplingOf } from "./Request.js"

/**
 * `POST /v1/chat/completions` and `POST /v1/completions`: one engine stream each, rendered as
 * one JSON object (collected) or as OpenAI's SSE chunks.
 */

const newId = (prefix: string) => `${prefix}-${crypto.randomUUID().replace(/-/g, "").slice(0, 24)}`

/** The domain's response format for OpenAI's `response_format`. */
const formatOf = (format: ResponseFormat | undefined): DomainFormat | undefined =>
  format === undefined
    ? undefined
    : format.type === "text"
    ? { _tag: "Text" }
    : format.type === "json_object"
    ? { _tag: "JsonObject" }
    : { _tag: "JsonSchema", schema: format.json_schema.schema }

interface Collected {
  readonly text: string
  readonly done: DoneEvent
}

const collect = (model: string, events: Stream.Stream<GenerationEvent, EngineError>) =>
  Stream.runFold(events, { text: "", done: undefined as DoneEvent | undefined }, (acc, event) =>
    event._tag === "Token" ? { ...acc, text: acc.text + event.text } : event._tag === "Done" ? { ...acc, done: event } : acc).pipe(
      Effect.flatMap(({ done, text }) =>
        done === undefined
          ? Effect.fail(new GenerationFailed({ model, reason: "the generation ended without a finish reason" }))
          : Effect.succeed<Collected>({ text, done })
      )
    )

/** How a chunk stream ends: a last error event if the engine failed after the first token, then [DONE]. */
const framed = (chunks: Stream.Stream<unknown, EngineError>, where: string): Stream.Stream<string> =>
  chunks.pipe(
    Stream.map(Sse.data),
    Stream.catchAll((error) => Stream.make(Sse.data(openAiErrorBody(openAiReply(error))))),
    Stream.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause)
        ? Stream.failCause(cause)
        : Stream.fromEffect(Effect.map(internalError(cause, where), (reply) => Sse.data(openAiErrorBody(reply))))
    ),
    Stream.concat(Stream.make(Sse.done))
  )

interface Renderer {
  readonly object: string
  /** a chunk's choice carrying text */
  readonly piece: (text: string) => unknown
  /** the last choice, with the finish reason */
  readonly finish: (reason: FinishReason) => unknown
  /** chunks sent before any text (the chat role) */
  readonly opening: ReadonlyArray<unknown>
}

/**
 * Streams a generation as chunks. The generation runs until its first event before the response
 * starts, so an unknown model or bad prompt is still answered with its status code.
 */
const streamed = (
  where: string,
  renderer: Renderer,
  model: string,
  includeUsage: boolean,
  events: Stream.Stream<GenerationEvent, EngineError>
) =>
  Effect.gen(function*() {
    const id = newId(renderer.object === "chat.completion.chunk" ? "chatcmpl" : "cmpl")
    const created = Math.floor(Date.now() / 1000)
    const chunk = (choices: ReadonlyArray<unknown>, usage?: Usage) => ({
      id,
      object: renderer.object,
      created,
      model,
      system_fingerprint: null,
      choices,
      // with include_usage every chunk carries `usage: null` but the last one
      ...(includeUsage ? { usage: usage ?? null } : {})
    })
    const started = yield* Sse.started(events)
    const chunks = Stream.concat(
      Stream.fromIterable(renderer.opening.map((choice) => chunk([choice]))),
      // one chunk per text piece (mapConcat, not flatMap: no inner stream for every token)
      Stream.mapConcat(started, (event) =>
        event._tag === "Token"
          ? [chunk([renderer.piece(event.text)])]
          : event._tag === "Done"
          ? [chunk([renderer.finish(event.finishReason)]), ...(includeUsage ? [chunk([], event.usage)] : [])]
          : [])
    )
    return Sse.response(framed(chunks, where))
  })

const generation = (request: Omit<GenerationRequest, "responseFormat">, format: ResponseFormat | undefined) =>
  Effect.map(LlamaEngine, (engine) => engine.generate({ ...request, responseFormat: formatOf(format) }))

export const chatCompletions = Effect.gen(function*() {
  const request = yield* chatRequest
  const messages = yield* chatMessagesOf(request)
  const events = yield* generation(
    { model: request.model, prompt: { _tag: "Chat", messages }, sampling: samplingOf(request) },
    request.response_format
  )
  if (request.stream) {
    return yield* streamed("POST /v1/chat/completions", {
      object: "chat.completion.chunk",
      opening: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }],
      piece: (text) => ({ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }),
      finish: (reason) => ({ index: 0, delta: {}, logprobs: null, finish_reason: reason })
    }, request.model, request.stream_options?.include_usage === true, events)
  }
  const { done, text } = yield* collect(request.model, events)
  return HttpServerResponse.unsafeJson({
    id: newId("chatcmpl"),
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: request.model,
    system_fingerprint: null,
    choices: [{
      index: 0,
      message: { role: "assistant", content: text, refusal: null },
      logprobs: null,
      finish_reason: done.finishReason
    }],
    usage: done.usage
  })
})

export const completions = Effect.gen(function*() {
  const request = yield* completionRequest
  const prompt = typeof request.prompt === "string" ? request.prompt : request.prompt[0]
  const events = yield* generation({ model: request.model, prompt, sampling: samplingOf(request) }, request.response_format)
  if (request.stream) {
    return yield* streamed("POST /v1/completions", {
      object: "text_completion",
      opening: [],
      piece: (text) => ({ index: 0, text, logprobs: null, finish_reason: null }),
      finish: (reason) => ({ index: 0, text: "", logprobs: null, finish_reason: reason })
    }, request.model, request.stream_options?.include_usage === true, events)
  }
  const { done, text } = yield* collect(request.model, events)
  return HttpServerResponse.unsafeJson({
    id: newId("cmpl"),
    object: "text_completion",
    created: Math.floor(Date.now() / 1000),
    model: request.model,
    system_fingerprint: null,
    choices: [{ index: 0, text, logprobs: null, finish_reason: done.finishReason }],
    usage: done.usage
  })
})
