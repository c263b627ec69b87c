import { HttpServerRequest, HttpServerResponse, Socket } from "@effect/platform"
import { Cause, Console, Deferred, Effect, Fiber, Option, Queue, Stream } from "effect"
import type { GenerationEvent } from "../domain/Generation.js"
import { LlamaEngine } from "../services/LlamaEngine.js"
import { decodeGenerate, generationOf, parseJson } from "./Body.js"
import { type ErrorReply, errorBody, type HttpFailure, internalErrorReply, replyFor } from "./Errors.js"
import { ServerConfig } from "./ServerConfig.js"
import { Draining } from "./Shutdown.js"

/** WebSocket framing of a generation: the one place where events become WebSocket messages. */

export const tokenFrame = (text: string) => ({ token: text })

export const frameOf = (event: GenerationEvent) =>
  event._tag === "Token"
    ? tokenFrame(event.text)
    : event._tag === "Done"
    ? { done: true, finish_reason: event.finishReason, usage: event.usage }
    : undefined

export const errorFrame = (reply: ErrorReply) => errorBody(reply)

const decoder = new TextDecoder()

/**
 * `GET /ws/generate`: each text (or binary UTF-8) message is one request, answered with `{"token"}`
 * frames and a `{"done":true}` frame, or an `{"error"}` frame; the connection stays open for the
 * next one. Requests on one connection run one after another, in the order sent. When the client
 * goes away the generation in progress is interrupted, which gives its sequence back. When the
 * server shuts down, the connection is closed (1001) once the answer in progress is complete.
 */
export const generateSocket = Effect.gen(function*() {
  const engine = yield* LlamaEngine
  const { maxBodyBytes } = yield* ServerConfig
  const draining = yield* Draining
  const request = yield* HttpServerRequest.HttpServerRequest
  if (request.headers["upgrade"]?.toLowerCase() !== "websocket") {
    return yield* Effect.fail({ _tag: "UpgradeRequired" as const, path: "/ws/generate" })
  }
  const socket = yield* request.upgrade.pipe(Effect.orDie)
  const write = yield* socket.writer
  const send = (frame: unknown) => write(JSON.stringify(frame))

  // a message is a request body: the same limit applies (ws itself buffers up to its own cap)
  const sized = (message: string | Uint8Array): Effect.Effect<unknown, HttpFailure> =>
    (typeof message === "string" ? Buffer.byteLength(message, "utf8") : message.byteLength) > maxBodyBytes
      ? Effect.fail({ _tag: "BodyTooLarge", limit: maxBodyBytes })
      : parseJson(typeof message === "string" ? message : decoder.decode(message))

  const answer = (message: string | Uint8Array) =>
    sized(message).pipe(
      Effect.flatMap(decodeGenerate),
      Effect.flatMap((body) => engine.generate(generationOf(body)).pipe(Stream.runForEach((event) => { const frame = frameOf(event); return frame === undefined ? Effect.void : send(frame) }))),
      Effect.catchAllCause((cause) => {
        if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
        const failure = Cause.failureOption(cause)
        if (failure._tag === "Some") {
          const error = failure.value
          // the socket itself failed: nobody is left to tell
          if (error._tag === "SocketError") return Effect.failCause(cause)
          return send(errorFrame(replyFor(error)))
        }
        return Console.error(`shimmy: unexpected error on /ws/generate\n${Cause.pretty(cause)}`).pipe(
          Effect.zipRight(send(errorFrame(internalErrorReply)))
        )
      })
    )

  const inbox = yield* Queue.unbounded<string | Uint8Array>()
  const next = Effect.raceFirst(
    Effect.map(Queue.take(inbox), Option.some),
    Effect.as(Deferred.await(draining), Option.none<string | Uint8Array>())
  )
  const worker = yield* Effect.gen(function*() {
    for (;;) {
      const message = yield* next
      if (Option.isNone(message)) break
      yield* answer(message.value)
      if (yield* Deferred.isDone(draining)) break
    }
    yield* write(new Socket.CloseEvent(1001, "server shutting down"))
  }).pipe(Effect.ignore, Effect.fork)
  yield* socket.runRaw((message) => Queue.offer(inbox, message)).pipe(
    Effect.ignore,
    Effect.ensuring(Fiber.interrupt(worker)),
    Effect.ensuring(Queue.shutdown(inbox))
  )
  return HttpServerResponse.empty()
})
