import { expect, layer } from "@effect/vitest"
import { Chunk, Effect, Fiber, Layer, Stream } from "effect"
import type { GenerationEvent, Sampling } from "../src/domain/Generation.js"
import { Live } from "../src/services/Live.js"
import { LlamaEngine } from "../src/services/LlamaEngine.js"
import { testConfigLayer } from "./support/models.js"

const greedy = (maxTokens: number, stop: ReadonlyArray<string> = []): Sampling => ({ maxTokens, temperature: 0, stop })

const collect = (events: ReadonlyArray<GenerationEvent>) => ({
  text: events.flatMap((e) => (e._tag === "Token" ? [e.text] : [])).join(""),
  done: events.find((e) => e._tag === "Done")
})

const run = (model: string, prompt: string, sampling: Sampling) =>
  Effect.gen(function*() {
    const engine = yield* LlamaEngine
    const events = yield* Stream.runCollect(engine.generate({ model, prompt, sampling }))
    return collect(Chunk.toReadonlyArray(events))
  })

const EngineLive = Live.pipe(Layer.provideMerge(testConfigLayer({ parallel: 2, maxQueue: 1 })))

layer(EngineLive, { timeout: 60_000 })("LlamaEngine on stories260K", (it) => {
  it.effect("greedy generation is deterministic English text", () =>
    Effect.gen(function*() {
      const first = yield* run("stories260K", "Once upon a time", greedy(40))
      const second = yield* run("stories260K", "Once upon a time", greedy(40))
      expect(first.text).toBe(second.text)
      expect(first.text.startsWith(", there was a little girl named Lily.")).toBe(true)
      const words = first.text.split(/\s+/).filter((w) => /^[A-Za-z,.'"!?]+$/.test(w))
      expect(words.length).toBeGreaterThan(15)
    }))

  it.effect("honours max_tokens with finish reason length and exact usage", () =>
    Effect.gen(function*() {
      const { done, text } = yield* run("stories260K", "Once upon a time", greedy(7))
      expect(done?._tag === "Done" && done.finishReason).toBe("length")
      expect(done?._tag === "Done" && done.usage).toMatchObject({
        prompt_tokens: 5,
        completion_tokens: 7,
        total_tokens: 12
      })
      expect(text.length).toBeGreaterThan(0)
    }))

  it.effect("stops at a stop string that begins with a space, without emitting it", () =>
    Effect.gen(function*() {
      const full = yield* run("stories260K", "Once upon a time", greedy(40))
      const stopped = yield* run("stories260K", "Once upon a time", greedy(40, [" named"]))
      expect(stopped.text).toBe(full.text.slice(0, full.text.indexOf(" named")))
      expect(stopped.done?._tag === "Done" && stopped.done.finishReason).toBe("stop")
      expect(stopped.done?._tag === "Done" && stopped.done.usage.completion_tokens).toBeLessThan(40)
    }))

  it.effect("same seed and temperature give the same text", () =>
    Effect.gen(function*() {
      const sampling: Sampling = { maxTokens: 30, temperature: 1, seed: 42, stop: [] }
      const a = yield* run("stories260K", "Once upon a time", sampling)
      const b = yield* run("stories260K", "Once upon a time", sampling)
      expect(a.text).toBe(b.text)
    }))

  it.effect("interrupting the stream stops generation and frees its sequence", () =>
    Effect.gen(function*() {
      const engine = yield* LlamaEngine
      const taken = yield* engine.generate({ model: "stories260K", prompt: "Once upon a time", sampling: greedy(1500) })
        .pipe(
          Stream.take(3),
          Stream.runCollect
        )
      expect(Chunk.size(taken)).toBe(3)
      const loaded = yield* Effect.scoped(engine.acquire("stories260K"))
      expect(yield* loaded.free).toBe(2)
      // a sequence that kept generating would hold the context: both sequences serve at once
      const [a, b] = yield* Effect.all([
        run("stories260K", "Once upon a time", greedy(5)),
        run("stories260K", "Once upon a time", greedy(5))
      ], { concurrency: 2 })
      expect(a.text).toBe(b.text)
    }))

  it.effect("waits for a sequence when all are busy, and fails with ServerBusy past the queue", () =>
    Effect.gen(function*() {
      const engine = yield* LlamaEngine
      const long = () =>
        engine.generate({ model: "stories260K", prompt: "Once upon a time", sampling: greedy(1500) }).pipe(
          Stream.runDrain
        )
      // 2 sequences busy, 1 request queued, the 4th is refused
      const fibers = yield* Effect.all([long(), long(), long()].map((e) => Effect.fork(e)))
      // real time (it.effect runs on a test clock): the three requests are under way
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      const refused = yield* Effect.flip(long())
      expect(refused._tag).toBe("ServerBusy")
      yield* Effect.all(fibers.map(Fiber.join))
    }))

  it.effect("refuses characters a guarded vocabulary cannot tokenize instead of aborting", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(run("TinyStories-656K-Q8_0", "Café\tcrème 🎉", greedy(5)))
      expect(error._tag).toBe("InvalidRequest")
      expect(error.message).toContain("\"é\"")
      expect(error.message).toContain("\"\\t\"")
      const ok = yield* run("TinyStories-656K-Q8_0", "Once upon a time", greedy(5))
      expect(ok.text.length).toBeGreaterThan(0)
    }))

  it.effect("rejects a prompt longer than the context", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(run("TinyStories-656K-Q8_0", "the cat sat on the mat. ".repeat(200), greedy(5)))
      expect(error._tag).toBe("ContextLengthExceeded")
      expect(error._tag === "ContextLengthExceeded" && error.contextSize).toBe(512)
    }))

  it.effect("stops with length at the end of the context", () =>
    Effect.gen(function*() {
      const prompt = "the cat sat on the mat. ".repeat(70)
      const { done } = yield* run("TinyStories-656K-Q8_0", prompt, greedy(1000))
      expect(done?._tag === "Done" && done.finishReason).toBe("length")
      expect(done?._tag === "Done" && done.usage.total_tokens).toBe(512)
    }))

  it.effect("an unknown model fails with ModelNotFound", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(run("nope", "hi", greedy(5)))
      expect(error._tag).toBe("ModelNotFound")
    }))
})
