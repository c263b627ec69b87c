import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import * as ModelSlots from "../src/services/ModelSlots.js"

/**
 * The slots of SHIMMY_MAX_LOADED_MODELS on their own: which model is evicted, when a claim waits,
 * when it fails, and that a waiter that leaves is no longer counted. `idle` stands for the
 * models in memory with no users, oldest use first; `evict` for the engine's unload.
 */

const world = (max: number, maxQueue: number) =>
  Effect.gen(function*() {
    const idle: Array<string> = []
    const evicted: Array<string> = []
    const slots: ModelSlots.ModelSlots = yield* ModelSlots.make({
      max,
      maxQueue,
      idleModels: Effect.sync(() => [...idle]),
      evict: (name) =>
        Effect.suspend(() => {
          const at = idle.indexOf(name)
          if (at < 0) return Effect.succeed(false)
          idle.splice(at, 1)
          evicted.push(name)
          return Effect.as(slots.release(name), true)
        })
    })
    return { idle, evicted, slots }
  })

// lets forked claims run as far as they can
const settle = Effect.sleep(10)

describe("ModelSlots", () => {
  it.live("evicts the least recently used idle model, and none while there is room", () =>
    Effect.gen(function*() {
      const { evicted, idle, slots } = yield* world(2, 4)
      yield* slots.claim("a")
      yield* slots.claim("b")
      // a claim for a model that holds a slot already takes nothing
      yield* slots.claim("a")
      expect(yield* slots.stats).toEqual({ max: 2, used: 2, waiting: 0 })
      idle.push("b", "a")
      yield* slots.claim("c")
      expect(evicted).toEqual(["b"])
      expect([slots.holds("a"), slots.holds("b"), slots.holds("c")]).toEqual([true, false, true])
    }))

  it.live("waits while every model is in use, and takes the slot of the first that becomes idle", () =>
    Effect.gen(function*() {
      const { evicted, idle, slots } = yield* world(1, 4)
      yield* slots.claim("busy")
      const waiter = yield* Effect.fork(slots.claim("next"))
      yield* settle
      expect(waiter.unsafePoll()).toBeNull()
      expect((yield* slots.stats).waiting).toBe(1)
      idle.push("busy")
      yield* slots.changed
      yield* Fiber.join(waiter)
      expect(evicted).toEqual(["busy"])
      expect(yield* slots.stats).toEqual({ max: 1, used: 1, waiting: 0 })
    }))

  it.live("fails at once with ServerBusy past the queue's limit; an unbounded claim still waits", () =>
    Effect.gen(function*() {
      const { slots } = yield* world(1, 1)
      yield* slots.claim("busy")
      const first = yield* Effect.fork(slots.claim("x"))
      yield* settle
      const refused = yield* Effect.exit(slots.claim("y"))
      expect(Exit.isFailure(refused)).toBe(true)
      if (Exit.isFailure(refused)) {
        const error = refused.cause._tag === "Fail" ? refused.cause.error : undefined
        expect(error).toMatchObject({ _tag: "ServerBusy", model: "y", slots: 1, queued: 1 })
        expect(error?.message).toContain("SHIMMY_MAX_LOADED_MODELS")
      }
      const unbounded = yield* Effect.fork(slots.claim("z", { unbounded: true }))
      yield* settle
      expect(unbounded.unsafePoll()).toBeNull()
      // a model that leaves frees its slot for one waiter; the other waits on
      yield* slots.release("busy")
      yield* settle
      const done = [first.unsafePoll(), unbounded.unsafePoll()].filter((e) => e !== null)
      expect(done.length).toBe(1)
      expect((yield* slots.stats).waiting).toBe(1)
      yield* Fiber.interrupt(first)
      yield* Fiber.interrupt(unbounded)
      expect((yield* slots.stats).waiting).toBe(0)
    }))

  it.live("a waiter that leaves is no longer counted, and takes no slot", () =>
    Effect.gen(function*() {
      const { slots } = yield* world(1, 1)
      yield* slots.claim("busy")
      const waiter = yield* Effect.fork(slots.claim("gone"))
      yield* settle
      yield* Fiber.interrupt(waiter)
      expect(yield* slots.stats).toEqual({ max: 1, used: 1, waiting: 0 })
      expect(slots.holds("gone")).toBe(false)
      // the queue has room again
      const next = yield* Effect.fork(slots.claim("next"))
      yield* settle
      expect((yield* slots.stats).waiting).toBe(1)
      yield* Fiber.interrupt(next)
    }))

  it.live("0 is no limit", () =>
    Effect.gen(function*() {
      const { evicted, idle, slots } = yield* world(0, 0)
      idle.push("a")
      for (const name of ["a", "b", "c", "d"]) yield* slots.claim(name)
      expect(evicted).toEqual([])
      expect(yield* slots.stats).toEqual({ max: 0, used: 4, waiting: 0 })
    }))
})
