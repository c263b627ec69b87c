import { HttpServerResponse } from "@effect/platform"
import {
  Cause,
  Chunk,
  Context,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Option,
  Runtime,
  type Scope,
  Stream
} from "effect"
import { Readable } from "node:stream"
import type { GenerationEvent } from "../domain/Generation.js"
import * as Feed from "../services/Feed.js"
import type { Dialect } from "./Dialect.js"
import { ShuttingDown } from "./Failures.js"
import { type ErrorReply, replyForCause, type Where } from "./Reply.js"
import { Deadline, streamUntil } from "./Shutdown.js"

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
 * How a dialect's stream items become bytes: SSE `data:` events ended by `[DONE]` (the seed API,
 * OpenAI's chat and completions), SSE events named by each item's `type` (Anthropic, OpenAI's
 * Responses), or one JSON object per line (Ollama).
 */
export interface Framing {
  readonly contentType: string
  readonly frame: (item: unknown) => string
  /** written after the last item, whether the stream ended or failed */
  readonly end: ReadonlyArray<string>
}

export const dataEvents: Framing = {
  contentType: "text/event-stream; charset=utf-8",
  frame: data,
  end: [done]
}

/** `event: <item.type>` then its data: the event name is the item's own `type` field. */
export const namedEvents: Framing = {
  contentType: "text/event-stream; charset=utf-8",
  frame: (item) => `event: ${(item as { readonly type: string }).type}\ndata: ${JSON.stringify(item)}\n\n`,
  end: []
}

export const ndjson: Framing = {
  contentType: "application/x-ndjson",
  frame: (item) => `${JSON.stringify(item)}\n`,
  end: []
}

/**
 * A streaming response whose every string is written as soon as it is produced (each one is its
 * own chunk; nothing is batched). A failure of `frames` must already have been turned into frames.
 */
