import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import WebSocket from "ws"
import { TestServer } from "../support/server.js"

const MODEL = "stories260K"
const PROMPT = "Once upon a time"

/** A `ws` client that queues incoming frames so a test can await them one by one. */
const connect = (url: string) =>
  Effect.acquireRelease(
    Effect.async<WebSocket, Error>((resume) => {
      const ws = new WebSocket(url)
      ws.once("open", () => resume(Effect.succeed(ws)))
      ws.once("error", (e) => resume(Effect.fail(e)))
    }),
    (ws) => Effect.sync(() => ws.close())
  ).pipe(
    Effect.map((ws) => {
      const frames: Array<any> = []
      const waiting: Array<(frame: any) => void> = []
      ws.on("message", (data, isBinary) => {
        expect(isBinary).toBe(false)
        const frame = JSON.parse(data.toString("utf8"))
        const next = waiting.shift()
        if (next) next(frame)
        else frames.push(frame)
      })
      const receive = Effect.async<any>((resume) => {
        const queued = frames.shift()
        if (queued !== undefined) resume(Effect.succeed(queued))
        else waiting.push((frame) => resume(Effect.succeed(frame)))
      })
      /** Frames until (and with) the one that ends an answer: `done` or `error`. */
      const answer = Effect.gen(function*() {
        const got: Array<any> = []
        for (;;) {
          const frame = yield* receive
          got.push(frame)
          if (frame.done === true || frame.error !== undefined) return got
        }
      })
      const send = (message: unknown) =>
        Effect.sync(() => ws.send(typeof message === "string" ? message : JSON.stringify(message)))
      return { ws, send, receive, answer }
    })
  )

const httpAnswer = (url: string, body: unknown) =>
  Effect.promise(() =>
    fetch(`${url}/api/generate`, { method: "POST", body: JSON.stringify(body) }).then((r) => r.json() as Promise<any>)
  )

layer(TestServer.layer)("WebSocket /ws/generate", (it) => {
  it.scoped("answers token frames then a done frame with finish_reason and usage", () =>
    Effect.gen(function*() {
      const { url, wsUrl } = yield* TestServer
      const client = yield* connect(`${wsUrl}/ws/generate`)
      const request = { model: MODEL, prompt: PROMPT, max_tokens: 32, temperature: 0 }
      yield* client.send(request)
      const frames = yield* client.answer
      const done = frames.at(-1)
      const tokens = frames.slice(0, -1)
      expect(tokens.length).toBeGreaterThan(1)
      for (const frame of tokens) expect(frame).toEqual({ token: expect.any(String) })
      expect(done).toEqual({
        done: true,
        finish_reason: "length",
        usage: { prompt_tokens: expect.any(Number), completion_tokens: 32, total_tokens: expect.any(Number) }
      })
      const whole = yield* httpAnswer(url, request)
      expect(tokens.map((f) => f.token).join("")).toBe(whole.choices[0].text)
      expect(done.usage).toEqual(whole.usage)
    }))

  it.scoped("carries several requests one after another on one connection", () =>
    Effect.gen(function*() {
      const { wsUrl } = yield* TestServer
      const client = yield* connect(`${wsUrl}/ws/generate`)
      yield* client.send({ model: MODEL, prompt: PROMPT, max_tokens: 5, temperature: 0 })
      yield* client.send({ model: MODEL, prompt: "The dog", max_tokens: 7, temperature: 0 })
      const first = yield* client.answer
      const second = yield* client.answer
      expect(first.at(-1).usage.completion_tokens).toBe(5)
      expect(second.at(-1).usage.completion_tokens).toBe(7)
      expect(first.at(-1).usage.prompt_tokens).not.toBe(second.at(-1).usage.prompt_tokens)
    }))

  it.scoped("a bad request gets an error frame and the connection stays usable", () =>
    Effect.gen(function*() {
      const { wsUrl } = yield* TestServer
      const client = yield* connect(`${wsUrl}/ws/generate`)
      yield* client.send("{not json")
      const [malformed] = yield* client.answer
      expect(malformed.error).toEqual({
        code: "invalid_request",
        message: expect.any(String),
        details: expect.stringMatching(/JSON/)
      })
      yield* client.send({ model: MODEL, prompt: PROMPT, max_tokens: "x" })
      const [wrongType] = yield* client.answer
      expect(wrongType.error.code).toBe("invalid_request")
      expect(wrongType.error.details).toContain("max_tokens")
      yield* client.send({ model: "invalid-model", prompt: PROMPT })
      const [unknown] = yield* client.answer
      expect(unknown.error.code).toBe("model_not_found")
      expect(unknown.error.details).toContain("stories260K")
      yield* client.send({ model: "TinyStories-656K-Q4_0", prompt: "naïve" })
      const [guarded] = yield* client.answer
      expect(guarded.error.code).toBe("invalid_request")
      yield* client.send({ model: MODEL, prompt: PROMPT, max_tokens: 3 })
      const ok = yield* client.answer
      expect(ok.at(-1)).toMatchObject({ done: true, usage: { completion_tokens: 3 } })
      expect(client.ws.readyState).toBe(WebSocket.OPEN)
    }))

  it.scoped("a plain GET on the WebSocket endpoint is refused in the error format", () =>
    Effect.gen(function*() {
      const { url } = yield* TestServer
      const response = yield* Effect.promise(() => fetch(`${url}/ws/generate`))
      expect(response.status).toBe(426)
      const body = yield* Effect.promise(() => response.json() as Promise<any>)
      expect(body.error.code).toBe("invalid_request")
    }))
})
