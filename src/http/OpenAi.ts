import { HttpRouter, HttpServerRequest } from "@effect/platform"
import { Effect, Layer } from "effect"
import { Embeddings } from "../services/Embeddings.js"
import { Grammar } from "../services/Grammar.js"
import { chatCompletions, completions } from "./openai/Completions.js"
import { embeddings } from "./openai/Embeddings.js"
import { openAiErrorResponse, replying } from "./openai/Errors.js"
import { listModels, retrieveModel } from "./openai/Models.js"
import { replyFor } from "./Errors.js"

/** Which methods each `/v1/*` path takes, for 404 / 405 in OpenAI's shape. */
const routes: ReadonlyArray<readonly [RegExp, string]> = [
  [/^\/v1\/chat\/completions\/?$/, "POST"],
  [/^\/v1\/completions\/?$/, "POST"],
  [/^\/v1\/embeddings\/?$/, "POST"],
  [/^\/v1\/models\/?$/, "GET"],
  [/^\/v1\/models\/.+$/, "GET"]
]

/** Any other `/v1/*` request: SDKs expect OpenAI's error shape there too. */
const unmatched = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const path = new URL(request.url, "http://localhost").pathname
  const allowed = routes.filter(([pattern]) => pattern.test(path)).map(([, method]) => method)
  return openAiErrorResponse(replyFor(
    allowed.length > 0
      ? { _tag: "MethodNotAllowed", method: request.method, path, allowed }
      : { _tag: "RouteNotFound", method: request.method, path }
  ))
})

/** The OpenAI-compatible `/v1/*` routes (mounted by Server.ts). */
export const openAiRouter = HttpRouter.empty.pipe(
  HttpRouter.post("/v1/chat/completions", replying("POST /v1/chat/completions", chatCompletions, "messages")),
  HttpRouter.post("/v1/completions", replying("POST /v1/completions", completions)),
  HttpRouter.post("/v1/embeddings", replying("POST /v1/embeddings", embeddings, "input")),
  HttpRouter.get("/v1/models", replying("GET /v1/models", listModels)),
  HttpRouter.get("/v1/models/*", replying("GET /v1/models/{id}", retrieveModel)),
  HttpRouter.all("/v1/*", unmatched)
)

/**
 * The services the `/v1/*` routes need beside the engine. Both share the engine's layers (layers
 * are memoized by reference within one build), so compose them in the same build as
 * `LlamaEngine.Default`: `Layer.mergeAll(LlamaEngine.Default, openAiServices)`.
 */
export const openAiServices = Layer.merge(Grammar.Default, Embeddings.Default)
