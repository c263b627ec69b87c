import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Fiber, Stream } from "effect"
import { streamUntil } from "../../src/http/Shutdown.js"

describe("streamUntil (the shutdown's deadline on a response stream)", () => {
  it.effect("a stream that ends before the deadline is passed through whole", () =>
    Effect.gen(function*() {
      const deadline = yield* Deferred.make<void>()
      const items = yield* Stream.runCollect(streamUntil(Stream.range(1, 100).pipe(Stream.rechunk(3)), deadline))
      expect(Chunk.toReadonlyArray(items)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
    }))

  it.live("the deadline ends a stream that is waiting for its next element with ShuttingDown", () =>
    Effect.gen(function*() {
      const deadline = yield* Deferred.make<void>()
      let stopped = false
      const hanging = Stream.make("a", "b").pipe(
        Stream.concat(Stream.never),
        Stream.ensuring(Effect.sync(() => (stopped = true)))
      )
      const seen: Array<string> = []
      const run = yield* Effect.fork(
        Effect.flip(Stream.runForEach(streamUntil(hanging, deadline), (s) => Effect.sync(() => seen.push(s))))
      )
      yield* Effect.sleep("20 millis")
      expect(seen).toEqual(["a", "b"])
      yield* Deferred.succeed(deadline, undefined)
      const error = yield* Fiber.join(run)
      expect(error._tag).toBe("ShuttingDown")
      // what was cut is stopped with it
      expect(stopped).toBe(true)
    }))

  it.live("a consumer that stops early stops the stream under it", () =>
    Effect.gen(function*() {
      const deadline = yield* Deferred.make<void>()
      let stopped = false
      const endless = Stream.iterate(0, (n) => n + 1).pipe(Stream.ensuring(Effect.sync(() => (stopped = true))))
      const first = yield* Stream.runCollect(Stream.take(streamUntil(endless, deadline), 5))
      expect(Chunk.toReadonlyArray(first)).toEqual([0, 1, 2, 3, 4])
      expect(stopped).toBe(true)
    }))
})