export const response = (
  frames: Stream.Stream<string, unknown>,
  framing: Framing = dataEvents
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.stream(Stream.map(frames, (frame) => encoder.encode(frame)), {
    contentType: framing.contentType,
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
 * The shortest time between two writes of one streamed reply (`SHIMMY_STREAM_INTERVAL`): events
 * that arrive sooner are held and go out together with the next one, each still its own event. A
 * fast model's tokens then cost the server one socket write (and the client one wake-up) per
 * interval instead of per token; an event that is held waits at most twice the interval. The
 * first event and the end are never held. `Server.serve` provides the configured one; zero (the
 * default here) writes each turn's events at once.
 */
export class StreamInterval extends Context.Reference<StreamInterval>()("shimmy/http/StreamInterval", {
  defaultValue: (): Duration.Duration => Duration.zero
}) {}

/** How a stream is written: its framing, and the items that tell a failure after it began. */
export interface Options {
  readonly framing?: Framing
  /** the items a failure after the start becomes; the dialect's error body by default */
  readonly failure?: (reply: ErrorReply) => ReadonlyArray<unknown>
  /** the server's shutdown deadline (`Deadline`), which ends the stream with its error items */
  readonly deadline?: Deferred.Deferred<void>
}

/**
 * A generation as a stream in a dialect: `frames` renders each event (as many items as it
 * returns), a failure after the start ends it with the dialect's error items, then the framing's end.
 */
export const render = <E>(
  events: Stream.Stream<GenerationEvent, E>,
  frames: (event: GenerationEvent) => ReadonlyArray<unknown>,
  dialect: Dialect,
  where: Where,
  options: Options = {}
): Stream.Stream<string, E | ShuttingDown> => {
  const framing = options.framing ?? dataEvents
  const failure = options.failure ?? ((reply: ErrorReply) => [dialect.errorBody(reply)])
  // past the shutdown's deadline the stream fails like any other: its error item, then its end
  const cut = options.deadline === undefined ? events : streamUntil(events, options.deadline)
  return cut.pipe(
    // the frames of the events that are there now, in one string: one write to the socket
    Stream.mapChunks((chunk) => {
      let text = ""
      for (const event of chunk) for (const item of frames(event)) text += framing.frame(item)
      return text.length === 0 ? Chunk.empty<string>() : Chunk.of(text)
    }),
    Stream.catchAllCause((cause) =>
      Stream.unwrap(Effect.map(
        replyForCause(cause, where),
        Option.match({
          onNone: () => Stream.failCause(cause),
          onSome: (reply) => Stream.fromIterable(failure(reply).map(framing.frame))
        })
      ))
    ),
    Stream.concat(Stream.fromIterable(framing.end))
  )
}

/**
 * Answers a generation as a stream once it has produced its first event (so a failure before
 * that still gets a status code); `opening` items are written first. A generation that can be
 * read as a feed (the engine's own stream) is written by plain JavaScript as its events come,
 * without a fiber or stream stage per event (`written`); any other stream through `render`.
 */
export const answer = <E>(
  events: Stream.Stream<GenerationEvent, E>,
  frames: (event: GenerationEvent) => ReadonlyArray<unknown>,
  dialect: Dialect,
  where: Where,
  options: Options & { readonly opening?: ReadonlyArray<unknown> } = {}
) =>
  Effect.gen(function*() {
    const framing = options.framing ?? dataEvents
    const deadline = options.deadline ?? (yield* Deadline)
    const opening = options.opening ?? []
    const open = Feed.feedOf(events)
    if (Option.isSome(open)) {
      const feed = yield* open.value
      yield* Feed.first(feed)
      const interval = Duration.toMillis(yield* StreamInterval)
      return HttpServerResponse.raw(
        yield* written(feed, frames, dialect, where, { ...options, framing, deadline, opening, interval }),
        { contentType: framing.contentType, headers }
      )
    }
    const stream = yield* started(events)
    const body = render(stream, frames, dialect, where, { ...options, deadline })
    return response(
      opening.length === 0 ? body : Stream.concat(Stream.fromIterable(opening.map(framing.frame)), body),
      framing
    )
  })

/**
 * A feed's events as the bytes of a response body: each turn of the event loop that finds events
 * waiting renders them into one string, pushed as one write (or held while the socket is full:
 * the feed's bound then holds the generation back). Writes are at least `interval` ms apart
 * (`StreamInterval`): what comes sooner waits for the next event, or for a timer at twice the
 * interval when none comes. Its end, a failure (the dialect's error items) or the shutdown's
 * deadline, is followed by the framing's end.
 */
export const written = <E>(
  feed: Feed.Feed<GenerationEvent, E>,
  frames: (event: GenerationEvent) => ReadonlyArray<unknown>,
  dialect: Dialect,
  where: Where,
  options: Options & {
    readonly framing: Framing
    readonly deadline: Deferred.Deferred<void>
    readonly opening: ReadonlyArray<unknown>
    /** ms between two writes; 0: each turn's events at once */
    readonly interval?: number
  }
): Effect.Effect<Readable> =>
  Effect.map(Effect.runtime<never>(), (runtime) => {
    const { framing } = options
    const failure = options.failure ?? ((reply: ErrorReply) => [dialect.errorBody(reply)])
    let finished = false
    let cancelWait: (() => void) | undefined
    let stopDeadline = (): void => undefined
    const interval = options.interval ?? 0
    // rendered events not yet written, when the last write was, and the timer that bounds the wait
    let held = ""
    let lastWrite = -Infinity
    let heldTimer: ReturnType<typeof setTimeout> | undefined
    const stopHeldTimer = () => {
      if (heldTimer !== undefined) clearTimeout(heldTimer)
      heldTimer = undefined
    }
    const write = (text: string): boolean => {
      held = ""
      // the clock is read only where an interval is set: none on the default per-token path
      if (interval > 0) lastWrite = performance.now()
      stopHeldTimer()
      return body.push(text)
    }
    // no timer per event: held events are written by the next event's turn, which (when the model
    // is fast) comes before the decode after it; the timer is only for a model that pauses
    const writeHeld = () => {
      heldTimer = undefined
      if (!finished && held.length > 0) write(held)
    }
    const finish = (cause: Cause.Cause<unknown> | undefined) => {
      finished = true
      stopDeadline()
      let text = held
      held = ""
      stopHeldTimer()
      if (cause !== undefined) {
        const reply = Runtime.runSync(runtime)(replyForCause(cause, where))
        if (Option.isSome(reply)) { for (const item of failure(reply.value)) text += framing.frame(item) }
      }
      for (const end of framing.end) text += end
      if (text.length > 0) body.push(text)
      body.push(null)
    }
    const drain = () => {
      while (!finished && cancelWait === undefined) {
        const events = feed.take()
        if (events.length > 0) {
          let text = held
          try {
            for (const event of events) for (const item of frames(event)) text += framing.frame(item)
          } catch (defect) {
            return finish(Cause.die(defect))
          }
          if (text.length === 0) continue
          const since = interval > 0 ? performance.now() - lastWrite : Infinity
          if (since < interval) {
            held = text
            heldTimer ??= setTimeout(writeHeld, 2 * interval - since)
            continue
          }
          // a full body is read again when the socket has room
          if (!write(text)) return
          continue
        }
        const end = feed.end()
        if (Option.isSome(end)) return finish(Option.isSome(end.value) ? Cause.fail(end.value.value) : undefined)
        cancelWait = feed.wait(() => {
          cancelWait = undefined
          drain()
        })
      }
    }
    const body = new Readable({
      read: drain,
      destroy: (error, callback) => {
        finished = true
        stopHeldTimer()
        cancelWait?.()
        stopDeadline()
        callback(error)
      }
    })
    // past the shutdown's deadline the body ends like any failure: its error items, then its end
    stopDeadline = Runtime.runCallback(runtime)(Deferred.await(options.deadline), {
      onExit: (exit) => {
        if (!Exit.isSuccess(exit) || finished) return
        cancelWait?.()
        cancelWait = undefined
        finish(Cause.fail(new ShuttingDown()))
      }
    })
    let opening = ""
    for (const item of options.opening) opening += framing.frame(item)
    if (opening.length > 0) body.push(opening)
    return body
  })
