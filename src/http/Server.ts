import { type HttpRouter, HttpServer, type HttpServerError } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Cause, Data, Deferred, Duration, Effect, Exit, FiberSet, Layer, Option, Scope } from "effect"
import * as http from "node:http"
import type { Duplex } from "node:stream"
import { BodyTooLarge } from "./Failures.js"
import { guarded } from "./Guard.js"
import { replyFor } from "./Reply.js"
import { mainTable, ollamaTable, type RouteTable } from "./Routes.js"
import { ServerConfig } from "./ServerConfig.js"
import { Deadline, Draining } from "./Shutdown.js"
import { StreamInterval } from "./Sse.js"

/** A listener's whole HTTP application: the guard (CORS, API key, body limit, shutdown), then its routes. */
export const appOf = (table: RouteTable) => guarded(table.router, table)

/** The main port's application. */
export const app = appOf(mainTable)

export type AppRequirements = Exclude<Effect.Effect.Context<typeof app>, HttpRouter.HttpRouter.Provided>

/** Where to listen. `port: 0` takes an ephemeral port; `"auto"` the first free one from 11435. */
export interface ListenOptions {
  readonly host: string
  readonly port: number | "auto"
}

export const DEFAULT_HOST = "127.0.0.1"
export const DEFAULT_PORT = 11435
/** How long, past the shutdown's deadline, answers have to write their last frames. */
const LAST_WORD = Duration.seconds(1)

/** How far `--bind auto` looks for a free port. */
const AUTO_PORTS = 100

/** The server could not listen (the port is taken, the address is not local, no permission). */
export class ListenFailed extends Data.TaggedError("ListenFailed")<{
  readonly host: string
  readonly port: number | "auto"
  readonly reason: string
}> {
  override get message() {
    return `cannot listen on ${formatHostPort(this.host, this.port)}: ${this.reason}`
  }
}

const formatHostPort = (host: string, port: number | string) =>
  host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`

const reasonOf = (
  error: HttpServerError.ServeError
): { readonly code: string | undefined; readonly reason: string } => {
  const cause = error.cause as NodeJS.ErrnoException | undefined
  const code = cause?.code
  const reason = code === "EADDRINUSE"
    ? "address already in use"
    : code === "EADDRNOTAVAIL"
    ? "address not available on this machine"
    : code === "EACCES"
    ? "permission denied"
    : cause?.message ?? String(error.cause)
  return { code, reason }
}

interface Listening {
  readonly server: HttpServer.HttpServer
  /** the Node server underneath, so shutdown can stop accepting before the requests end */
  readonly node: http.Server
}

/**
 * `Expect: 100-continue`: Node answers 100 by itself unless told otherwise, so a client would send
 * a body over the limit only to be refused. A declared length over it gets its 413 (in the path's
 * error format) instead of the 100; any other request continues as usual.
 */
const continueIfWithinLimit =
  (node: http.Server, limit: number, table: RouteTable) => (req: http.IncomingMessage, res: http.ServerResponse) => {
    const declared = Number(req.headers["content-length"] ?? "0")
    if (!Number.isFinite(declared) || declared <= limit) {
      res.writeContinue()
      node.emit("request", req, res)
      return
    }
    const reply = replyFor(new BodyTooLarge({ limit }))
    const path = (req.url ?? "/").split("?")[0] ?? "/"
    const body = JSON.stringify(table.dialectOf(path).errorBody(reply))
    res.writeHead(reply.status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      connection: "close"
    })
    res.end(body)
  }

/** Listens on one port in its own scope, so a failed attempt leaves nothing behind. */
const listenOnce = (host: string, port: number) =>
  Effect.gen(function*() {
    const outer = yield* Effect.scope
    const attempt = yield* Scope.fork(outer, { _tag: "Sequential" } as never)
    const node = http.createServer()
    const exit = yield* NodeHttpServer.make(() => node, { host, port }).pipe(
      Scope.extend(attempt),
      Effect.exit
    )
    if (Exit.isSuccess(exit)) return { server: exit.value, node } satisfies Listening
    yield* Scope.close(attempt, exit)
    const failure = Cause.failureOption(exit.cause)
    return yield* Option.match(failure, {
      onNone: () => Effect.failCause(exit.cause as Cause.Cause<never>),
      onSome: (e) => Effect.fail(e)
    })
  })

const listening = (options: ListenOptions): Effect.Effect<Listening, ListenFailed, Scope.Scope> =>
  Effect.gen(function*() {
    const fail = (e: HttpServerError.ServeError) =>
      new ListenFailed({ host: options.host, port: options.port, reason: reasonOf(e).reason })
    if (options.port !== "auto") return yield* listenOnce(options.host, options.port).pipe(Effect.mapError(fail))
    for (let port = DEFAULT_PORT; port < DEFAULT_PORT + AUTO_PORTS; port++) {
      const exit = yield* Effect.exit(listenOnce(options.host, port))
      if (Exit.isSuccess(exit)) return exit.value
      const failure = Cause.failureOption(exit.cause)
      if (Option.isNone(failure)) return yield* Effect.failCause(exit.cause as Cause.Cause<never>)
      if (reasonOf(failure.value).code !== "EADDRINUSE") return yield* Effect.fail(fail(failure.value))
    }
    return yield* Effect.fail(
      new ListenFailed({
        host: options.host,
        port: "auto",
        reason: `no free port between ${DEFAULT_PORT} and ${DEFAULT_PORT + AUTO_PORTS - 1}`
      })
    )
  })

/** A listening server (not yet serving anything), for the life of the scope. */
export const listen = (options: ListenOptions): Effect.Effect<HttpServer.HttpServer, ListenFailed, Scope.Scope> =>
  Effect.map(listening(options), (l) => l.server)

/** The address a server listens on, as `http://host:port`. */
export const urlOf = (server: HttpServer.HttpServer): string => {
  const address = server.address
  return address._tag === "TcpAddress"
    ? `http://${formatHostPort(address.hostname, address.port)}`
    : `http+unix://${encodeURIComponent(address.path)}`
}

