import { HttpIncomingMessage, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Deferred, Effect, Option, Redacted } from "effect"
import * as crypto from "node:crypto"
import type { IncomingMessage } from "node:http"
import { Metrics } from "../services/Metrics.js"
import { Anonymous } from "./Caller.js"
import { errorResponse } from "./Dialect.js"
import {
  BadHandshake,
  BodyTooLarge,
  type HttpFailure,
  OriginNotAllowed,
  ShuttingDown,
  Unauthorized
} from "./Failures.js"
import { publicRequest } from "./playground/Endpoints.js"
import { type ErrorReply, replyFor } from "./Reply.js"
import { requestUrl } from "./RequestUrl.js"
import type { RouteTable } from "./Routes.js"
import { ServerConfig } from "./ServerConfig.js"
import { Draining } from "./Shutdown.js"

/**
 * What every request passes before it reaches a route: CORS, shutdown, the API key and the body
 * size. Refusals use the error format of the path's dialect (OpenAI's under `/v1`).
 */

/**
 * Open without a key, and what load balancers and supervisors poll. `/metrics` is not among them:
 * as llama-server's, it sits behind the key (it tells the models, their load and the traffic), and
 * Prometheus scrapes it with `authorization: { credentials: <key> }` (a bearer token). The API
 * description and its page are open too (as llama-server's `/props`): they tell what any build of
 * the server offers, nothing about its models or traffic, and a browser opening `/docs` cannot
 * send a key with it.
 */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(["/api/health", "/openapi.json", "/docs"])

const digest = (text: string) => crypto.createHash("sha256").update(text, "utf8").digest()

/**
 * Compares digests, not the strings: `timingSafeEqual` needs equal lengths, and comparing
 * fixed-size hashes in constant time tells nothing about the key's length or prefix.
 */
const sameKey = (expected: Buffer, given: string) => crypto.timingSafeEqual(expected, digest(given))

/** The key a client sent: `Authorization: Bearer`, `x-api-key`, or (WebSockets only) `?api_key=`. */
const credentials = (request: HttpServerRequest.HttpServerRequest, url: URL): ReadonlyArray<string> => {
  const sent: Array<string> = []
  const bearer = /^Bearer\s+(.+)$/i.exec(request.headers["authorization"] ?? "")
  if (bearer !== null) sent.push(bearer[1]!.trim())
  const header = request.headers["x-api-key"]
  if (header !== undefined) sent.push(header.trim())
  // browsers cannot set headers on a WebSocket, so the upgrade may carry the key in the URL
  if (url.pathname.startsWith("/ws/")) {
    const query = url.searchParams.get("api_key")
    if (query !== null) sent.push(query)
  }
  return sent
}

/** Host names that only ever mean this machine: a DNS name cannot be made to point there by a page. */
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(["localhost", "127.0.0.1", "[::1]"])

/** The address and port a connection arrived on, as a `Host` header names them (`[::1]:11435`). */
const boundHost = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  // a request that did not come through Node's server (a web handler) has no socket to ask
  const socket = (NodeHttpServerRequest.toIncomingMessage(request) as Partial<IncomingMessage> | undefined)?.socket
  const local = socket?.localAddress
  if (socket === undefined || local === undefined || socket.localPort === undefined) return undefined
  // on a dual-stack listener (`::`) an IPv4 connection arrives on `::ffff:a.b.c.d`; its Host says a.b.c.d
  const address = /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(local) ? local.slice(7) : local
  return `${address.includes(":") ? `[${address}]` : address}:${socket.localPort}`
}

/**
 * A page this server served itself (the playground at `/`): browsers send `Origin` on its POSTs.
 * Same origin is `Origin` = `http://<Host>`, trusted only where the Host cannot be an attacker's
 * name: a loopback name or address, or the exact address the connection arrived on. Otherwise a
 * DNS rebinding page (evil.example resolving to 127.0.0.1: `Origin: http://evil.example:11435`,
 * `Host: evil.example:11435`) would pass as same-origin.
 */
const sameOrigin = (request: HttpServerRequest.HttpServerRequest, origin: string): boolean => {
  const host = request.headers["host"]?.trim().toLowerCase()
  if (host === undefined || origin.toLowerCase() !== `http://${host}`) return false
  const name = /^(\[[^\]]*\]|[^:]*)(?::\d+)?$/.exec(host)?.[1]
  if (name !== undefined && LOOPBACK_HOSTS.has(name)) return true
  const bound = boundHost(request)
  // a Host without a port means http's 80
  return bound !== undefined && (host === bound || `${host}:80` === bound)
}

const PREFLIGHT_MAX_AGE = "600"

const CLIENT_CLOSED = 499

/**
 * `app` behind the guard; refusals answer in the dialect `table` gives a path (each listener has
 * its own). Every request is counted once it is answered (refusals included) under its route's
 * path in the table, with its status and the time to its response; one interrupted before its
 * response (the client went away, or the shutdown cut it) is counted as 499, nginx's "client
 * closed request".
 */
