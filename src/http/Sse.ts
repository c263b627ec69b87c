import { HttpServerResponse } from "@effect/platform"
import { Chunk, Effect, Either, Option, type Scope, Stream } from "effect"
import type { GenerationEvent } from "../domain/Generation.js"
import type { Dialect } from "./Dialect.js"
import { replyForCause, type Where } from "./Reply.js"

/** Server-Sent Events framing: the one place where events become bytes on an event stream. */

const encoder = new TextEncoder()

/** One `data:` event carrying JSON (JSON.stringify escapes newlines, so one line is enough). */
export const data = (json: unknown): string => `data: ${JSON.stringify(json)}\n\n`

/** The terminator both the seed API and OpenAI clients wait for. */
export const done = "data: [DONE]\n\n"

/** A comment line: ignored by clients, useful to keep idle connections open. */
export const comment = (text: string): string => `: ${text.replace(/\n/g, " ")}\n\n`

export const headers = {
  "cache-control": "no-cache",
  // nginx and similar proxies buffer responses unless told not to
  "x-accel-buffering": "no"
} as const

/**
 * A streaming response whose every string is written as soon as it is produced (each one is its
 * own chunk; nothing is batched). A failure of `frames` must already have been turned into frames.
 */
export const response = (frames: Stream.Stream<string, unknown>): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.stream(Stream.map(frames, (frame) => encoder.encode(frame)), {
    contentType: "text/event-stream; charset=utf-8",
    headers
  })

/**
 * Runs `stream` until its first element (or its end) in the caller's scope and returns a stream
 * of everything. Failures that happen before anything was produced (unknown model, bad prompt,
 * busy server) then fail this effect, so they can still be answered with a status code; once the
 * first element is there, a response can be committed to. The stream keeps running in the
 * caller's scope, so closing it (the request ending) stops the generation. (`Stream.peel` does
 * this too, through a handoff per chunk: a cost on every token.)
 */
export const started = <A, E>(stream: Stream.Stream<A, E>): Effect.Effect<Stream.Stream<A, E>, E, Scope.Scope> =>
  Effect.gen(function*() {
    const pull = yield* Stream.toPull(stream)
    const first = yield* Effect.either(pull)
    if (Either.isRight(first)) return Stream.concat(Stream.fromChunk(first.right), Stream.repeatEffectChunkOption(pull))
    return yield* Option.match(first.left, {
      onNone: () => Effect.succeed(Stream.fromChunk(Chunk.empty<A>())),
      onSome: Effect.fail
    })
  })

/**
 * A generation as an event stream in a dialect: `frames` renders each event (as many data events
 * as it returns), a failure after the start ends it with the dialect's error event, then `[DONE]`.
 */
export const render = <E>(
  events: Stream.Stream<GenerationEvent, E>,
  frames: (event: GenerationEvent) => ReadonlyArray<unknown>,
  dialect: Dialect,
  where: Where
): Stream.Stream<string, E> =>
  events.pipe(
    // mapConcat, not flatMap: no inner stream for every token
    Stream.mapConcat((event) => frames(event).map(data)),
    Stream.catchAllCause((cause) =>
      Stream.unwrap(Effect.map(
        replyForCause(cause, where),
        Option.match({
          onNone: () => Stream.failCause(cause),
          onSome: (reply) => Stream.make(data(dialect.errorBody(reply)))
        })
      ))
    ),
    Stream.concat(Stream.make(done))
  )

/** Answers a generation as an event stream, once it has produced its first event. */
export const answer = <E>(
  events: Stream.Stream<GenerationEvent, E>,
  frames: (event: GenerationEvent) => ReadonlyArray<unknown>,
  dialect: Dialect,
  where: Where
) => Effect.map(started(events), (stream) => response(render(stream, frames, dialect, where)))
