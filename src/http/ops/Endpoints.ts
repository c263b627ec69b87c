import { HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { ApplyTemplateResponse, DetokenizeResponse, TokenizeResponse } from "../../domain/LlamaServer.js"
import { LlamaEngine } from "../../services/LlamaEngine.js"
import { Metrics } from "../../services/Metrics.js"
import * as Tokenizer from "../../services/Tokenizer.js"
import { described, type Route } from "../Dialect.js"
import { dialect } from "../seed/Render.js"
import { applyTemplateRequest, bodies, detokenizeRequest, modelFor, tokenizeRequest } from "./Decode.js"

/**
 * Operations: `GET /metrics` (Prometheus) and llama-server's tokenizer endpoints. They answer
 * errors in the seed API's shape: none of them belongs to another dialect.
 */

const PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

const metrics = Effect.gen(function*() {
  const registry = yield* Metrics
  const engine = yield* LlamaEngine
  const slots = yield* engine.slots
  const text = registry.render(yield* engine.stats, process.memoryUsage(), {
    loading: (yield* engine.loading).length,
    max: slots.max,
    waiting: slots.waiting
  })
  return HttpServerResponse.text(text, { contentType: PROMETHEUS_TEXT })
})

/** The loaded model a request names (or must mean), loaded now if it is not yet. */
const modelOf = (requested: string | undefined) =>
  Effect.flatMap(modelFor(requested), (name) => Effect.flatMap(LlamaEngine, (engine) => engine.acquire(name)))

const tokenize = Effect.scoped(Effect.gen(function*() {
  const request = yield* tokenizeRequest
  const loaded = yield* modelOf(request.model)
  const tokens = yield* Tokenizer.tokenize(loaded, request.content, {
    addSpecial: request.add_special,
    parseSpecial: request.parse_special
  })
  const body: TokenizeResponse = { tokens: request.with_pieces ? yield* Tokenizer.pieces(loaded, tokens) : tokens }
  return HttpServerResponse.unsafeJson(body)
}))

const detokenize = Effect.scoped(Effect.gen(function*() {
  const request = yield* detokenizeRequest
  const loaded = yield* modelOf(request.model)
  const body: DetokenizeResponse = { content: yield* Tokenizer.detokenize(loaded, request.tokens) }
  return HttpServerResponse.unsafeJson(body)
}))

const applyTemplate = Effect.gen(function*() {
  const engine = yield* LlamaEngine
  const chat = yield* engine.render(yield* applyTemplateRequest)
  const body: ApplyTemplateResponse = { prompt: chat.text }
  return HttpServerResponse.unsafeJson(body)
})

export const routes: ReadonlyArray<Route> = [
  {
    method: "GET",
    path: "/metrics",
    dialect,
    handler: metrics,
    summary: "Prometheus metrics (text format 0.0.4)",
    api: {
      text: { contentType: PROMETHEUS_TEXT, description: "Prometheus' text exposition format 0.0.4" },
      tags: ["ops"]
    }
  },
  {
    method: "POST",
    path: "/tokenize",
    dialect,
    handler: tokenize,
    summary: "Text to token ids (or ids and pieces)",
    api: { body: bodies.tokenize, json: described("ops.TokenizeResponse", TokenizeResponse), tags: ["ops"] }
  },
  {
    method: "POST",
    path: "/detokenize",
    dialect,
    handler: detokenize,
    summary: "Token ids to text",
    api: { body: bodies.detokenize, json: described("ops.DetokenizeResponse", DetokenizeResponse), tags: ["ops"] }
  },
  {
    method: "POST",
    path: "/apply-template",
    dialect,
    handler: applyTemplate,
    promptParam: "messages",
    summary: "A conversation rendered with the model's chat template",
    api: {
      body: bodies.applyTemplate,
      json: described("ops.ApplyTemplateResponse", ApplyTemplateResponse),
      tags: ["ops"]
    }
  }
]
