import { HttpServerRequest, HttpServerResponse, Socket } from "@effect/platform"
import { Cause, Effect, Fiber, Option, Queue, Stream } from "effect"
import type { IncomingMessage } from "node:http"
import type { InvalidRequest } from "../domain/Errors.js"
import type { GenerationEvent, GenerationRequest } from "../domain/Generation.js"
import * as Feed from "../services/Feed.js"
import { LlamaEngine } from "../services/LlamaEngine.js"
import { parseJson } from "./Body.js"
import type { Dialect, Handler } from "./Dialect.js"
import { BadHandshake, BodyTooLarge, type MalformedBody, UpgradeRequired } from "./Failures.js"
import { limitMessages } from "./MessageLimit.js"
import { replyForCause } from "./Reply.js"
import { requestUrl } from "./RequestUrl.js"
import { ServerConfig } from "./ServerConfig.js"
import { Draining, untilDeadline } from "./Shutdown.js"

/** WebSocket transport of a generation: the one place where events become WebSocket messages. */

export interface SocketDialect {
  readonly dialect: Dialect
  /** a message's JSON to the request it asks for */
  readonly decode: (json: unknown) => Effect.Effect<GenerationRequest, InvalidRequest>
  /** the frames an event becomes */
  readonly frames: (event: GenerationEvent) => ReadonlyArray<unknown>
}

const decoder = new TextDecoder()

/**
 * Each text (or binary UTF-8) message is one request, answered with its frames, or an error frame
 * in the dialect's shape; the connection stays open for the next one. Requests on one connection
 * run one after another, in the order sent. When the client goes away the generation in progress
 * is interrupted, which gives its sequence back. When the server shuts down, the connection is
 * closed (1001) once the answer in progress is complete.
 */
const MESSAGE_SLACK = 1024 * 1024

export const endpoint = ({ decode, dialect, frames }: SocketDialect): Handler =>
  Effect.gen(function*() {
    const engine = yield* LlamaEngine
    const { maxBodyBytes } = yield* ServerConfig
    const draining = yield* Draining
    const request = yield* HttpServerRequest.HttpServerRequest
    const where = { method: request.method, path: requestUrl(request).pathname }
    const headers = request.headers
    const connection = (headers["connection"] ?? "").toLowerCase().split(",").map((token) => token.trim())
    if (headers["upgrade"]?.toLowerCase() !== "websocket" || !connection.includes("upgrade")) {
      return yield* Effect.fail(new UpgradeRequired({ path: where.path }))
    }
    // checked here, so a handshake `ws` would refuse is answered in the error format and never
    // reaches it
    const key = headers["sec-websocket-key"]
    if (key === undefined || !/^[A-Za-z0-9+/]{22}==$/.test(key.trim())) {
      return yield* Effect.fail(new BadHandshake({ reason: "the WebSocket handshake has no valid Sec-WebSocket-Key" }))
    }
    if (headers["sec-websocket-version"]?.trim() !== "13") {
      return yield* Effect.fail(
        new BadHandshake({
          reason: `WebSocket version ${JSON.stringify(headers["sec-websocket-version"] ?? "")} is not supported; use 13`
        })
      )
    }
    // Node's request under the platform's: where `ws` learns this socket's message cap. A message
    // over the body limit by less than the limit again (and at least 1 MiB) gets its error frame
    // and the socket stays open; a bigger one is cut off while it arrives (close 1009), never
    // buffered whole
    const source = request.source as IncomingMessage | undefined
    if (source !== undefined) limitMessages(source, maxBodyBytes + Math.max(maxBodyBytes, MESSAGE_SLACK))
    const socket = yield* request.upgrade.pipe(
      Effect.mapError((e) => new BadHandshake({ reason: `the WebSocket handshake failed: ${e.message}` }))
    )
    const write = yield* socket.writer
    const send = (frame: unknown) => write(JSON.stringify(frame))

    // a message is a request body: the same limit applies
    const sized = (message: string | Uint8Array): Effect.Effect<unknown, MalformedBody | BodyTooLarge> =>
      (typeof message === "string" ? Buffer.byteLength(message, "utf8") : message.byteLength) > maxBodyBytes
        ? Effect.fail(new BodyTooLarge({ limit: maxBodyBytes }))
        : parseJson(typeof message === "string" ? message : decoder.decode(message))

    const answer = (message: string | Uint8Array) =>
      sized(message).pipe(
        Effect.flatMap(decode),
        Effect.flatMap((generation) =>
          Feed.runForEach(
            engine.generate(generation),
            (event) => Effect.forEach(frames(event), send, { discard: true })
          )
        ),
        // at the shutdown's deadline the answer in progress ends with an error frame
        untilDeadline,
        Effect.catchAllCause((cause) => {
          // the socket itself failed: nobody is left to tell
          const failure = Cause.failureOption(cause)
          if (Option.isSome(failure) && Socket.isSocketError(failure.value)) return Effect.failCause(cause)
          return Effect.flatMap(
            replyForCause(cause, where),
            Option.match({ onNone: () => Effect.failCause(cause), onSome: (reply) => send(dialect.errorBody(reply)) })
          )
        })
      )

    const inbox = yield* Queue.unbounded<string | Uint8Array>()
    // draining stops the wait for the next message, never the answer being written
    const worker = yield* Stream.fromQueue(inbox).pipe(
      Stream.interruptWhenDeferred(draining),
      Stream.runForEach(answer),
      Effect.zipRight(write(new Socket.CloseEvent(1001, "server shutting down"))),
      Effect.ignore,
      Effect.fork
    )
    yield* socket.runRaw((message) => Queue.offer(inbox, message)).pipe(
      Effect.ignore,
      Effect.ensuring(Fiber.interrupt(worker)),
      Effect.ensuring(Queue.shutdown(inbox))
    )
    return HttpServerResponse.empty()
  })
