import { expect, layer } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import WebSocket from "ws"
import { TestServer } from "../support/server.js"

const MODEL = "stories260K"
// ~2000 tokens take about three seconds on the test machine: far longer than the checks below wait
const LONG = { model: MODEL, prompt: "Once upon a time", max_tokens: 2000, temperature: 0 }
const SHORT = { model: MODEL, prompt: "Once upon a time", max_tokens: 4, temperature: 0 }

// real time: it.effect runs on the TestClock, where Effect.sleep would wait for ever
const pause = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

const generate = (url: string, body: unknown) =>
  Effect.promise(() => fetch(`${url}/api/generate`, { method: "POST", body: JSON.stringify(body) }))

/**
 * With one sequence and no wait queue, a request made while another generation holds the sequence
 * is refused with 503. So a short request succeeding soon after a client went away proves the
 * abandoned generation was stopped, not left to run to its end.
 */
const sequenceFreedSoon = (url: string) =>
  Effect.gen(function*() {
    const started = performance.now()
    for (;;) {
      const response = yield* generate(url, SHORT)
      if (response.status === 200) return performance.now() - started
      expect(response.status).toBe(503)
      yield* Effect.promise(() => response.arrayBuffer())
      if (performance.now() - started > 1500) return Number.POSITIVE_INFINITY
      yield* pause(25)
    }
  })

layer(TestServer.layerWith({ parallel: 1, maxQueue: 0 }))("client disconnects", (it) => {
  it.effect("the one-sequence server refuses a second concurrent request (the premise of these tests)", () =>
    Effect.gen(function*() {
      const { url } = yield* TestServer
      const long = yield* Effect.fork(generate(url, LONG))
      yield* pause(200)
      const busy = yield* generate(url, SHORT)
      expect(busy.status).toBe(503)
      const body = yield* Effect.promise(() => busy.json() as Promise<any>)
      expect(body.error.code).toBe("server_busy")
      const finished = yield* Fiber.join(long)
      expect(finished.status).toBe(200)
      yield* Effect.promise(() => finished.arrayBuffer())
    }))

  it.effect("an SSE client that goes away stops its generation", () =>
    Effect.gen(function*() {
      const { url } = yield* TestServer
      const controller = new AbortController()
      const response = yield* Effect.promise(() =>
        fetch(`${url}/api/generate`, {
          method: "POST",
          body: JSON.stringify({ ...LONG, stream: true }),
          signal: controller.signal
        })
      )
      expect(response.status).toBe(200)
      const reader = response.body!.getReader()
      yield* Effect.promise(() => reader.read())
      controller.abort()
      expect(yield* sequenceFreedSoon(url)).toBeLessThan(1500)
    }))

  it.effect("a JSON client that goes away stops its generation", () =>
    Effect.gen(function*() {
      const { url } = yield* TestServer
      const controller = new AbortController()
      const pending = fetch(`${url}/api/generate`, {
        method: "POST",
        body: JSON.stringify(LONG),
        signal: controller.signal
      })
        .catch(() => undefined)
      yield* pause(150)
      controller.abort()
      yield* Effect.promise(() => pending)
      expect(yield* sequenceFreedSoon(url)).toBeLessThan(1500)
    }))

  it.effect("a WebSocket client that closes mid-generation stops it, and the server carries on", () =>
    Effect.gen(function*() {
      const { url, wsUrl } = yield* TestServer
      const ws = new WebSocket(`${wsUrl}/ws/generate`)
      yield* Effect.async<void>((resume) => void ws.once("open", () => resume(Effect.void)))
      const firstToken = Effect.async<unknown>((resume) =>
        void ws.once("message", (data) => resume(Effect.succeed(JSON.parse(String(data)))))
      )
      ws.send(JSON.stringify(LONG))
      expect(yield* firstToken).toEqual({ token: expect.any(String) })
      ws.close()
      expect(yield* sequenceFreedSoon(url)).toBeLessThan(1500)
      const health = yield* Effect.promise(() => fetch(`${url}/api/health`).then((r) => r.json() as Promise<any>))
      expect(health.status).toBe("healthy")
    }))

  it.effect("a WebSocket client that drops the TCP connection mid-generation stops it too", () =>
    Effect.gen(function*() {
      const { url, wsUrl } = yield* TestServer
      const ws = new WebSocket(`${wsUrl}/ws/generate`)
      yield* Effect.async<void>((resume) => void ws.once("open", () => resume(Effect.void)))
      const firstToken = Effect.async<unknown>((resume) => void ws.once("message", () => resume(Effect.void)))
      ws.send(JSON.stringify(LONG))
      yield* firstToken
      ws.terminate()
      expect(yield* sequenceFreedSoon(url)).toBeLessThan(1500)
    }))
})
