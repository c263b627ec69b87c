import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Deferred, Effect, HashMap, Logger, Stream } from "effect"
import type { Readable } from "node:stream"
import { type EngineError, GenerationFailed } from "../../src/domain/Errors.js"
import { doneEvent, type GenerationEvent, tokenEvent, Usage } from "../../src/domain/Generation.js"
import * as Render from "../../src/http/seed/Render.js"
import * as Sse from "../../src/http/Sse.js"
import { aheadFeed } from "../../src/services/Ahead.js"

// failures in the middle of a stream cannot be provoked through the real engine on demand, so
// the renderer is fed a stream that fails after its first token
const render = (stream: Stream.Stream<GenerationEvent, EngineError>) =>
  Stream.runCollect(Sse.render(stream, Render.chunks, Render.dialect, { method: "POST", path: "/api/generate" })).pipe(
    Effect.map(Chunk.toReadonlyArray)
  )

describe("SSE rendering of /api/generate", () => {
  it.effect("a complete generation: chunks, a last chunk with finish_reason and usage, [DONE]", () =>
    Effect.gen(function*() {
      // one event a chunk, as a generation whose client keeps up gives them
      const frames = yield* render(
        Stream.make(tokenEvent("Hé", 1), tokenEvent("llo\n", 2), doneEvent("stop", Usage.of(3, 3))).pipe(
          Stream.rechunk(1)
        )
      )
      expect(frames).toEqual([
        "data: {\"choices\":[{\"text\":\"Hé\",\"index\":0}]}\n\n",
        "data: {\"choices\":[{\"text\":\"llo\\n\",\"index\":0}]}\n\n",
        "data: {\"choices\":[{\"text\":\"\",\"index\":0,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":3,\"total_tokens\":6}}\n\n",
        "data: [DONE]\n\n"
      ])
    }))

  it.effect("the events waiting for a slow client are written at once: one string for a chunk of them", () =>
    Effect.gen(function*() {
      const events = [tokenEvent("a", 1), tokenEvent("b", 1), tokenEvent("c", 1), doneEvent("stop", Usage.of(1, 3))]
      const one = yield* render(Stream.make(...events).pipe(Stream.rechunk(1)))
      const batched = yield* render(Stream.make(...events))
      expect(batched).toEqual([one.slice(0, 4).join(""), "data: [DONE]\n\n"])
    }))

  it.effect("a failure after the stream started is an error event, then [DONE]", () =>
    Effect.gen(function*() {
      const failing = Stream.make(tokenEvent("Once", 1)).pipe(
        Stream.concat(Stream.fail(new GenerationFailed({ model: "m", reason: "decode failed" })))
      )
      const frames = yield* render(failing)
      expect(frames).toHaveLength(3)
      expect(JSON.parse(frames[1]!.slice(6))).toEqual({
        error: {
          code: "generation_failed",
          message: "Text generation failed",
          details: "Generation with 'm' failed: decode failed"
        }
      })
      expect(frames[2]).toBe("data: [DONE]\n\n")
    }))

  it.effect("a defect is a server_error event that leaks nothing, logged once with the request's method and path", () =>
    Effect.gen(function*() {
      const logs: Array<{ level: string; annotations: Record<string, unknown>; cause: string }> = []
      const capture = Logger.make(({ annotations, cause, logLevel }) =>
        logs.push({
          level: logLevel.label,
          annotations: Object.fromEntries(HashMap.toEntries(annotations)),
          cause: Cause.pretty(cause)
        })
      )
      const frames = yield* render(
        Stream.make(tokenEvent("Once", 1)).pipe(Stream.concat(Stream.die(new Error("secret internals"))))
      ).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
      expect(frames[1]).toContain("\"code\":\"server_error\"")
      expect(frames.join("")).not.toContain("secret")
      expect(frames[2]).toBe("data: [DONE]\n\n")
      expect(logs).toHaveLength(1)
      expect(logs[0]).toMatchObject({ level: "ERROR", annotations: { method: "POST", path: "/api/generate" } })
      expect(logs[0]!.cause).toContain("secret internals")
    }))
})

// the engine's stream is written from its feed (Sse.written): the same bytes as `render`, without
// a fiber per event. Its feed is `aheadFeed` over the events, as the engine's is over its tokens.
const where = { method: "POST", path: "/api/generate" }

