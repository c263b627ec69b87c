import { Context, Deferred, Effect, FiberId, Mailbox, Stream } from "effect"
import { ShuttingDown } from "./Failures.js"

/**
 * Set once the server starts shutting down: new requests are refused, and a WebSocket closes
 * after the answer it is writing. `Server.serve` provides the real one; the default never fires.
 */
export class Draining extends Context.Reference<Draining>()("shimmy/http/Draining", {
  defaultValue: () => Deferred.unsafeMake<void>(FiberId.none)
}) {}

/**
 * Set when the shutdown's grace period (`shutdownTimeout`) is over: what is still answering fails
 * with `ShuttingDown`, so every transport ends with its own last word (a 503 body, an SSE error
 * event and its end, a WebSocket error frame and the close) before the rest is interrupted.
 */
export class Deadline extends Context.Reference<Deadline>()("shimmy/http/Deadline", {
  defaultValue: () => Deferred.unsafeMake<void>(FiberId.none)
}) {}

/** Fails with `ShuttingDown` once the deadline has passed; never otherwise. */
export const deadlinePassed: Effect.Effect<never, ShuttingDown> = Effect.flatMap(
  Deadline,
  // the error is made when the deadline passes, not for every request that races it
  (deadline) => Effect.zipRight(Deferred.await(deadline), Effect.failSync(() => new ShuttingDown()))
)

/** `effect`, cut off by the deadline with `ShuttingDown`. */
export const untilDeadline = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | ShuttingDown, R> =>
  Effect.raceFirst(effect, deadlinePassed)

// the elements a cut stream holds for a slow consumer (the engine's own lead is on top)
const UNTIL_CAPACITY = 16

/**
 * `stream`, failing with `ShuttingDown` once `deadline` is set. A response's stream is written
 * outside the handler's context, so the handler reads `Deadline` and passes it here.
 */
export const streamUntil = <A, E, R>(
  stream: Stream.Stream<A, E, R>,
  deadline: Deferred.Deferred<void>
): Stream.Stream<A, E | ShuttingDown, R> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    // the stream runs in a fiber of its own into a mailbox that the deadline fails: one race for
    // the whole stream, where Stream.interruptWhen races every element (~0.1 ms a token here)
    const mailbox = yield* Mailbox.make<A, E | ShuttingDown>({ capacity: UNTIL_CAPACITY })
    yield* Stream.runForEachChunk(stream, (chunk) => mailbox.offerAll(chunk)).pipe(
      Mailbox.into(mailbox),
      Effect.forkScoped
    )
    yield* Effect.forkScoped(
      Effect.zipRight(Deferred.await(deadline), Effect.suspend(() => mailbox.fail(new ShuttingDown())))
    )
    return Mailbox.toStream(mailbox)
  }))
