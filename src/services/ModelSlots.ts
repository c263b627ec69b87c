import { Deferred, Effect } from "effect"
import { ServerBusy } from "../domain/Errors.js"

/**
 * How many models may be in memory at once (SHIMMY_MAX_LOADED_MODELS). A model holds a slot from
 * the moment a request claims one for it until it has left memory; a model loading holds one too,
 * so two requests for two new models never both fit in the last slot. Claiming a slot when all
 * are taken evicts the least recently used idle model; when every model in memory is in use the
 * claim waits (a bounded queue, as for sequences) until one becomes idle or leaves, and past the
 * queue's limit fails at once with `ServerBusy`. A claim holds no lock while it waits, and nothing
 * in use is ever evicted, so two requests that each want a different new model cannot deadlock:
 * whichever finds room first loads, and the other waits for it to become idle.
 */
export interface ModelSlots {
  /**
   * Makes sure `name` holds a slot (it may already): waits for room, evicting an idle model.
   * `unbounded`: the wait is not counted against the queue's limit (a load re-asserting the slot
   * of the request that started it must not fail, or the failure would be remembered as its load's).
   */
  readonly claim: (name: string, options?: { readonly unbounded?: boolean }) => Effect.Effect<void, ServerBusy>
  /** `name` has left memory (or its load failed): its slot is free. Never waits. */
  readonly release: (name: string) => Effect.Effect<void>
  /** Something changed that may make room: a model became idle. Never waits. */
  readonly changed: Effect.Effect<void>
  readonly stats: Effect.Effect<SlotStats>
  /** Whether `name` holds a slot. */
  readonly holds: (name: string) => boolean
}

/** The slots at one moment: the limit (0: none), those held, the claims waiting for one. */
export interface SlotStats {
  readonly max: number
  readonly used: number
  readonly waiting: number
}

export interface SlotsOptions {
  /** models in memory at once; 0 for no limit */
  readonly max: number
  /** claims that may wait for a slot; beyond, `ServerBusy` */
  readonly maxQueue: number
  /** models in memory that could make room now, least recently used first */
  readonly idleModels: Effect.Effect<ReadonlyArray<string>>
  /** unloads a model if it is still idle (its slot is released before this returns); whether it did */
  readonly evict: (name: string) => Effect.Effect<boolean>
}

type Outcome = "held" | "retry" | "wait"

export const make = (options: SlotsOptions): Effect.Effect<ModelSlots> =>
  Effect.gen(function*() {
    const held = new Set<string>()
    const lock = yield* Effect.makeSemaphore(1)
    let waiting = 0
    // a waiter awaits the signal it read before it looked; any change after that wakes it
    let signal = yield* Deferred.make<void>()

    const changed = Effect.flatMap(Deferred.make<void>(), (next) => {
      const previous = signal
      signal = next
      return Deferred.succeed(previous, undefined)
    })

    const release = (name: string) => Effect.suspend(() => held.delete(name) ? changed : Effect.void)

    // under the lock: take a slot, or make room by evicting idle models, oldest use first
    const attempt = (name: string) =>
      Effect.gen(function*() {
        if (held.has(name)) return "held"
        if (options.max === 0 || held.size < options.max) {
          held.add(name)
          return "held"
        }
        for (const candidate of yield* options.idleModels) {
          if (candidate === name || !held.has(candidate)) continue
          if (yield* options.evict(candidate)) return "retry"
        }
        return "wait"
      }) satisfies Effect.Effect<Outcome>

    const claim = (name: string, claimOptions: { readonly unbounded?: boolean } = {}) =>
      Effect.gen(function*() {
        let queued = false
        // an eviction that freed nothing (its model was let go elsewhere at the same time) is
        // retried a few times, then the claim waits for a change instead of spinning
        let retries = 0
        return yield* Effect.gen(function*() {
          while (true) {
            const wake = signal
            const outcome = yield* lock.withPermits(1)(attempt(name))
            if (outcome === "held") return
            if (outcome === "retry" && retries++ < 4) continue
            if (!queued) {
              if (waiting >= options.maxQueue && claimOptions.unbounded !== true) {
                return yield* Effect.fail(
                  new ServerBusy({
                    model: name,
                    queued: waiting,
                    retryAfterSeconds: 1,
                    slots: options.max
                  })
                )
              }
              queued = true
              waiting++
            }
            retries = 0
            yield* Deferred.await(wake)
          }
        }).pipe(Effect.ensuring(Effect.sync(() => {
          if (queued) waiting--
        })))
      })

    return {
      claim,
      release,
      changed,
      stats: Effect.sync((): SlotStats => ({ max: options.max, used: held.size, waiting })),
      holds: (name) => held.has(name)
    } satisfies ModelSlots
  })
