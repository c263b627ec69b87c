import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { collect } from "../../domain/Generation.js"
import {
  GenerateChunk,
  GenerateRequest,
  GenerateResponse,
  HealthResponse,
  ModelsResponse,
  PublicHealth,
  SocketFrame
} from "../../domain/SeedApi.js"
import { LlamaEngine } from "../../services/LlamaEngine.js"
import { ModelRegistry } from "../../services/ModelRegistry.js"
import { VERSION } from "../../Version.js"
import { jsonBody } from "../Body.js"
import { Anonymous } from "../Caller.js"
import { described, type Route } from "../Dialect.js"
import { requestUrl } from "../RequestUrl.js"
import * as Sse from "../Sse.js"
import * as WebSocket from "../WebSocket.js"
import { decodeGenerate, generationOf } from "./Decode.js"
import * as Render from "./Render.js"

/** The seed API of spec/API.md: `/api/generate`, `/api/models`, `/api/health`, `/ws/generate`. */

const generate = Effect.gen(function*() {
  const engine = yield* LlamaEngine
  const request = yield* HttpServerRequest.HttpServerRequest
  const body = yield* Effect.flatMap(jsonBody, decodeGenerate)
  const events = engine.generate({ ...(yield* generationOf(body)), streamed: body.stream })
  if (!body.stream) return HttpServerResponse.unsafeJson(Render.json(yield* collect(body.model, events)))
  // errors before the first token still get their status code; later ones become an event
  const where = { method: request.method, path: requestUrl(request).pathname }
  return yield* Sse.answer(events, Render.chunks, Render.dialect, where)
})

const models = Effect.gen(function*() {
  const registry = yield* ModelRegistry
  const engine = yield* LlamaEngine
  // models in memory are those with a scheduler (a failed or unfinished load has none)
  const loaded = new Set((yield* engine.stats).map((s) => s.model))
  const loading = new Set((yield* engine.loading).map((l) => l.model))
  return HttpServerResponse.unsafeJson(Render.models(yield* registry.list, loaded, loading))
})

const health = Effect.gen(function*() {
  if (yield* Anonymous) return HttpServerResponse.unsafeJson(Render.publicHealth)
  const registry = yield* ModelRegistry
  const engine = yield* LlamaEngine
  return HttpServerResponse.unsafeJson(Render.health({
    schedulers: yield* engine.stats,
    backend: yield* engine.backend,
    models: yield* registry.list,
    memory: process.memoryUsage(),
    uptimeSeconds: Math.round(process.uptime()),
    version: VERSION,
    loading: yield* engine.loading,
    slots: yield* engine.slots,
    now: Date.now()
  }))
})

const socket = WebSocket.endpoint({
  dialect: Render.dialect,
  decode: (json) => Effect.flatMap(decodeGenerate(json), generationOf),
  frames: Render.frames
})

const generateBody = described("GenerateRequest", GenerateRequest)

export const routes: ReadonlyArray<Route> = [
  {
    method: "POST",
    path: "/api/generate",
    dialect: Render.dialect,
    handler: generate,
    summary: "Generate text (JSON, or SSE)",
    api: {
      body: generateBody,
      json: described("GenerateResponse", GenerateResponse),
      stream: { ...described("GenerateChunk", GenerateChunk), framing: "dataEvents" }
    }
  },
  {
    method: "GET",
    path: "/api/models",
    dialect: Render.dialect,
    handler: models,
    summary: "The models found",
    api: { json: described("ModelsResponse", ModelsResponse) }
  },
  {
    method: "GET",
    path: "/api/health",
    dialect: Render.dialect,
    handler: health,
    summary: "Status, memory, sequences",
    api: {
      json: [described("HealthResponse", HealthResponse), described("PublicHealth", PublicHealth)],
      description: "Open without the API key; a caller without it learns only `{\"status\":\"healthy\"}`"
    }
  },
  {
    method: "GET",
    path: "/ws/generate",
    dialect: Render.dialect,
    handler: socket,
    summary: "Generate over a WebSocket",
    api: {
      socket: { send: generateBody, receive: described("SocketFrame", SocketFrame) },
      description: "Each text message is a `POST /api/generate` body; it is answered with `{\"token\"}` " +
        "messages, then one `{\"done\":true}` (or one error body); the socket stays open for the next"
    }
  }
]
