import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { ModelNotFound } from "../../domain/Errors.js"
import { collect } from "../../domain/Generation.js"
import {
  ChatCompletion,
  ChatCompletionChunk,
  Completion,
  EmbeddingList,
  Model,
  ModelList
} from "../../domain/OpenAi.js"
import { Embeddings } from "../../services/Embeddings.js"
import { LlamaEngine } from "../../services/LlamaEngine.js"
import { ModelRegistry } from "../../services/ModelRegistry.js"
import { described, type Route } from "../Dialect.js"
import { requestUrl } from "../RequestUrl.js"
import * as Sse from "../Sse.js"
import {
  bodies,
  chatGeneration,
  chatRequest,
  completionGeneration,
  completionRequest,
  embeddingRequest
} from "./Decode.js"
import * as Render from "./Render.js"

/** The OpenAI-compatible endpoints under `/v1`. */

const whereOf = Effect.map(HttpServerRequest.HttpServerRequest, (request) => ({
  method: request.method,
  path: requestUrl(request).pathname
}))

const chatCompletions = Effect.gen(function*() {
  const engine = yield* LlamaEngine
  const request = yield* chatRequest
  const events = engine.generate({ ...(yield* chatGeneration(request)), streamed: request.stream === true })
  if (!request.stream) {
    return HttpServerResponse.unsafeJson(Render.chatCompletion(request.model, yield* collect(request.model, events)))
  }
  const chunks = Render.chatChunks(request.model, request.stream_options?.include_usage === true)
  // the role comes first, then the generation's chunks: an error before its first event still
  // gets its status code
  return yield* Sse.answer(events, chunks.frames, Render.dialect, yield* whereOf, { opening: [chunks.opening] })
})

const completions = Effect.gen(function*() {
  const engine = yield* LlamaEngine
  const request = yield* completionRequest
  const events = engine.generate({ ...completionGeneration(request), streamed: request.stream === true })
  if (!request.stream) {
    return HttpServerResponse.unsafeJson(Render.completion(request.model, yield* collect(request.model, events)))
  }
  const frames = Render.completionChunks(request.model, request.stream_options?.include_usage === true)
  return yield* Sse.answer(events, frames, Render.dialect, yield* whereOf)
})

const embeddings = Effect.gen(function*() {
  const service = yield* Embeddings
  const request = yield* embeddingRequest
  const inputs = typeof request.input === "string" ? [request.input] : request.input
  const { promptTokens, vectors } = yield* service.embed(request.model, inputs)
  return HttpServerResponse.unsafeJson(Render.embeddings(request.model, vectors, promptTokens, request.encoding_format))
})

const usable = Effect.map(
  Effect.flatMap(ModelRegistry, (registry) => registry.list),
  (models) => models.filter((m) => m.status !== "unusable")
)

const listModels = Effect.map(usable, (models) => HttpServerResponse.unsafeJson(Render.modelList(models)))

const MODELS = "/v1/models/"

const retrieveModel = Effect.gen(function*() {
  const registry = yield* ModelRegistry
  const request = yield* HttpServerRequest.HttpServerRequest
  // the rest of the path, so ids with '/' or ':' (Ollama's "name:tag") work
  const id = decodeURIComponent(requestUrl(request).pathname.slice(MODELS.length)).replace(/\/$/, "")
  const found = yield* registry.resolve(id)
  if (found.info.status === "unusable") {
    return yield* Effect.fail(new ModelNotFound({ model: id, available: (yield* usable).map((m) => m.name) }))
  }
  return HttpServerResponse.unsafeJson(Render.model(found.info))
})

const dialect = Render.dialect

export const routes: ReadonlyArray<Route> = [
  {
    method: "POST",
    path: "/v1/chat/completions",
    dialect,
    handler: chatCompletions,
    promptParam: "messages",
    summary: "Chat completion (JSON, or SSE chunks), with tools and reasoning",
    api: {
      body: bodies.chat,
      json: described("ChatCompletion", ChatCompletion),
      stream: { ...described("ChatCompletionChunk", ChatCompletionChunk), framing: "dataEvents" }
    }
  },
  {
    method: "POST",
    path: "/v1/completions",
    dialect,
    handler: completions,
    summary: "Text completion (JSON, or SSE chunks)",
    api: {
      body: bodies.completion,
      json: described("Completion", Completion),
      // a streamed chunk is a completion object with the text so far
      stream: { ...described("Completion", Completion), framing: "dataEvents" }
    }
  },
  {
    method: "POST",
    path: "/v1/embeddings",
    dialect,
    handler: embeddings,
    promptParam: "input",
    summary: "Embeddings",
    api: { body: bodies.embedding, json: described("EmbeddingList", EmbeddingList) }
  },
  {
    method: "GET",
    path: "/v1/models",
    dialect,
    handler: listModels,
    summary: "The usable models",
    api: { json: described("ModelList", ModelList) }
  },
  {
    method: "GET",
    path: "/v1/models/*",
    dialect,
    handler: retrieveModel,
    summary: "One model",
    api: { json: described("Model", Model) }
  }
]
