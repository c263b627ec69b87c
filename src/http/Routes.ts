import { HttpRouter, HttpServerRequest, type HttpServerResponse } from "@effect/platform"
import { Effect, Option, type Scope } from "effect"
import * as Anthropic from "./anthropic/Endpoints.js"
import * as AnthropicRender from "./anthropic/Render.js"
import { type Dialect, errorResponse, type Handler, type HandlerServices, type Route } from "./Dialect.js"
import { MethodNotAllowed, RouteNotFound } from "./Failures.js"
import * as OpenAi from "./openai/Endpoints.js"
import * as OpenAiRender from "./openai/Render.js"
import * as Ops from "./ops/Endpoints.js"
import { type ErrorReply, replyFor, replyForCause } from "./Reply.js"
import { requestUrl } from "./RequestUrl.js"
import * as Responses from "./responses/Endpoints.js"
import * as ResponsesRender from "./responses/Render.js"
import * as Seed from "./seed/Endpoints.js"
import * as SeedRender from "./seed/Render.js"
import { untilDeadline } from "./Shutdown.js"

/**
 * The route table: every endpoint the server answers, once. The router is built from it, and so
 * is the 404 / 405 answer (which methods a path takes) and the dialect a path belongs to.
 */
export const routes: ReadonlyArray<Route> = [
  ...Seed.routes,
  // Anthropic's SDK lists models on OpenAI's path
  ...OpenAi.routes.map(Anthropic.withAnthropicModels),
  ...Responses.routes,
  ...Anthropic.routes,
  ...Ops.routes
]

const dialects: ReadonlyArray<Dialect> = [
  OpenAiRender.dialect,
  ResponsesRender.dialect,
  SeedRender.dialect,
  AnthropicRender.dialect
]

const escape = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")

/** A route's path as a pattern: `*` takes the rest, `:name` one segment; a trailing slash is allowed. */
const patternOf = (path: string): RegExp =>
  new RegExp(
    `^${
      path.split("/").map((part) => part === "*" ? ".*" : part.startsWith(":") ? "[^/]+" : escape(part)).join("/")
    }/?$`
  )

const patterns = routes.map((route) => ({ route, pattern: patternOf(route.path) }))

/** The routes whose path matches, whatever their method. */
const matching = (path: string): ReadonlyArray<Route> =>
  patterns.filter((p) => p.pattern.test(path)).map((p) => p.route)

/**
 * A request's route for metrics: the route table's path of the route it reached (or would have,
 * by another method), never the raw URL, so the label's values are bounded by the table.
 */
export const routeLabel = (method: string, path: string): string => {
  const routes = matching(path)
  return (routes.find((r) => r.method === method) ?? routes[0])?.path ?? "unmatched"
}

/** The dialect whose format a path's answers use: its route's, else the longest matching prefix's. */
export const dialectOf = (path: string): Dialect => {
  const route = matching(path)[0]
  if (route !== undefined) return route.dialect
  const under = (prefix: string) => prefix === "/" || path === prefix || path.startsWith(`${prefix}/`)
  const prefixed = dialects.flatMap((d) => d.prefixes.filter(under).map((prefix) => ({ d, prefix })))
  return prefixed.sort((a, b) => b.prefix.length - a.prefix.length)[0]?.d ?? SeedRender.dialect
}

const withPromptParam = (reply: ErrorReply, promptParam: string | undefined): ErrorReply =>
  promptParam !== undefined && reply.param === "prompt" ? { ...reply, param: promptParam } : reply

/** A route's handler with every failure answered in its dialect (interruption is left to the platform). */
const respond = (route: Route): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HandlerServices> =>
  Effect.catchAllCause(
    // a JSON answer still being worked on at the shutdown's deadline is a 503 (a stream's
    // response is already written by then: Sse.render ends it; a WebSocket's handler is the
    // whole connection, and ends its answer in progress itself)
    Effect.flatMap(
      HttpServerRequest.HttpServerRequest,
      (request) => request.headers["upgrade"] === undefined ? untilDeadline(route.handler) : route.handler
    ),
    (cause) =>
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
        Effect.flatMap(
          replyForCause(cause, { method: request.method, path: requestUrl(request).pathname }),
          Option.match({
            // the client went away: nobody is left to answer
            onNone: () => Effect.interrupt,
            onSome: (reply) => Effect.succeed(errorResponse(route.dialect, withPromptParam(reply, route.promptParam)))
          })
        ))
  )

/** A path no route takes with this method: 405 with `Allow` where another method would do, else 404. */
const unmatched = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const path = requestUrl(request).pathname
  const allowed = [...new Set(matching(path).map((r) => r.method))]
  const failure = allowed.length > 0 && !allowed.includes(request.method as Route["method"])
    ? new MethodNotAllowed({ method: request.method, path, allowed })
    : new RouteNotFound({ method: request.method, path })
  return errorResponse(dialectOf(path), replyFor(failure))
})

/** What the routes need beside the request the router gives them. */
export type RouterServices = Exclude<Effect.Effect.Context<Handler>, HttpServerRequest.HttpServerRequest | Scope.Scope>

export const router: HttpRouter.HttpRouter<never, RouterServices> = HttpRouter.all(
  routes.reduce(
    (router: HttpRouter.HttpRouter<never, RouterServices>, route) =>
      HttpRouter.route(route.method)(router, route.path, respond(route)),
    HttpRouter.empty
  ),
  "*",
  unmatched
)
