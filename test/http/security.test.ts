import { Option, Redacted } from "effect"
import OpenAI, { AuthenticationError } from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openSocket, postJson, wsAnswer } from "../support/clients.js"
import { startServer } from "../support/server.js"

const MODEL = "stories260K"
const KEY = "s3cret-key"
const GENERATE = { model: MODEL, prompt: "Once", max_tokens: 2, temperature: 0 }

type Server = Awaited<ReturnType<typeof startServer>>

describe("API key", () => {
  let server: Server
  beforeAll(async () => {
    server = await startServer({}, { apiKey: Option.some(Redacted.make(KEY)) })
  })
  afterAll(() => server.close())

  it("/api and /ws refuse a missing or wrong key with 401 unauthorized in the seed format", async () => {
    for (const headers of [{}, { authorization: "Bearer wrong" }, { "x-api-key": `${KEY}x` }, { authorization: KEY }]) {
      const answer = await postJson(`${server.url}/api/generate`, GENERATE, { headers })
      expect(answer.status).toBe(401)
      expect(answer.headers.get("www-authenticate")).toBe("Bearer")
      expect(answer.body).toEqual({
        error: { code: "unauthorized", message: expect.any(String), details: expect.any(String) }
      })
    }
    expect((await fetch(`${server.url}/api/models`)).status).toBe(401)
    // unknown paths too: nothing is learnt about the server without the key
    expect((await fetch(`${server.url}/nope`)).status).toBe(401)
    await expect(openSocket(`${server.wsUrl}/ws/generate`)).rejects.toThrow("401")
    await expect(openSocket(`${server.wsUrl}/ws/generate?api_key=wrong`)).rejects.toThrow("401")
  })

  it("accepts the key as a Bearer token, as x-api-key, and on WebSockets as ?api_key= or a header", async () => {
    for (
      const headers of [{ authorization: `Bearer ${KEY}` }, { authorization: `bearer ${KEY}` }, { "x-api-key": KEY }]
    ) {
      const answer = await postJson(`${server.url}/api/generate`, GENERATE, { headers })
      expect(answer.status).toBe(200)
    }
    for (
      const ws of [
        await openSocket(`${server.wsUrl}/ws/generate?api_key=${KEY}`),
        await openSocket(`${server.wsUrl}/ws/generate`, { headers: { authorization: `Bearer ${KEY}` } })
      ]
    ) {
      expect((await wsAnswer(ws, GENERATE)).at(-1)).toMatchObject({ done: true })
      ws.close()
    }
    // the query parameter is for WebSockets only (URLs end up in logs)
    expect((await postJson(`${server.url}/api/generate?api_key=${KEY}`, GENERATE)).status).toBe(401)
  })

  it("/api/health stays public", async () => {
    const response = await fetch(`${server.url}/api/health`)
    expect(response.status).toBe(200)
  })

  it("/v1 answers 401 in OpenAI's shape, which the SDK raises as AuthenticationError", async () => {
    const wrong = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "wrong", maxRetries: 0 })
    const error = await wrong.models.list().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AuthenticationError)
    const raw = await fetch(`${server.url}/v1/models`)
    expect(await raw.json()).toEqual({
      error: { message: expect.any(String), type: "authentication_error", param: null, code: "unauthorized" }
    })
    const right = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 })
    const chat = await right.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Hi" }],
      max_tokens: 2
    })
    expect(chat.choices[0]!.message.role).toBe("assistant")
  })
})

describe("CORS", () => {
  const ALLOWED = "http://localhost:3000"
  let listed: Server
  let closed: Server
  beforeAll(async () => {
    listed = await startServer({}, { corsOrigins: [ALLOWED, "https://app.example"] })
    closed = await startServer()
  })
  afterAll(async () => {
    await listed.close()
    await closed.close()
  })

  const preflight = (url: string, origin: string) =>
    fetch(`${url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type"
      }
    })

  it("a listed origin's preflight is answered, and its requests carry Access-Control-Allow-Origin", async () => {
    const answer = await preflight(listed.url, ALLOWED)
    expect(answer.status).toBe(204)
    expect(answer.headers.get("access-control-allow-origin")).toBe(ALLOWED)
    expect(answer.headers.get("access-control-allow-methods")).toContain("POST")
    expect(answer.headers.get("access-control-allow-headers")).toBe("authorization, content-type")
    expect(answer.headers.get("vary")).toBe("Origin")

    const generated = await postJson(`${listed.url}/api/generate`, GENERATE, { headers: { origin: ALLOWED } })
    expect(generated.status).toBe(200)
    expect(generated.headers.get("access-control-allow-origin")).toBe(ALLOWED)
    // errors too, so the page can read them
    const error = await postJson(`${listed.url}/api/generate`, { model: "nope", prompt: "x" }, {
      headers: { origin: ALLOWED }
    })
    expect(error.status).toBe(404)
    expect(error.headers.get("access-control-allow-origin")).toBe(ALLOWED)
  })

  it("another origin gets no Access-Control-Allow-Origin and is refused with 403 forbidden", async () => {
    const answer = await preflight(listed.url, "https://evil.example")
    expect(answer.status).toBe(403)
    expect(answer.headers.get("access-control-allow-origin")).toBeNull()
    const post = await postJson(`${listed.url}/api/generate`, GENERATE, { headers: { origin: "https://evil.example" } })
    expect(post.status).toBe(403)
    expect(post.body.error.code).toBe("forbidden")
    expect(post.headers.get("access-control-allow-origin")).toBeNull()
    // browsers enforce nothing on WebSockets: the server checks the Origin of the upgrade itself
    await expect(openSocket(`${listed.wsUrl}/ws/generate`, { origin: "https://evil.example" })).rejects.toThrow("403")
    const ws = await openSocket(`${listed.wsUrl}/ws/generate`, { origin: ALLOWED })
    ws.close()
  })

  it("is off by default: any browser origin is refused, clients that send no Origin are served", async () => {
    const answer = await preflight(closed.url, ALLOWED)
    expect(answer.status).toBe(403)
    expect(answer.headers.get("access-control-allow-origin")).toBeNull()
    expect((await postJson(`${closed.url}/api/generate`, GENERATE)).status).toBe(200)
  })

  it("* allows every origin", async () => {
    const any = await startServer({}, { corsOrigins: ["*"] })
    try {
      const answer = await preflight(any.url, "https://anything.example")
      expect(answer.status).toBe(204)
      expect(answer.headers.get("access-control-allow-origin")).toBe("*")
    } finally {
      await any.close()
    }
  })
})
