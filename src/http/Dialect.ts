import { type HttpRouter, type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { Effect, Scope } from "effect"
import type { EngineError } from "../domain/Errors.js"
import type { Embeddings } from "../services/Embeddings.js"
import type { LlamaEngine } from "../services/LlamaEngine.js"
import type { Metrics } from "../services/Metrics.js"
import type { ModelDigest } from "../services/ModelDigest.js"
import type { ModelRegistry } from "../services/ModelRegistry.js"
import type { Puller } from "../services/Puller.js"
import type { HttpFailure } from "./Failures.js"
import type { ErrorReply } from "./Reply.js"
import type { ServerConfig } from "./ServerConfig.js"

/**
 * A wire protocol over the one engine: how it tells a failure. Each dialect is a folder of
 * `Decode.ts` (its request Schemas in, a domain `GenerationRequest` out), `Render.ts` (events in,
 * its JSON / stream frames / error body out) and `Endpoints.ts` (its rows of the route table).
 */
export interface Dialect {
  readonly name: string
  /** paths under these are the dialect's even where no route matches, so its 404s are in its shape */
  readonly prefixes: ReadonlyArray<string>
  readonly errorBody: (reply: ErrorReply) => unknown
}

export const errorResponse = (dialect: Dialect, reply: ErrorReply): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(dialect.errorBody(reply), {
    status: reply.status,
    ...(reply.headers ? { headers: reply.headers } : {})
  })

/**
 * What a handler may use: the services of `Live`, the server's settings, the request, and the
 * request's scope (open until the response is written, so a stream may run in it).
 */
export type HandlerServices =
  | LlamaEngine
  | Metrics
  | ModelRegistry
  | Puller
  | Embeddings
  | ModelDigest
  | ServerConfig
  | HttpServerRequest.HttpServerRequest
  | Scope.Scope

/** A handler fails only with errors the table in Reply.ts has a row for; anything else is a defect. */
export type Handler = Effect.Effect<HttpServerResponse.HttpServerResponse, EngineError | HttpFailure, HandlerServices>

/** One row of the route table (Routes.ts). */
export interface Route {
  readonly method: "GET" | "POST" | "DELETE" | "HEAD"
  /** a router path: `/v1/models/*` takes the rest of the path */
  readonly path: HttpRouter.PathInput
  readonly dialect: Dialect
  readonly handler: Handler
  /** the request field that holds the prompt, named in prompt-length errors */
  readonly promptParam?: string
  /** one line for the API description */
  readonly summary: string
}
