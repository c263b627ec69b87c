import { Effect, Option, Queue, Ref, Scope } from "effect"
import { ServerBusy } from "../domain/Errors.js"

/** A pool at one moment: its size, how many are free, how many callers wait. */
export interface PoolStats {
  readonly size: number
  readonly free: number
  readonly queued: number
}

/**
 * A fixed set of resources (a context's sequences) handed out one caller at a time, for the life
 * of the caller's scope. Callers wait in FIFO order; past `maxQueue` waiting ones they fail at
 * once with `ServerBusy` instead of piling up, so concurrency never meets "No sequences left".
 * A caller gets the first free item in the order given: the sequences generating at once are then
 * the first ones, consecutive ids, which llama.cpp decodes in one pass (see BatchSchedule.ts).
 */
export interface SequencePool<A> {
  readonly take: Effect.Effect<A, ServerBusy, Scope.Scope>
  readonly stats: Effect.Effect<PoolStats>
}

export const make = <A>(
  items: ReadonlyArray<A>,
  options: { readonly model: string; readonly maxQueue: number }
): Effect.Effect<SequencePool<A>> =>
  Effect.gen(function*() {
    // one ticket a free item: who holds a ticket takes the first free item
    const pool = yield* Queue.bounded<true>(Math.max(1, items.length))
    yield* Queue.offerAll(pool, items.map(() => true as const))
    const free = items.map(() => true)
    const first = (): number => {
      const index = free.indexOf(true)
      free[index] = false
      return index
    }
    const waiting = yield* Ref.make(0)

    const take = Effect.gen(function*() {
      const scope = yield* Effect.scope
      return yield* Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const immediate = yield* Queue.poll(pool)
          if (Option.isNone(immediate)) {
            const admitted = yield* Ref.modify(waiting, (n) => n < options.maxQueue ? [true, n + 1] : [false, n])
            if (!admitted) {
              return yield* Effect.fail(
                new ServerBusy({ model: options.model, queued: options.maxQueue, retryAfterSeconds: 1 })
              )
            }
            yield* restore(Queue.take(pool)).pipe(Effect.ensuring(Ref.update(waiting, (n) => n - 1)))
          }
          const index = first()
          yield* Scope.addFinalizer(
            scope,
            Effect.suspend(() => {
              free[index] = true
              return Queue.offer(pool, true)
            })
          )
          return items[index]!
        })
      )
    })

    const stats = Effect.all({ size: Queue.size(pool), queued: Ref.get(waiting) }).pipe(
      // a bounded queue's size goes below zero by the number of takers waiting
      Effect.map(({ queued, size }): PoolStats => ({ size: items.length, free: Math.max(0, size), queued }))
    )
    return { take, stats }
  })
