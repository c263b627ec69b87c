import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Exit, Fiber, Option, Scope, Stream } from "effect"
import { ahead, aheadFeed } from "../src/services/Ahead.js"
import * as Feed from "../src/services/Feed.js"

// an async iterator over 0..n-1 whose items are made one at a time, each after `gate` lets it
// through (or at once); it logs what is asked of it
const source = (n: number, gate?: () => Promise<void>) => {
  const log: Array<string> = []
  let asked = 0
  let returned = false
  const iterator: AsyncIterator<number> & AsyncIterable<number> = {
    [Symbol.asyncIterator]: () => iterator,
    next: async () => {
      const i = asked++
      // the work of an item starts some microtasks after it is asked for (as a decode's dispatch
      // does, through node-llama-cpp's generators)
      for (let hop = 0; hop < 10; hop++) await Promise.resolve()
      log.push(`next ${i}`)
      if (gate !== undefined) await gate()
      if (i >= n) return { done: true, value: undefined }
      log.push(`made ${i}`)
      return { done: false, value: i }
    },
    return: async () => {
      returned = true
      log.push("return")
      return { done: true, value: undefined }
    }
  }
  return { iterator, log, asked: () => asked, returned: () => returned }
}

const spaced = () => new Promise<void>((resolve) => setTimeout(resolve, 3))

const failure = (cause: unknown) => ({ _tag: "Failed" as const, cause })

