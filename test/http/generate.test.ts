import { describe, expect, layer } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { LlamaEngine } from "../../src/services/LlamaEngine.js"
import { TestServer } from "../support/server.js"
import { readSse } from "../support/sse.js"

const MODEL = "stories260K"
const PROMPT = "Once upon a time"

const post = (url: string, body: unknown, init: RequestInit = {}) =>
  Effect.promise(() =>
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
      ...init
    })
  )

const json = (response: Response) => Effect.promise(() => response.json() as Promise<any>)

interface Usage {
  readonly prompt_tokens: number
  readonly completion_tokens: number
  readonly total_tokens: number
}

/** The engine's own answer, in-process, for the same model and prompt. */
const engineAnswer = (prompt: string, maxTokens: number) =>
  Effect.gen(function*() {
    const engine = yield* LlamaEngine
    return yield* engine.generate({ model: MODEL, prompt, sampling: { maxTokens, temperature: 0, stop: [] } }).pipe(
      Stream.runFold({ text: "", finish: "", usage: undefined as Usage | undefined }, (acc, e) =>
        e._tag === "Token"
          ? { ...acc, text: acc.text + e.text }
          : e._tag === "Done"
          ? { ...acc, finish: e.finishReason, usage: { ...e.usage } }
          : acc)
    )
  })

