import { Clock, Duration, Effect, Fiber, Scope } from "effect"

/**
 * When each loaded model leaves memory. A model in use stays; when its last use ends it expires
 * after the keep-alive of the request that ended last (Ollama's `keep_alive`, else the default):
 * zero unloads it then, an infinite one keeps it. Unloading never cuts a generation short: a model
 * told to unload while in use goes when its last use ends.
 */

// Go's time.ParseDuration units, in milliseconds
const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 }
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y

/** Milliseconds of a Go duration ("1h30m", "-5m", "0"), or undefined where it is not one. */
const goDuration = (text: string): number | undefined => {
  const negative = text.startsWith("-")
  const body = text.replace(/^[-+]/, "")
  if (body === "0") return 0
  if (body.length === 0) return undefined
  let total = 0
  PART.lastIndex = 0
  while (PART.lastIndex < body.length) {
    const at = PART.lastIndex
    const match = PART.exec(body)
    if (match === null || match.index !== at) return undefined
    total += Number(match[1]) * UNITS[match[2]!]!
  }
  return negative ? -total : total
}

/**
 * A keep-alive as Ollama takes one (`keep_alive`, `OLLAMA_KEEP_ALIVE`): a Go duration ("5m",
 * "1h30m", "0") or seconds (a number, or a number as text); negative means forever. Undefined
 * where it is neither.
 */
export const parseKeepAlive = (value: string | number): Duration.Duration | undefined => {
  const text = typeof value === "string" ? value.trim() : ""
  const millis = typeof value === "number"
    ? value * 1000
    : /^[-+]?\d+(\.\d+)?$/.test(text)
    ? Number(text) * 1000
    : goDuration(text)
  if (millis === undefined || !Number.isFinite(millis)) return undefined
  return millis < 0 ? Duration.infinity : Duration.millis(millis)
}

/** When a loaded model is due to leave memory. */
export type Expiry =
  | { readonly _tag: "InUse"; readonly keepAlive: Duration.Duration }
  | { readonly _tag: "At"; readonly millis: number }
  | { readonly _tag: "Never" }

interface State {
  users: number
  /** applies when the last use ends */
  keepAlive: Duration.Duration
  expiresAt: number | undefined
  timer: Fiber.RuntimeFiber<void> | undefined
  /** when a use last began or ended (epoch ms): the order in which idle models are evicted */
  lastUsed: number
}

export interface KeepAlive {
  /**
   * Marks a use of `name` for the life of the caller's scope; `keepAlive` then applies when the
   * model's last use ends (left out: the model's keep-alive stays as it is, the default at first).
   */
  readonly use: (name: string, keepAlive: Duration.Duration | undefined) => Effect.Effect<void, never, Scope.Scope>
  /**
   * Sets a model's keep-alive outside a request (a load or unload request): applied now when the
   * model is idle (zero unloads it before this returns), when its last use ends otherwise.
   * Returns whether the model left memory now.
   */
  readonly keep: (name: string, keepAlive: Duration.Duration) => Effect.Effect<boolean>
  readonly expiry: (name: string) => Effect.Effect<Expiry>
  /** When a use of `name` last began or ended (epoch ms), if it has had one since it was loaded. */
  readonly lastUsed: (name: string) => Effect.Effect<number | undefined>
  /**
   * Unloads `name` now if it has no users (a model that makes room for another); returns whether
   * it did. A model in use is left alone: eviction never cuts a generation short.
   */
  readonly evictIfIdle: (name: string) => Effect.Effect<boolean>
  /** Whether `name` has no users now (a model never used counts as idle). */
  readonly isIdle: (name: string) => Effect.Effect<boolean>
}

export interface KeepAliveOptions {
  /** called (under the lock, so it must not wait on it) whenever a model's last use ends */
  readonly onIdle?: (name: string) => Effect.Effect<void>
}

/**
 * Keeps models by their keep-alive; `unload` takes one out of memory (it is called only while the
 * model has no users). Timers run in the caller's scope (the engine's).
 */
