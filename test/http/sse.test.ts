import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Effect, HashMap, Logger, Stream } from "effect"
import { type EngineError, GenerationFailed } from "../../src/domain/Errors.js"
import { doneEvent, type GenerationEvent, tokenEvent, Usage } from "../../src/domain/Generation.js"
import * as Render from "../../src/http/seed/Render.js"
import * as Sse from "../../src/http/Sse.js"

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