export const guarded = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
  table: Pick<RouteTable, "dialectOf" | "routeLabel">
): Effect.Effect<
  HttpServerResponse.HttpServerResponse,
  E,
  R | ServerConfig | Metrics | HttpServerRequest.HttpServerRequest
> =>
  Effect.gen(function*() {
    const metrics = yield* Metrics
    const request = yield* HttpServerRequest.HttpServerRequest
    const started = performance.now()
    const count = (status: number) =>
      metrics.request(
        table.routeLabel(request.method, requestUrl(request).pathname),
        request.method,
        status,
        (performance.now() - started) / 1000
      )
    const response = yield* Effect.onInterrupt(admitted(app, table), () => Effect.sync(() => count(CLIENT_CLOSED)))
    count(response.status)
    return response
  })

const admitted = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
  table: Pick<RouteTable, "dialectOf">
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | ServerConfig | HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const config = yield* ServerConfig
    const request = yield* HttpServerRequest.HttpServerRequest
    const url = requestUrl(request)
    const path = url.pathname
    const origin = request.headers["origin"]
    const anyOrigin = config.corsOrigins.includes("*")
    const originAllowed = origin !== undefined && (anyOrigin || config.corsOrigins.includes(origin))
    // the server's own page needs no CORS headers: the browser reads its answers anyway
    const ownPage = origin !== undefined && !originAllowed && sameOrigin(request, origin)

    // only an allowed origin learns anything: browsers hide the answer from every other one
    const cors: Record<string, string> = originAllowed
      ? {
        "access-control-allow-origin": anyOrigin ? "*" : origin,
        vary: "Origin",
        "access-control-expose-headers": "retry-after"
      }
      : {}
    const refuse = (failure: HttpFailure) => {
      const reply: ErrorReply = replyFor(failure)
      const withCors = { ...reply, headers: { ...reply.headers, ...cors } }
      return Effect.succeed(errorResponse(table.dialectOf(path), withCors))
    }

    // a browser page from another origin: refused outright rather than left to the browser,
    // since browsers enforce nothing on WebSockets and still send "simple" POSTs
    if (origin !== undefined && !originAllowed && !ownPage) return yield* refuse(new OriginNotAllowed({ origin }))

    if (
      originAllowed && request.method === "OPTIONS" &&
      request.headers["access-control-request-method"] !== undefined
    ) {
      const asked = request.headers["access-control-request-headers"]
      return HttpServerResponse.empty({
        status: 204,
        headers: {
          ...cors,
          "access-control-allow-methods": "GET, HEAD, POST, DELETE, OPTIONS",
          "access-control-allow-headers": asked ?? "authorization, content-type, x-api-key",
          "access-control-max-age": PREFLIGHT_MAX_AGE
        }
      })
    }

    // an upgrade to anything but a WebSocket (`curl --http2` asks for h2c) reaches Node's upgrade
    // event, whose body the request never sees: refused, rather than read as an empty body
    const upgrade = request.headers["upgrade"]?.trim().toLowerCase()
    const connection = (request.headers["connection"] ?? "").toLowerCase()
    if (upgrade !== undefined && upgrade !== "websocket" && connection.includes("upgrade")) {
      return yield* refuse(
        new BadHandshake({
          reason: `'Upgrade: ${upgrade}' is not supported: the server speaks HTTP/1.1 (and WebSockets under /ws/); ` +
            "send the request without it (curl: --http1.1)"
        })
      )
    }

    const draining = yield* Draining
    if (yield* Deferred.isDone(draining)) return yield* refuse(new ShuttingDown())

    let anonymous = false
    if (Option.isSome(config.apiKey)) {
      const expected = digest(Redacted.value(config.apiKey.value).trim())
      const sent = credentials(request, url)
      if (!sent.some((key) => sameKey(expected, key))) {
        // the playground's page asks for the key itself: it must load without one
        if (!PUBLIC_PATHS.has(path) && !publicRequest(request, path)) {
          return yield* refuse(new Unauthorized({ reason: sent.length === 0 ? "missing" : "invalid" }))
        }
        anonymous = true
      }
    }

    // a declared length over the limit is refused before a byte is read; a chunked body is
    // counted while it is read (Body.ts) against the same limit
    const declared = Number(request.headers["content-length"] ?? "0")
    if (Number.isFinite(declared) && declared > config.maxBodyBytes) {
      return yield* refuse(new BodyTooLarge({ limit: config.maxBodyBytes }))
    }

    const response = yield* HttpIncomingMessage.withMaxBodySize(app, Option.some(config.maxBodyBytes)).pipe(
      Effect.provideService(Anonymous, anonymous)
    )
    return Object.keys(cors).length > 0 ? HttpServerResponse.setHeaders(response, cors) : response
  })
