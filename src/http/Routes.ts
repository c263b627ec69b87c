import { HttpRouter, HttpServerRequest, type HttpServerResponse } from "@effect/platform"
import { Effect, Option, type Scope } from "effect"
import * as Anthropic from "./anthropic/Endpoints.js"
import * as AnthropicRender from "./anthropic/Render.js"
import { type Dialect, errorResponse, type Handler, type HandlerServices, type Route } from "./Dialect.js"
import { MethodNotAllowed, RouteNotFound } from "./Failures.js"
import * as Ollama from "./ollama/Endpoints.js"
import * as OllamaRender from "./ollama/Render.js"
import * as OpenAi from "./openai/Endpoints.js"
import * as OpenAiRender from "./openai/Render.js"
import { withDocs } from "./openapi/Endpoints.js"
import * as Ops from "./ops/Endpoints.js"
import * as Playground from "./playground/Endpoints.js"
import * as Pull from "./pull/Endpoints.js"
import { type ErrorReply, replyFor, replyForCause } from "./Reply.js"
import { requestUrl } from "./RequestUrl.js"
import * as Responses from "./responses/Endpoints.js"
import * as ResponsesRender from "./responses/Render.js"
import * as Seed from "./seed/Endpoints.js"
import * as Lifecycle from "./seed/Lifecycle.js"
import * as SeedRender from "./seed/Render.js"
import { untilDeadline } from "./Shutdown.js"

/**
 * Route tables: every endpoint a listener answers, once. The router is built from a table, and so
 * is the 404 / 405 answer (which methods a path takes) and the dialect a path belongs to. The main
 * port and the Ollama-only port each have one; the guard and the server consult the listener's.
 */

/** What the routes need beside the request the router gives them. */
export type RouterServices = Exclude<Effect.Effect.Context<Handler>, HttpServerRequest.HttpServerRequest | Scope.Scope>

export interface RouteTable {
  readonly routes: ReadonlyArray<Route>
  /** the dialect whose format a path's answers use: its route's, else the longest matching prefix's */
  readonly dialectOf: (path: string) => Dialect
  readonly router: HttpRouter.HttpRouter<never, RouterServices>
  /**
   * A request's route for metrics: the table's path of the route it reached (or would have, by
   * another method), never the raw URL, so the label's values are bounded by the table.
   */
  readonly routeLabel: (method: string, path: string) => string
}

const escape = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")

/** A route's path as a pattern: `*` takes the rest, `:name` one segment; a trailing slash is allowed. */
const patternOf = (path: string): RegExp =>
  new RegExp(
    `^${
      path.split("/").map((part) => part === "*" ? ".*" : part.startsWith(":") ? "[^/]+" : escape(part)).join("/")
    }/?$`
  )

/** Routes written relative to a dialect's root, served under `prefix` (`/ollama`): `/` becomes `/ollama`. */
export const mount = (prefix: string, routes: ReadonlyArray<Route>): ReadonlyArray<Route> =>
  routes.map((route) => ({
    ...route,
    path: (route.path === "/" ? prefix : `${prefix}${route.path}`) as HttpRouter.PathInput
  }))

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

/**
 * A table of `routes`; a path no route takes answers in the dialect with the longest matching
 * prefix among `dialects`, else in `fallback`'s.
 */
export const makeTable = (
  routes: ReadonlyArray<Route>,
  dialects: ReadonlyArray<Dialect>,
  fallback: Dialect
): RouteTable => {
  const patterns = routes.map((route) => ({ route, pattern: patternOf(route.path) }))
  const matching = (path: string): ReadonlyArray<Route> =>
    patterns.filter((p) => p.pattern.test(path)).map((p) => p.route)

  const dialectOf = (path: string): Dialect => {
    const route = matching(path)[0]
    if (route !== undefined) return route.dialect
    const under = (prefix: string) => prefix === "/" || path === prefix || path.startsWith(`${prefix}/`)
    const prefixed = dialects.flatMap((d) => d.prefixes.filter(under).map((prefix) => ({ d, prefix })))
    return prefixed.sort((a, b) => b.prefix.length - a.prefix.length)[0]?.d ?? fallback
  }

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

  const router: HttpRouter.HttpRouter<never, RouterServices> = HttpRouter.all(
    routes.reduce(
      (router: HttpRouter.HttpRouter<never, RouterServices>, route) =>
        HttpRouter.route(route.method)(router, route.path, respond(route)),
      HttpRouter.empty
    ),
    "*",
    unmatched
  )
  const routeLabel = (method: string, path: string): string => {
    const found = matching(path)
    return (found.find((r) => r.method === method) ?? found[0])?.path ?? "unmatched"
  }
  return { routes, dialectOf, router, routeLabel }
}

/** The seed API owns these paths at the root of the main port; Ollama's own are served there too. */
const seedOwned = new Set(Seed.routes.map((r) => `${r.method} ${r.path}`))
const ollamaAtRoot = Ollama.routes.filter((r) => !seedOwned.has(`${r.method} ${r.path}`))

/**
 * The main port: the seed API, OpenAI's `/v1` (chat, completions, Responses), Anthropic's
 * `/v1/messages`, Ollama's API under `/ollama` and, at the root,
 * every Ollama path the seed API does not own (all but `POST /api/generate`).
 */
export const mainTable: RouteTable = makeTable(
  withDocs([
    ...Seed.routes,
    ...Lifecycle.routes,
    // Anthropic's SDK lists models on OpenAI's path
    ...OpenAi.routes.map(Anthropic.withAnthropicModels),
    ...Responses.routes,
    ...Anthropic.routes,
    ...Ops.routes,
    ...Pull.routes,
    ...Playground.routes,
    ...mount("/ollama", Ollama.routes),
    // a browser opening the root gets the playground, Ollama's clients their answer
    ...ollamaAtRoot.map(Playground.atRoot)
  ], SeedRender.dialect),
  [OpenAiRender.dialect, ResponsesRender.dialect, SeedRender.dialect, AnthropicRender.dialect, OllamaRender.dialect],
  SeedRender.dialect
)

/** The Ollama-only port (`--ollama-port`): Ollama's API at the root, every answer in its shape. */
export const ollamaTable: RouteTable = makeTable(
  withDocs(Ollama.routes, OllamaRender.dialect, {
    title: "Shimmy (Ollama port)",
    description: "Ollama's API at the root, every answer in its shape"
  }),
  [],
  OllamaRender.dialect
)

/** The main port's table. */
export const routes: ReadonlyArray<Route> = mainTable.routes
export const dialectOf = mainTable.dialectOf
export const router = mainTable.router
