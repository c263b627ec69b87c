import { type HttpRouter, type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { Effect, Schema, Scope } from "effect"
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
  /** what `errorBody` renders, for the API description (OpenApi.ts); left out: described loosely */
  readonly errorSchema?: Schema.Schema.Any
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
  /** the rest of the API description (`/openapi.json`); a route without it is listed by its summary */
  readonly api?: RouteApi
}

/**
 * A Schema as the API description names it: `name` is its key in `components/schemas` (under the
 * route's dialect's name, unless it names its own: `anthropic.ModelList`), `schema` the very value
 * the route decodes or renders with.
 */
export interface Described {
  readonly name: string
  readonly schema: Schema.Schema.Any
}

export const described = (name: string, schema: Schema.Schema.Any): Described => ({ name, schema })

/** A stream's framing: SSE `data:` events (then `[DONE]`), SSE events named by `type`, or NDJSON lines. */
export type StreamFraming = "dataEvents" | "namedEvents" | "ndjson"

export interface ApiParameter {
  readonly name: string
  readonly in: "query" | "header"
  readonly description: string
  readonly required?: boolean
}

/** How a route is described in the OpenAPI document (src/http/openapi/OpenApi.ts). */
export interface RouteApi {
  /** the JSON body, decoded with `schema`; `strict`: unknown fields are refused (else ignored) */
  readonly body?: Described & { readonly strict?: boolean }
  /** the 200's JSON body (a route that answers one of several shapes lists each) */
  readonly json?: Described | ReadonlyArray<Described>
  /** a streamed 200 (with `stream: true`, or Ollama's default): the schema of each item */
  readonly stream?: Described & { readonly framing: StreamFraming }
  /** a 200 that is not JSON: its content type and what it holds */
  readonly text?: { readonly contentType: string; readonly description: string }
  /** a WebSocket: the messages a client sends and those the server answers with */
  readonly socket?: { readonly send: Described & { readonly strict?: boolean }; readonly receive: Described }
  /** the route only refuses, always with this status (a stateless server's `GET /v1/responses/:id`) */
  readonly refuses?: number
  readonly parameters?: ReadonlyArray<ApiParameter>
  /** more than the summary says */
  readonly description?: string
  /** beside the dialect's name */
  readonly tags?: ReadonlyArray<string>
}