export const make = (
  defaultKeepAlive: Duration.Duration,
  unload: (name: string) => Effect.Effect<void>,
  options: KeepAliveOptions = {}
): Effect.Effect<KeepAlive, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const states = new Map<string, State>()
    // a use that begins and an unload are ordered: an unload never overlaps the start of a use
    const lock = yield* Effect.makeSemaphore(1)

    const stateOf = (name: string): State => {
      const found = states.get(name)
      if (found !== undefined) return found
      const made: State = {
        users: 0,
        keepAlive: defaultKeepAlive,
        expiresAt: undefined,
        timer: undefined,
        lastUsed: Date.now()
      }
      states.set(name, made)
      return made
    }

    const cancelTimer = (state: State) =>
      Effect.suspend(() => {
        const timer = state.timer
        state.timer = undefined
        state.expiresAt = undefined
        return timer === undefined ? Effect.void : Fiber.interrupt(timer)
      })

    // under the lock, with no users
    const unloadNow = (name: string, state: State) =>
      Effect.zipRight(cancelTimer(state), Effect.suspend(() => (states.delete(name), unload(name))))

    // runs on the timer's own fiber, which must not wait for its own interruption
    const expireIdle = (name: string, timer: () => Fiber.RuntimeFiber<void> | undefined) =>
      lock.withPermits(1)(Effect.suspend(() => {
        const state = states.get(name)
        if (state === undefined || state.timer !== timer()) return Effect.void
        state.timer = undefined
        return state.users > 0 ? Effect.void : unloadNow(name, state)
      }))

    /** Under the lock: what happens once a model has no users. Returns whether it left memory. */
    const idle = (name: string, state: State) =>
      Effect.gen(function*() {
        yield* cancelTimer(state)
        const keepAlive = state.keepAlive
        if (Duration.isZero(keepAlive)) {
          yield* unloadNow(name, state)
          return true
        }
        if (!Duration.isFinite(keepAlive)) return false
        state.expiresAt = (yield* Clock.currentTimeMillis) + Duration.toMillis(keepAlive)
        const timer: { fiber?: Fiber.RuntimeFiber<void> } = {}
        // forked from a finalizer, which is uninterruptible: the timer itself must be interruptible
        timer.fiber = yield* Effect.forkIn(
          Effect.interruptible(Effect.zipRight(Effect.sleep(keepAlive), expireIdle(name, () => timer.fiber))),
          scope
        )
        state.timer = timer.fiber
        return false
      })

    const use = (name: string, keepAlive: Duration.Duration | undefined) =>
      Effect.gen(function*() {
        const outer = yield* Effect.scope
        yield* Effect.uninterruptible(
          lock.withPermits(1)(Effect.gen(function*() {
            const state = stateOf(name)
            state.users++
            state.lastUsed = Date.now()
            if (keepAlive !== undefined) state.keepAlive = keepAlive
            yield* cancelTimer(state)
          }))
        )
        yield* Scope.addFinalizer(
          outer,
          lock.withPermits(1)(Effect.suspend(() => {
            const state = stateOf(name)
            state.users--
            state.lastUsed = Date.now()
            if (state.users > 0) return Effect.void
            return Effect.zipRight(idle(name, state), options.onIdle?.(name) ?? Effect.void)
          }))
        )
      })

    const keep = (name: string, keepAlive: Duration.Duration) =>
      lock.withPermits(1)(Effect.suspend(() => {
        const state = stateOf(name)
        state.keepAlive = keepAlive
        return state.users > 0 ? Effect.succeed(false) : idle(name, state)
      }))

    const expiry = (name: string) =>
      Effect.sync((): Expiry => {
        const state = states.get(name)
        if (state === undefined) return { _tag: "Never" }
        if (state.users > 0) return { _tag: "InUse", keepAlive: state.keepAlive }
        return state.expiresAt === undefined ? { _tag: "Never" } : { _tag: "At", millis: state.expiresAt }
      })

    const lastUsed = (name: string) => Effect.sync(() => states.get(name)?.lastUsed)

    const evictIfIdle = (name: string) =>
      lock.withPermits(1)(Effect.suspend(() => {
        const state = states.get(name)
        if (state !== undefined && state.users > 0) return Effect.succeed(false)
        return Effect.as(
          state === undefined ? Effect.suspend(() => unload(name)) : unloadNow(name, state),
          true
        )
      }))

    const isIdle = (name: string) => Effect.sync(() => (states.get(name)?.users ?? 0) === 0)

    return { use, keep, expiry, lastUsed, evictIfIdle, isIdle } satisfies KeepAlive
  })