const eventsOf = (
  events: ReadonlyArray<GenerationEvent>,
  end?: { readonly throws: unknown },
  // ms before the i-th event; none: the next turn of the event loop
  pause: (i: number) => number | undefined = () => undefined
) => {
  let asked = 0
  const iterable: AsyncIterable<GenerationEvent> = {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        const i = asked++
        const ms = pause(i)
        await new Promise((resolve) => ms === undefined ? setImmediate(resolve) : setTimeout(resolve, ms))
        if (i < events.length) return { done: false, value: events[i]! }
        if (end !== undefined) throw end.throws
        return { done: true, value: undefined }
      }
    })
  }
  return { iterable, asked: () => asked }
}

const failed = (cause: unknown) =>
  cause instanceof GenerationFailed ? cause : new GenerationFailed({ model: "m", reason: String(cause) })

// everything a body gives, read as a client that keeps up reads it
const readAll = (body: Readable) =>
  Effect.promise(async () => {
    let text = ""
    for await (const chunk of body) text += String(chunk)
    return text
  })

const writtenOf = (
  events: ReadonlyArray<GenerationEvent>,
  options: {
    readonly end?: { readonly throws: unknown }
    readonly deadline?: Deferred.Deferred<void>
    readonly interval?: number
    readonly pause?: (i: number) => number | undefined
  } = {}
) =>
  Effect.gen(function*() {
    const feed = yield* aheadFeed(eventsOf(events, options.end, options.pause).iterable, {
      capacity: 16,
      failure: failed
    })
    return yield* Sse.written(feed, Render.chunks, Render.dialect, where, {
      framing: Sse.dataEvents,
      deadline: options.deadline ?? (yield* Deferred.make<void>()),
      opening: [],
      ...(options.interval !== undefined ? { interval: options.interval } : {})
    })
  })

// the body's chunks as they come, each with the ms since the first
const chunksOf = (body: Readable) =>
  Effect.promise(async () => {
    const chunks: Array<{ readonly text: string; readonly at: number }> = []
    let start: number | undefined
    for await (const chunk of body) {
      const now = performance.now()
      start ??= now
      chunks.push({ text: String(chunk), at: now - start })
    }
    return chunks
  })