/**
 * Listens and serves the app until the scope closes; returns the running server. Closing the
 * scope shuts down gracefully: the listener stops accepting, new requests on open connections
 * get 503 `server_shutting_down`, WebSockets close after the answer they are writing, and the
 * requests in flight run on until `shutdownTimeout`; whatever is left then is interrupted
 * (which stops its generation and frees its sequence).
 */
export const serve = (options: ListenOptions, table: RouteTable = mainTable) =>
  Effect.gen(function*() {
    const config = yield* ServerConfig
    const { node, server } = yield* listening(options)
    node.on("checkContinue", continueIfWithinLimit(node, config.maxBodyBytes, table))
    const app = appOf(table)
    // the platform runs each request on its own fiber, outside this scope; tracking them here is
    // what lets shutdown wait for them and then interrupt the rest
    const inFlight = yield* FiberSet.make()
    const draining = yield* Deferred.make<void>()
    const deadline = yield* Deferred.make<void>()
    const track = Effect.withFiberRuntime<void>((fiber) => FiberSet.add(inFlight, fiber))
    // upgraded connections (WebSockets) leave the HTTP server's books: kept here, so that one whose
    // client never answers the close handshake cannot hold the process past the shutdown
    const upgraded = new Set<Duplex>()
    node.on("upgrade", (_request: http.IncomingMessage, socket: Duplex) => {
      upgraded.add(socket)
      socket.once("close", () => upgraded.delete(socket))
    })
    yield* server.serve(
      Effect.zipRight(track, app).pipe(
        Effect.provideService(Draining, draining),
        Effect.provideService(Deadline, deadline),
        Effect.provideService(StreamInterval, config.streamInterval ?? Duration.zero)
      )
    )
    // added last, so it runs first: before the request handlers are detached and the set is cleared
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* Deferred.succeed(draining, undefined)
        node.close()
        // finalizers run uninterruptibly; the waits must be interruptible for their deadlines to cut them
        const settled = (within: Duration.Duration) =>
          Effect.interruptible(FiberSet.awaitEmpty(inFlight)).pipe(Effect.timeoutOption(within))
        if (Duration.greaterThan(config.shutdownTimeout, Duration.zero)) yield* settled(config.shutdownTimeout)
        // what is still answering gets its last word out (a 503, an error event, an error frame
        // and the close), then whatever has not finished by then is interrupted
        yield* Deferred.succeed(deadline, undefined)
        yield* settled(LAST_WORD)
        yield* FiberSet.clear(inFlight)
        // idle keep-alive connections would otherwise hold the listener open
        node.closeAllConnections()
        for (const socket of upgraded) socket.destroy()
      })
    )
    return server
  })

/**
 * The Ollama-only listener (`--ollama-port`): Ollama's API at the root, for tools that take only a
 * host. It shares the services and the guard's settings with the main port, and drains with it.
 */
export const serveOllama = (options: ListenOptions) => serve(options, ollamaTable)

/** The server as a layer: built means listening; its `HttpServer` tells the bound address. */
export const layer = (options: ListenOptions): Layer.Layer<HttpServer.HttpServer, ListenFailed, AppRequirements> =>
  Layer.scoped(HttpServer.HttpServer, serve(options))
