import { Effect, Option, type Scope, type Stream } from "effect"
import { type Feed, toStream } from "./Feed.js"

/**
 * An async iterator's items as a stream that runs ahead of its consumer, pulled by plain
 * JavaScript: the next item is asked for the moment the last one arrives, before it is handed
 * over, and a waiting consumer is woken on the next turn of the event loop, so the work that
 * makes the next item (a decode) has started before the consumer renders and writes the last.
 * Up to `capacity` items wait for the consumer (its back-pressure), and a consumer that pulls
 * after several arrived gets them in one chunk. No fiber, queue or stream stage runs per
 * item: on a small model the per-token work of the server is as long as the decode.
 *
 * Closing the scope stops asking and returns the iterator, after the item in progress, before
 * the scope's earlier finalizers run (the sequence goes back to its pool after the generation
 * ended). `observe` sees each item as it arrives; `failure` turns what the iterator throws into
 * the stream's error. A consumer that wants the whole answer, not each item as it comes (a reply
 * that is not streamed), sets `chunk`: it is woken once that many items wait (or at the end), so
 * that the stream's work is done once a chunk instead of once a token.
 */
export const ahead = <A, E>(
  iterable: AsyncIterable<A>,
  options: AheadOptions<A, E>
): Effect.Effect<Stream.Stream<A, E>, never, Scope.Scope> => Effect.map(aheadFeed(iterable, options), toStream)

export interface AheadOptions<A, E> {
  readonly capacity: number
  /** items that wait before a waiting consumer is woken (1 unless set; the end wakes it too) */
  readonly chunk?: number
  readonly failure: (cause: unknown) => E
  readonly observe?: (item: A) => void
}

/** `ahead`'s items as a `Feed` (the same pump, the same lead and back-pressure). */
export const aheadFeed = <A, E>(
  iterable: AsyncIterable<A>,
  options: AheadOptions<A, E>
): Effect.Effect<Feed<A, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const iterator = iterable[Symbol.asyncIterator]()
    const chunk = Math.min(options.chunk ?? 1, options.capacity)
    const buffer: Array<A> = []
    // the end: undefined while it runs, then the iterator's end or its error
    let end: { readonly error: Option.Option<E> } | undefined
    let stopped = false
    let consumer: (() => void) | undefined
    let producer: (() => void) | undefined
    const wakeConsumer = () => {
      const wake = consumer
      consumer = undefined
      wake?.()
    }
    const wakeProducer = () => {
      const wake = producer
      producer = undefined
      wake?.()
    }

    const pump = async () => {
      // whether the iterator ended by itself
      let ended = false
      try {
        let next = iterator.next()
        for (;;) {
          const result = await next
          if (result.done === true) ended = true
          if (result.done === true || stopped) break
          // the next item is asked for first, then this one handed over (unless that fills the buffer)
          const full = buffer.length + 1 >= options.capacity
          if (!full) next = iterator.next()
          buffer.push(result.value)
          options.observe?.(result.value)
          if (buffer.length >= chunk) wakeConsumer()
          if (full) {
            while (buffer.length >= options.capacity && !stopped) {
              await new Promise<void>((resolve) => (producer = resolve))
            }
            if (stopped) break
            next = iterator.next()
          }
        }
        end = { error: Option.none() }
      } catch (cause) {
        end = { error: Option.some(options.failure(cause)) }
      }
      // an iterator left early (the consumer went away, or `observe` threw) is returned after the
      // item in progress (one that threw is closed already: returning it does nothing)
      if (!ended) await iterator.return?.().then(() => undefined, () => undefined)
      wakeConsumer()
    }
    const running = pump()
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => {
        stopped = true
        wakeProducer()
        return running
      })
    )

    const take = (): Array<A> => {
      if (buffer.length === 0) return []
      const items = buffer.splice(0, buffer.length)
      wakeProducer()
      return items
    }
    const wait = (wake: () => void): () => void => {
      let immediate: NodeJS.Immediate | undefined
      // woken on the next turn of the event loop, once the microtasks that start the next
      // item's work (a decode's dispatch) have run, so its rendering runs beside that work
      const later = () => {
        consumer = undefined
        immediate = setImmediate(wake)
      }
      if (buffer.length >= chunk || end !== undefined) later()
      else consumer = later
      return () => {
        if (consumer === later) consumer = undefined
        if (immediate !== undefined) clearImmediate(immediate)
      }
    }
    return {
      take,
      end: () => (buffer.length === 0 && end !== undefined ? Option.some(end.error) : Option.none()),
      wait
    } satisfies Feed<A, E>
  })