describe("SSE from the engine's feed", () => {
  const complete = [tokenEvent("Hé", 1), tokenEvent("llo\n", 2), doneEvent("stop", Usage.of(3, 3))]

  it.scoped("a complete generation: the same bytes as the stream's rendering", () =>
    Effect.gen(function*() {
      const text = yield* readAll(yield* writtenOf(complete))
      expect(text).toBe((yield* render(Stream.make(...complete))).join(""))
      expect(text.endsWith("data: [DONE]\n\n")).toBe(true)
    }))

  it.scoped("a failure after the start is the dialect's error event, then [DONE], as in the stream's rendering", () =>
    Effect.gen(function*() {
      const error = new GenerationFailed({ model: "m", reason: "decode failed" })
      const text = yield* readAll(yield* writtenOf([tokenEvent("Once", 1)], { end: { throws: error } }))
      const expected = yield* render(Stream.make(tokenEvent("Once", 1)).pipe(Stream.concat(Stream.fail(error))))
      expect(text).toBe(expected.join(""))
      expect(text).toContain("\"code\":\"generation_failed\"")
    }))

  it.scoped("a renderer's defect is a server_error event that leaks nothing, then [DONE]", () =>
    Effect.gen(function*() {
      const feed = yield* aheadFeed(eventsOf(complete).iterable, { capacity: 16, failure: failed })
      const frames = (event: GenerationEvent) => {
        if (event._tag === "Done") throw new Error("secret internals")
        return Render.chunks(event)
      }
      const body = yield* Sse.written(feed, frames, Render.dialect, where, {
        framing: Sse.dataEvents,
        deadline: yield* Deferred.make<void>(),
        opening: []
      })
      const text = yield* readAll(body).pipe(Effect.provide(Logger.remove(Logger.defaultLogger)))
      expect(text).toContain("\"code\":\"server_error\"")
      expect(text).not.toContain("secret")
      expect(text.endsWith("data: [DONE]\n\n")).toBe(true)
    }))

  it.scoped("the shutdown's deadline ends a body in progress with its error event, then [DONE]", () =>
    Effect.gen(function*() {
      const deadline = yield* Deferred.make<void>()
      // a generation that never ends by itself
      const forever = Array.from({ length: 100_000 }, (_, i) => tokenEvent("x", i + 1))
      const body = yield* writtenOf(forever, { deadline })
      const first = yield* Effect.promise(() =>
        new Promise<string>((resolve) => body.once("data", (c) => resolve(String(c))))
      )
      expect(first).toContain("\"text\":\"x\"")
      yield* Deferred.succeed(deadline, undefined)
      const rest = yield* readAll(body)
      expect(rest).toContain("\"code\":\"server_shutting_down\"")
      expect(rest.endsWith("data: [DONE]\n\n")).toBe(true)
    }))

  it.scoped("a client that does not read holds the generation back; once it reads, it gets every event in order", () =>
    Effect.gen(function*() {
      const n = 3000
      const events = [
        ...Array.from({ length: n }, (_, i) => tokenEvent(`t${i} `, i + 1)),
        doneEvent("length", Usage.of(1, n))
      ]
      const source = eventsOf(events)
      const feed = yield* aheadFeed(source.iterable, { capacity: 16, failure: failed })
      const body = yield* Sse.written(feed, Render.chunks, Render.dialect, where, {
        framing: Sse.dataEvents,
        deadline: yield* Deferred.make<void>(),
        opening: []
      })
      // nobody reads: the body fills to its high-water mark, then the feed's bound stops the source
      body.read(0)
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 200)))
      const held = source.asked()
      expect(held).toBeLessThan(n / 4)
      expect(body.readableLength).toBeLessThan(2 * body.readableHighWaterMark)
      const text = yield* readAll(body)
      const texts = text.split("\n\n").filter((line) => line.startsWith("data: {")).map((line) =>
        JSON.parse(line.slice(6)).choices[0].text as string
      )
      expect(texts.slice(0, n)).toEqual(Array.from({ length: n }, (_, i) => `t${i} `))
      expect(text.endsWith("data: [DONE]\n\n")).toBe(true)
    }))

  it.scoped("with an interval, events that come sooner are written together: the same bytes, fewer writes, the first at once", () =>
    Effect.gen(function*() {
      const n = 200
      const events = [
        ...Array.from({ length: n }, (_, i) => tokenEvent(`t${i} `, i + 1)),
        doneEvent("length", Usage.of(1, n))
      ]
      // one event a millisecond: faster than the interval, as a small model's tokens come
      const pause = () => 1
      const each = yield* chunksOf(yield* writtenOf(events, { pause }))
      const held = yield* chunksOf(yield* writtenOf(events, { pause, interval: 40 }))
      expect(held.map((c) => c.text).join("")).toBe(each.map((c) => c.text).join(""))
      expect(each.length).toBeGreaterThan(n / 2)
      // ~1 ms an event over 200 events: about one write per 40 ms, where there was one per event
      expect(held.length).toBeLessThan(n / 8)
      expect(held[0]!.text).toBe(Render.chunks(events[0]!).map(Sse.data).join(""))
    }))

  it.scoped("a held event is written within twice the interval when the next one is slow", () =>
    Effect.gen(function*() {
      const events = [tokenEvent("a", 1), tokenEvent("b", 1), tokenEvent("c", 1), doneEvent("stop", Usage.of(1, 3))]
      // "b" comes 5 ms after "a", inside the interval; "c" only 600 ms later
      const pause = (i: number) => i === 1 ? 5 : i === 2 ? 600 : undefined
      const chunks = yield* chunksOf(yield* writtenOf(events, { interval: 50, pause }))
      expect(chunks[0]!.text).toContain("\"text\":\"a\"")
      const b = chunks.findIndex((c) => c.text.includes("\"text\":\"b\""))
      expect(b).toBe(1)
      expect(chunks[b]!.text).not.toContain("\"text\":\"c\"")
      expect(chunks[b]!.at).toBeLessThan(400)
      expect(chunks.map((c) => c.text).join("").endsWith("data: [DONE]\n\n")).toBe(true)
    }))

  it.scoped("the end writes what is held at once, followed by [DONE]", () =>
    Effect.gen(function*() {
      const events = [tokenEvent("a", 1), tokenEvent("b", 1), doneEvent("stop", Usage.of(1, 2))]
      // an interval far longer than the generation: only the first event and the end are written
      const chunks = yield* chunksOf(yield* writtenOf(events, { interval: 60_000 }))
      expect(chunks.length).toBeLessThanOrEqual(2)
      expect(chunks.at(-1)!.at).toBeLessThan(5_000)
      expect(chunks.map((c) => c.text).join("")).toBe((yield* render(Stream.make(...events))).join(""))
    }))

  it.scoped("a failure while events are held writes them, then the error event and [DONE]", () =>
    Effect.gen(function*() {
      const error = new GenerationFailed({ model: "m", reason: "decode failed" })
      const events = [tokenEvent("a", 1), tokenEvent("b", 1)]
      const chunks = yield* chunksOf(yield* writtenOf(events, { end: { throws: error }, interval: 60_000 }))
      const expected = yield* render(Stream.make(...events).pipe(Stream.concat(Stream.fail(error))))
      expect(chunks.map((c) => c.text).join("")).toBe(expected.join(""))
    }))
})