layer(TestServer.layer)("POST /api/generate", (it) => {
  describe("JSON", () => {
    it.effect("answers the spec's shape with real token counts and finish_reason length", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        const response = yield* post(`${url}/api/generate`, {
          model: MODEL,
          prompt: PROMPT,
          max_tokens: 8,
          temperature: 0
        })
        expect(response.status).toBe(200)
        expect(response.headers.get("content-type")).toMatch(/^application\/json/)
        const body = yield* json(response)
        expect(Object.keys(body).sort()).toEqual(["choices", "usage"])
        expect(body.choices).toHaveLength(1)
        expect(body.choices[0]).toEqual({ text: expect.any(String), index: 0, finish_reason: "length" })
        expect(body.choices[0].text.length).toBeGreaterThan(0)
        expect(body.usage.completion_tokens).toBe(8)
        // "Once upon a time" is 4 words plus BOS in a 512-token SPM vocabulary: a handful of tokens
        expect(body.usage.prompt_tokens).toBeGreaterThan(1)
        expect(body.usage.prompt_tokens).toBeLessThan(20)
        expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens)
      }))

    it.effect("a greedy answer equals LlamaEngine.generate for the same model and prompt", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        const expected = yield* engineAnswer(PROMPT, 48)
        const body = yield* post(`${url}/api/generate`, {
          model: MODEL,
          prompt: PROMPT,
          max_tokens: 48,
          temperature: 0
        }).pipe(
          Effect.flatMap(json)
        )
        expect(body.choices[0].text).toBe(expected.text)
        expect(body.choices[0].finish_reason).toBe(expected.finish)
        expect(body.usage).toEqual(expected.usage)
        expect(expected.text).toContain("Lily")
      }))

    it.effect("finish_reason is stop when a stop string ends the answer", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        const body = yield* post(`${url}/api/generate`, {
          model: MODEL,
          prompt: PROMPT,
          max_tokens: 64,
          temperature: 0,
          stop: ["Lily"]
        }).pipe(Effect.flatMap(json))
        expect(body.choices[0].finish_reason).toBe("stop")
        expect(body.choices[0].text).not.toContain("Lily")
        expect(body.usage.completion_tokens).toBeLessThan(64)
      }))

    it.effect("arbitrary unicode through a byte-fallback model comes back as valid JSON", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        const response = yield* post(`${url}/api/generate`, {
          model: "llama-2-tiny-random",
          prompt: "héllo wörld 🦙 \t 你好",
          max_tokens: 16,
          temperature: 0
        })
        expect(response.status).toBe(200)
        const body = yield* json(response)
        expect(body.usage.completion_tokens).toBeGreaterThan(0)
        expect(body.choices[0].text).not.toContain("\uFFFD")
      }))
  })

  describe("SSE", () => {
    it.effect("streams chunks, a last chunk with finish_reason and usage, then [DONE]", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        const response = yield* post(`${url}/api/generate`, {
          model: MODEL,
          prompt: PROMPT,
          max_tokens: 24,
          temperature: 0,
          stream: true
        })
        expect(response.status).toBe(200)
        expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/)
        expect(response.headers.get("cache-control")).toBe("no-cache")
        expect(response.headers.get("x-accel-buffering")).toBe("no")
        expect(response.headers.get("content-length")).toBeNull()
        const events = yield* Effect.promise(() => readSse(response))
        expect(events.at(-1)).toBe("[DONE]")
        const chunks = events.slice(0, -1).map((e) => JSON.parse(e))
        const last = chunks.at(-1)
        const tokens = chunks.slice(0, -1)
        expect(tokens.length).toBeGreaterThan(1)
        for (const chunk of tokens) {
          expect(chunk).toEqual({ choices: [{ text: expect.any(String), index: 0 }] })
        }
        expect(last.choices[0].finish_reason).toBe("length")
        expect(last.usage.completion_tokens).toBe(24)
        expect(last.usage.total_tokens).toBe(last.usage.prompt_tokens + 24)
      }))

    it.effect("the concatenated chunks equal the JSON answer of the same greedy request", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        const request = { model: MODEL, prompt: PROMPT, max_tokens: 64, temperature: 0 }
        const whole = yield* post(`${url}/api/generate`, request).pipe(Effect.flatMap(json))
        const response = yield* post(`${url}/api/generate`, { ...request, stream: true })
        const events = yield* Effect.promise(() => readSse(response))
        const chunks = events.filter((e) => e !== "[DONE]").map((e) => JSON.parse(e))
        expect(chunks.map((c) => c.choices[0].text).join("")).toBe(whole.choices[0].text)
        expect(chunks.at(-1).usage).toEqual(whole.usage)
        expect(chunks.at(-1).choices[0].finish_reason).toBe(whole.choices[0].finish_reason)
      }))

    it.effect("multi-byte text streams as valid UTF-8, each chunk whole characters", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        // random weights over a 32,000-token vocabulary: plenty of non-ASCII and byte tokens
        const request = { model: "llama-2-tiny-random", prompt: "héllo 🦙 你好", max_tokens: 64, temperature: 0 }
        const whole = yield* post(`${url}/api/generate`, request).pipe(Effect.flatMap(json))
        const response = yield* post(`${url}/api/generate`, { ...request, stream: true })
        // readSse decodes with a fatal TextDecoder: an invalid byte sequence fails the test
        const events = yield* Effect.promise(() => readSse(response))
        const texts = events.filter((e) => e !== "[DONE]").map((e) => JSON.parse(e).choices[0].text as string)
        for (const text of texts) {
          expect(text).not.toContain("\uFFFD")
          expect(/[\uD800-\uDBFF]$/.test(text)).toBe(false)
        }
        expect(texts.join("")).toBe(whole.choices[0].text)
        expect(/[^\x00-\x7F]/.test(whole.choices[0].text)).toBe(true)
      }))

    it.effect("chunks arrive while the generation is still running", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        const started = performance.now()
        const response = yield* post(`${url}/api/generate`, {
          model: MODEL,
          prompt: PROMPT,
          max_tokens: 1500,
          temperature: 0,
          stream: true
        })
        const reader = response.body!.getReader()
        const first = yield* Effect.promise(() => reader.read())
        const firstAt = performance.now() - started
        expect(new TextDecoder().decode(first.value)).toMatch(/^data: \{"choices"/)
        for (;;) {
          const { done } = yield* Effect.promise(() => reader.read())
          if (done) break
        }
        const total = performance.now() - started
        // 1500 tokens take well over a second here; the first one is sent long before the last
        expect(firstAt).toBeLessThan(total / 4)
      }))

    it.effect("errors before the first token keep their status code", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        const response = yield* post(`${url}/api/generate`, { model: "no-such-model", prompt: PROMPT, stream: true })
        expect(response.status).toBe(404)
        expect(response.headers.get("content-type")).toMatch(/^application\/json/)
        const body = yield* json(response)
        expect(body.error.code).toBe("model_not_found")
      }))
  })

  describe("errors", () => {
    const expectError = (response: Response, status: number, code: string) =>
      Effect.gen(function*() {
        expect(response.status).toBe(status)
        expect(response.headers.get("content-type")).toMatch(/^application\/json/)
        const body = yield* json(response)
        expect(Object.keys(body)).toEqual(["error"])
        expect(Object.keys(body.error).sort()).toEqual(["code", "details", "message"])
        expect(body.error.code).toBe(code)
        expect(typeof body.error.message).toBe("string")
        expect(typeof body.error.details).toBe("string")
        return body.error as { code: string; message: string; details: string }
      })

    it.effect("malformed JSON is 400 invalid_request", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        const error = yield* post(`${url}/api/generate`, "{\"model\": \"stories260K\", ").pipe(
          Effect.flatMap((r) => expectError(r, 400, "invalid_request"))
        )
        expect(error.details).toMatch(/JSON/)
      }))

    it.effect("an empty body is 400 invalid_request", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        yield* post(`${url}/api/generate`, "").pipe(Effect.flatMap((r) => expectError(r, 400, "invalid_request")))
      }))

    it.effect("a missing prompt is 400 naming prompt", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        const error = yield* post(`${url}/api/generate`, { model: MODEL }).pipe(
          Effect.flatMap((r) => expectError(r, 400, "invalid_request"))
        )
        expect(error.details).toContain("prompt")
      }))

    it.effect("a wrong type is 400 naming the field", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        const error = yield* post(`${url}/api/generate`, { model: MODEL, prompt: PROMPT, max_tokens: "x" }).pipe(
          Effect.flatMap((r) => expectError(r, 400, "invalid_request"))
        )
        expect(error.details).toContain("max_tokens")
      }))

    it.effect("an out-of-range value is 400 naming the field", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        const error = yield* post(`${url}/api/generate`, { model: MODEL, prompt: PROMPT, temperature: 7 }).pipe(
          Effect.flatMap((r) => expectError(r, 400, "invalid_request"))
        )
        expect(error.details).toContain("temperature")
      }))

    it.effect("a body that is not an object is 400", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        yield* post(`${url}/api/generate`, "[1, 2]").pipe(Effect.flatMap((r) => expectError(r, 400, "invalid_request")))
      }))

    it.effect("an unknown model is 404 model_not_found listing the available names", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        const error = yield* post(`${url}/api/generate`, { model: "invalid-model", prompt: PROMPT }).pipe(
          Effect.flatMap((r) => expectError(r, 404, "model_not_found"))
        )
        expect(error.details).toContain("invalid-model")
        expect(error.details).toContain("stories260K")
        expect(error.details).toContain("llama-2-tiny-random")
      }))

    it.effect("a character a guarded model cannot tokenize is a clean 400, and the server lives on", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        const error = yield* post(`${url}/api/generate`, {
          model: "TinyStories-656K-Q8_0",
          prompt: "Once upon a time 🦙"
        }).pipe(
          Effect.flatMap((r) => expectError(r, 400, "invalid_request"))
        )
        expect(error.details).toContain("🦙")
        const health = yield* Effect.promise(() => fetch(`${url}/api/health`))
        expect(health.status).toBe(200)
      }))

    it.effect("an unknown route is 404 and a wrong method 405, in the error format", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        yield* Effect.promise(() => fetch(`${url}/api/nothing`)).pipe(
          Effect.flatMap((r) => expectError(r, 404, "not_found"))
        )
        const wrong = yield* Effect.promise(() => fetch(`${url}/api/generate`))
        expect(wrong.headers.get("allow")).toBe("POST")
        yield* expectError(wrong, 405, "method_not_allowed")
        yield* post(`${url}/api/models`, {}).pipe(Effect.flatMap((r) => expectError(r, 405, "method_not_allowed")))
      }))
  })
})
