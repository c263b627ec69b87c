import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import * as SequencePool from "../src/services/SequencePool.js"

const takeIn = <A>(pool: SequencePool.SequencePool<A>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const item = yield* Scope.extend(pool.take, scope)
    return { item, release: Scope.close(scope, Exit.void) }
  })

describe("SequencePool", () => {
  it.effect("hands out the first free item: the sequences in use stay the first ones", () =>
    Effect.gen(function*() {
      const pool = yield* SequencePool.make(["s0", "s1", "s2", "s3"], { model: "m", maxQueue: 4 })
      const [a, b, c] = [yield* takeIn(pool), yield* takeIn(pool), yield* takeIn(pool)]
      expect([a.item, b.item, c.item]).toEqual(["s0", "s1", "s2"])
      // s1 comes back: the next caller gets it, not s3
      yield* b.release
      expect((yield* takeIn(pool)).item).toBe("s1")
      yield* a.release
      expect((yield* takeIn(pool)).item).toBe("s0")
      expect((yield* takeIn(pool)).item).toBe("s3")
      expect(yield* pool.stats).toEqual({ size: 4, free: 0, queued: 0 })
      yield* c.release
      expect(yield* pool.stats).toEqual({ size: 4, free: 1, queued: 0 })
    }))

  it.effect("callers wait in order for an item, and past maxQueue are refused", () =>
    Effect.gen(function*() {
      const pool = yield* SequencePool.make(["s0", "s1"], { model: "m", maxQueue: 2 })
      const first = yield* takeIn(pool)
      const second = yield* takeIn(pool)
      const order: Array<string> = []
      const waiter = (name: string) =>
        Effect.fork(Effect.tap(takeIn(pool), ({ item }) => Effect.sync(() => order.push(`${name}:${item}`))))
      const w1 = yield* waiter("w1")
      yield* Effect.yieldNow()
      const w2 = yield* waiter("w2")
      yield* Effect.yieldNow()
      expect((yield* pool.stats).queued).toBe(2)
      const refused = yield* Effect.flip(Scope.make().pipe(Effect.flatMap((scope) => Scope.extend(pool.take, scope))))
      expect(refused._tag).toBe("ServerBusy")
      yield* second.release
      yield* Fiber.join(w1)
      yield* first.release
      yield* Fiber.join(w2)
      expect(order).toEqual(["w1:s1", "w2:s0"])
    }))

  it.effect("a waiting caller that is interrupted takes nothing", () =>
    Effect.gen(function*() {
      const pool = yield* SequencePool.make(["s0"], { model: "m", maxQueue: 2 })
      const held = yield* takeIn(pool)
      const waiting = yield* Effect.fork(takeIn(pool))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(waiting)
      yield* held.release
      expect(yield* pool.stats).toEqual({ size: 1, free: 1, queued: 0 })
      expect((yield* takeIn(pool)).item).toBe("s0")
    }))
})
