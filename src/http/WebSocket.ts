import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Cause, Console, Effect, Fiber, Queue, Stream } from "effect"
import type { GenerationEvent } from "../domain/Generate.js"
import { LlamaEngine } from "../services/LlamaEngine.js"
import { decodeGenerate, generationOf, parseJson } from "./Body.js"
import { type ErrorReply, errorBody, internalErrorReply, replyFor } from "./Errors.js"

/** WebSocket framing of a generation: the one place where events become WebSocket messages. */

export const tokenFrame = (text: string) => ({ token: text })

export const frameOf = (event: GenerationEvent) =>
  event._tag === "Token"
    ? tokenFrame(event.text)
    : { done: true, finish_reason: event.finishReason, usage: event.usage }

export const errorFrame = (reply: ErrorReply) => errorBody(reply)

const decoder = new TextDecoder()

/**
 * `GET /ws/generate`: each text (or binary UTF-8) message is one request, answered with `{"token"}`
 * frames and a `{"done":true}` frame, or an `{"error"}` frame; the connection stays open for the
 * next one. Requests on one connection run one after another, in the order sent. When the client
 * goes away the generation in progress is interrupted, which gives its sequence back.
 */
export const generateSocket = Effect.gen(function*() {
  const engine = yield* LlamaEngine
  const request = yield* HttpServerRequest.HttpServerRequest
  if (request.headers["upgrade"]?.toLowerCase() !== "websocket") {
    return yield* Effect.fail({ _tag: "UpgradeRequired" as const, path: "/ws/generate" })
  }
  const socket = yield* request.upgrade.pipe(Effect.orDie)
  const write = yield* socket.writer
  const send = (frame: unknown) => write(JSON.stringify(frame))

  const answer = (message: string | Uint8Array) =>
    parseJson(typeof message === "string" ? message : decoder.decode(message)).pipe(
      Effect.flatMap(decodeGenerate),
      Effect.flatMap((body) => engine.generate(generationOf(body)).pipe(Stream.runForEach((event) => send(frameOf(event))))),
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
  const worker = yield* Queue.take(inbox).pipe(Effect.flatMap(answer), Effect.forever, Effect.ignore, Effect.fork)
  yield* socket.runRaw((message) => Queue.offer(inbox, message)).pipe(
    Effect.ignore,
    Effect.ensuring(Fiber.interrupt(worker)),
    Effect.ensuring(Queue.shutdown(inbox))
  )
  return HttpServerResponse.empty()
})
