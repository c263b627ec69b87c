import { Chunk, Effect, Option, type Scope, Stream } from "effect"

/**
 * The items of a stream read by plain JavaScript, without a fiber or a stream stage per item: a
 * consumer that writes each item to a socket as it comes (a streamed reply) takes what waits with
 * `take`, and when nothing does, asks `wait` to call it back once something (or the end) is there.
 * On a small model a token's JavaScript is as long as its decode, and the Effect stream's work per
 * item (a pull, a fiber resumption, each stage) is a large part of it (BENCHMARKS.md).
 */
export interface Feed<A, E> {
  /** the items that wait now, taken (an empty array when none do) */
  readonly take: () => Array<A>
  /** the end once it came and nothing waits before it: none when the source ended, else its error */
  readonly end: () => Option.Option<Option.Option<E>>
  /**
   * Calls `wake` on a later turn of the event loop once an item (the feed's chunk of them, if it
   * has one) or the end is there, or on the next turn when they are there now; the returned
   * function cancels it. One wait at a time.
   */
  readonly wait: (wake: () => void) => () => void
}

const TypeId: unique symbol = Symbol.for("shimmy/Feed")

/** A stream that can also be read as a feed: opening it runs what the stream runs, in the caller's scope. */
export interface Feedable<A, E> extends Stream.Stream<A, E> {
  readonly [TypeId]: Effect.Effect<Feed<A, E>, E, Scope.Scope>
}

/** `stream`, readable as a feed through `open` too. */
export const feedable = <A, E>(
  stream: Stream.Stream<A, E>,
  open: Effect.Effect<Feed<A, E>, E, Scope.Scope>
): Feedable<A, E> => Object.assign(stream, { [TypeId]: open })

/** How `stream` opens as a feed, if it can (a stream made by `feedable`, not one derived from it). */
export const feedOf = <A, E>(stream: Stream.Stream<A, E>): Option.Option<Effect.Effect<Feed<A, E>, E, Scope.Scope>> =>
  TypeId in stream ? Option.some((stream as Feedable<A, E>)[TypeId]) : Option.none()

/** A feed as a stream: a consumer that pulls after several items arrived gets them in one chunk. */
export const toStream = <A, E>(feed: Feed<A, E>): Stream.Stream<A, E> => {
  const pull: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>> = Effect.suspend(() => {
    const items = feed.take()
    if (items.length > 0) return Effect.succeed(Chunk.unsafeFromArray(items))
    const end = feed.end()
    if (Option.isSome(end)) return Effect.fail(end.value)
    return Effect.async<Chunk.Chunk<A>, Option.Option<E>>((resume) => {
      const cancel = feed.wait(() => resume(pull))
      return Effect.sync(cancel)
    })
  })
  return Stream.repeatEffectChunkOption(pull)
}

/** Waits until `feed` has an item or its end. */
export const ready = <A, E>(feed: Feed<A, E>): Effect.Effect<void> =>
  Effect.async<void>((resume) => Effect.sync(feed.wait(() => resume(Effect.void))))

/** Waits for a feed's first item or its end; fails with its error when it ended in one before any item. */
export const first = <A, E>(feed: Feed<A, E>): Effect.Effect<void, E> =>
  Effect.flatMap(ready(feed), () => {
    const end = feed.end()
    return Option.isSome(end) && Option.isSome(end.value) ? Effect.fail(end.value.value) : Effect.void
  })

/**
 * Runs `f` on each item of `stream`, in order: read as a feed when it is one (a resumption per
 * turn of the event loop that finds items, not a stream's pull per item), else as a stream.
 */
export const runForEach = <A, E, E2, R>(
  stream: Stream.Stream<A, E>,
  f: (item: A) => Effect.Effect<void, E2, R>
): Effect.Effect<void, E | E2, R> =>
  Option.match(feedOf(stream), {
    onNone: () => Stream.runForEach(stream, f),
    onSome: (open) =>
      Effect.scoped(Effect.flatMap(open, (feed) => {
        const next: Effect.Effect<void, E | E2, R> = Effect.suspend(() => {
          const items = feed.take()
          if (items.length > 0) return Effect.zipRight(Effect.forEach(items, f, { discard: true }), next)
          const end = feed.end()
          if (Option.isSome(end)) return Option.match(end.value, { onNone: () => Effect.void, onSome: Effect.fail })
          return Effect.zipRight(ready(feed), next)
        })
        return next
      }))
  })