describe("ahead", () => {
  it.scoped("gives the items in order and ends with the iterator", () =>
    Effect.gen(function*() {
      const { iterator } = source(50)
      const seen: Array<number> = []
      const stream = yield* ahead(iterator, { capacity: 4, failure, observe: (i) => seen.push(i) })
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(stream))).toEqual([...Array(50).keys()])
      expect(seen).toEqual([...Array(50).keys()])
    }))

  it.scoped("starts the next item before the consumer gets the last one", () =>
    Effect.gen(function*() {
      const { iterator, log } = source(3)
      const stream = yield* ahead(iterator, { capacity: 16, failure })
      yield* Stream.runForEach(stream, (i) => Effect.sync(() => log.push(`got ${i}`)))
      // each item is handed over only after the next one's work began
      for (const i of [0, 1, 2]) {
        expect(log.indexOf(`next ${i + 1}`)).toBeGreaterThan(-1)
        expect(log.indexOf(`next ${i + 1}`)).toBeLessThan(log.indexOf(`got ${i}`))
      }
    }))

  it.scoped("runs at most `capacity` items ahead of a consumer that does not pull", () =>
    Effect.gen(function*() {
      const { asked, iterator } = source(1000)
      const stream = yield* ahead(iterator, { capacity: 5, failure })
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      expect(asked()).toBe(5)
      // taking some makes room for as many more
      const first = yield* Stream.runCollect(Stream.take(stream, 3))
      expect(Chunk.toReadonlyArray(first)).toEqual([0, 1, 2])
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      expect(asked()).toBeLessThanOrEqual(5 + 5)
      expect(asked()).toBeGreaterThan(5)
    }))

  it.effect("closing the scope returns the iterator after the item in progress, before it is done closing", () =>
    Effect.gen(function*() {
      let open: (() => void) | undefined
      const gate = () => new Promise<void>((resolve) => (open = resolve))
      const { iterator, log, returned } = source(100, gate)
      const scope = yield* Scope.make()
      yield* Scope.extend(ahead(iterator, { capacity: 4, failure }), scope)
      // the first item is in progress: nothing made yet
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
      expect(log).toEqual(["next 0"])
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
      // the close waits for the item in progress
      expect(returned()).toBe(false)
      expect(closing.unsafePoll()).toBeNull()
      open?.()
      yield* Fiber.join(closing)
      expect(returned()).toBe(true)
      expect(log).toEqual(["next 0", "made 0", "return"])
      // nothing more is asked once it is closed
      expect(log.filter((l) => l.startsWith("next"))).toHaveLength(1)
    }))

  it.scoped("an iterator that throws fails the stream with `failure`, after the items before it", () =>
    Effect.gen(function*() {
      let count = 0
      const throwing: AsyncIterable<number> = {
        [Symbol.asyncIterator]: () => ({
          next: async () => {
            if (count === 2) throw new Error("boom")
            return { done: false, value: count++ }
          }
        })
      }
      const stream = yield* ahead(throwing, { capacity: 4, failure })
      const got: Array<number> = []
      const error = yield* Effect.flip(Stream.runForEach(stream, (i) => Effect.sync(() => got.push(i))))
      expect(got).toEqual([0, 1])
      expect(error._tag).toBe("Failed")
      expect((error.cause as Error).message).toBe("boom")
    }))

  it.scoped("an `observe` that throws fails the stream and returns the iterator", () =>
    Effect.gen(function*() {
      const { iterator, returned } = source(100)
      const stream = yield* ahead(iterator, {
        capacity: 4,
        failure,
        observe: (i) => {
          if (i === 3) throw new Error("observer broke")
        }
      })
      const error = yield* Effect.flip(Stream.runDrain(stream))
      expect((error.cause as Error).message).toBe("observer broke")
      expect(returned()).toBe(true)
    }))

  it.scoped("a consumer waiting for an item is woken when it comes", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const gate = () => Effect.runPromise(Deferred.await(release))
      const { iterator } = source(2, gate)
      const stream = yield* ahead(iterator, { capacity: 4, failure })
      const consumer = yield* Effect.fork(Stream.runCollect(stream))
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
      expect(consumer.unsafePoll()).toBeNull()
      yield* Deferred.succeed(release, undefined)
      expect(Chunk.toReadonlyArray(yield* Fiber.join(consumer))).toEqual([0, 1])
    }))

  it.scoped("with `chunk`, a waiting consumer is woken once that many items wait, or at the end", () =>
    Effect.gen(function*() {
      // items a few milliseconds apart, as tokens come: without `chunk` each would be its own chunk
      const { iterator } = source(21, spaced)
      const stream = yield* ahead(iterator, { capacity: 32, chunk: 8, failure })
      const chunks = yield* Stream.runCollect(Stream.chunks(stream))
      const sizes = Chunk.toReadonlyArray(chunks).map(Chunk.size)
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(21)
      // every chunk but the last holds at least 8; the last has what the end left
      for (const size of sizes.slice(0, -1)) expect(size).toBeGreaterThanOrEqual(8)
      expect(Chunk.toReadonlyArray(Chunk.flatten(chunks))).toEqual([...Array(21).keys()])
      // one item in all still ends: the end wakes the consumer
      const short = yield* ahead(source(1).iterator, { capacity: 32, chunk: 8, failure })
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(short))).toEqual([0])
    }))

  it.scoped("without `chunk`, each item is handed over as it comes", () =>
    Effect.gen(function*() {
      const { iterator } = source(6, spaced)
      const stream = yield* ahead(iterator, { capacity: 32, failure })
      const sizes = Chunk.toReadonlyArray(yield* Stream.runCollect(Stream.chunks(stream))).map(Chunk.size)
      expect(sizes).toEqual([1, 1, 1, 1, 1, 1])
    }))

  it.scoped("as a feed: a wait calls back on a later turn once an item is there, a cancelled one never", () =>
    Effect.gen(function*() {
      const { iterator } = source(3, spaced)
      const feed = yield* aheadFeed(iterator, { capacity: 32, failure })
      expect(feed.take()).toEqual([])
      expect(Option.isNone(feed.end())).toBe(true)
      // a cancelled wait is not called, even once an item arrived
      let cancelled = 0
      feed.wait(() => cancelled++)()
      const woken = yield* Effect.promise(() =>
        new Promise<ReadonlyArray<number>>((resolve) => feed.wait(() => resolve(feed.take())))
      )
      expect(woken).toEqual([0])
      // an item there now still wakes on a later turn, not inside `wait`
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
      let now = false
      const later = new Promise<void>((resolve) => feed.wait(() => resolve()))
      now = true
      yield* Effect.promise(() => later)
      expect(now).toBe(true)
      let items = feed.take()
      while (Option.isNone(feed.end())) {
        yield* Effect.promise(() => new Promise<void>((resolve) => feed.wait(resolve)))
        items = items.concat(feed.take())
      }
      expect(items).toEqual([1, 2])
      expect(feed.end()).toEqual(Option.some(Option.none()))
      expect(cancelled).toBe(0)
    }))

  it.scoped("Feed.runForEach reads a feedable stream by its feed: every item in order, then its end or its error", () =>
    Effect.gen(function*() {
      const feedableOf = (iterable: () => AsyncIterable<number>) =>
        Feed.feedable(Stream.die("read as a stream"), aheadFeed(iterable(), { capacity: 4, failure }))
      const seen: Array<number> = []
      yield* Feed.runForEach(feedableOf(() => source(40, spaced).iterator), (i) => Effect.sync(() => seen.push(i)))
      expect(seen).toEqual([...Array(40).keys()])
      const throwing: AsyncIterable<number> = {
        async *[Symbol.asyncIterator]() {
          yield 1
          throw new Error("boom")
        }
      }
      const exit = yield* Effect.exit(Feed.runForEach(feedableOf(() => throwing), () => Effect.void))
      expect(exit).toEqual(Exit.fail({ _tag: "Failed", cause: new Error("boom") }))
      // a plain stream is read as a stream
      const plain: Array<number> = []
      yield* Feed.runForEach(Stream.make(1, 2, 3), (i) => Effect.sync(() => plain.push(i)))
      expect(plain).toEqual([1, 2, 3])
    }))
})
