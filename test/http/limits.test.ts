import * as http from "node:http"
import type * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openSocket, postJson, postSse, sseText, wsAnswer } from "../support/clients.js"
import { startServer } from "../support/server.js"

const MODEL = "stories260K"
const MiB = 1024 * 1024
// a context of 64 tokens: easy to fill, easy to overflow
const CONTEXT = 64

type Server = Awaited<ReturnType<typeof startServer>>

/** Streams a chunked body (no Content-Length) until the server answers; tells how much was sent by then. */
const chunkedUntilAnswered = (url: string, chunk: Buffer, most: number) =>
  new Promise<{ status: number; body: any; sent: number; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    const request = http.request(url, { method: "POST", headers: { "content-type": "application/json" } })
    let sent = 0
    let answered = false
    request.on("response", (response) => {
      answered = true
      let text = ""
      response.on("data", (d) => (text += d))
      response.on(
        "end",
        () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text), sent, headers: response.headers })
      )
    })
    // the server closing the connection after its answer may fail the rest of the upload
    request.on("error", (e) => (answered ? undefined : reject(e)))
    const pump = () => {
      while (!answered && sent < most) {
        sent += chunk.byteLength
        if (!request.write(chunk)) return void request.once("drain", pump)
      }
      if (!answered) request.end()
    }
    request.write("{\"model\":\"stories260K\",\"prompt\":\"")
    pump()
  })

describe("limits", () => {
  let server: Server
  beforeAll(async () => {
    server = await startServer({ contextSize: CONTEXT })
  })
  afterAll(() => server.close())

  it("a body whose Content-Length is over 1 MiB is refused with 413 before it is read, in each error format", async () => {
    const big = JSON.stringify({ model: MODEL, prompt: "a".repeat(MiB) })
    const api = await postJson(`${server.url}/api/generate`, big)
    expect(api.status).toBe(413)
    expect(api.body).toEqual({
      error: { code: "request_too_large", message: expect.any(String), details: expect.stringContaining("1048576") }
    })
    const v1 = await postJson(`${server.url}/v1/completions`, big)
    expect(v1.status).toBe(413)
    expect(v1.body.error).toMatchObject({ code: "request_too_large", type: "invalid_request_error" })
    // just under the limit is read and answered
    const fits = await postJson(
      `${server.url}/api/generate`,
      JSON.stringify({ model: MODEL, prompt: "a".repeat(MiB - 100), max_tokens: 1 })
    )
    expect(fits.status).toBe(400)
    expect(fits.body.error.code).toBe("context_length_exceeded")
  })

  it("a chunked body is cut off at the limit: 413 while the client is still sending", async () => {
    const answer = await chunkedUntilAnswered(`${server.url}/api/generate`, Buffer.alloc(64 * 1024, "a"), 64 * MiB)
    expect(answer.status).toBe(413)
    expect(answer.body.error.code).toBe("request_too_large")
    // the server answered long before the 64 MiB were sent: it stopped reading at the limit
    expect(answer.sent).toBeLessThan(16 * MiB)
    const health = await (await fetch(`${server.url}/api/health`)).json() as any
    expect(health.status).toBe("healthy")
  })

  it("a WebSocket message over the limit gets an error frame and the connection stays usable", async () => {
    const ws = await openSocket(`${server.wsUrl}/ws/generate`)
    const [tooBig] = await wsAnswer(ws, JSON.stringify({ model: MODEL, prompt: "a".repeat(MiB + 1) }))
    expect(tooBig.error.code).toBe("request_too_large")
    const ok = await wsAnswer(ws, { model: MODEL, prompt: "Once", max_tokens: 2 })
    expect(ok.at(-1)).toMatchObject({ done: true })
    ws.close()
  })

  it("a WebSocket message far over the limit is cut off while it arrives (1009), and the server goes on", async () => {
    const ws = await openSocket(`${server.wsUrl}/ws/generate`)
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)))
    ws.on("error", () => {})
    // 64 MiB announced in one frame header, its payload never sent: only a cap on the declared
    // length answers this before the bytes arrive
    const header = Buffer.alloc(14)
    header[0] = 0x81 // FIN, text
    header[1] = 0x80 | 127 // masked, 64-bit length
    header.writeBigUInt64BE(BigInt(64 * MiB), 2)
    ;(ws as unknown as { _socket: net.Socket })._socket.write(header)
    expect(await closed).toBe(1009)
    const again = await openSocket(`${server.wsUrl}/ws/generate`)
    const ok = await wsAnswer(again, { model: MODEL, prompt: "Once", max_tokens: 2 })
    expect(ok.at(-1)).toMatchObject({ done: true })
    again.close()
  })

  it("a prompt longer than the context is 400 context_length_exceeded with the counts, on every API", async () => {
    const prompt = "Once upon a time there was a little girl ".repeat(10)
    const api = await postJson(`${server.url}/api/generate`, { model: MODEL, prompt })
    expect(api.status).toBe(400)
    expect(api.body.error.code).toBe("context_length_exceeded")
    const [, tokens, context] =
      /The prompt is (\d+) tokens, which does not fit in the context of (\d+) tokens/.exec(api.body.error.details) ?? []
    expect(Number(tokens)).toBeGreaterThan(CONTEXT)
    expect(Number(context)).toBe(CONTEXT)

    const sse = await postSse(`${server.url}/api/generate`, { model: MODEL, prompt, stream: true })
    expect(sse.status).toBe(400)
    expect(sse.error.error.code).toBe("context_length_exceeded")

    const completion = await postJson(`${server.url}/v1/completions`, { model: MODEL, prompt })
    expect(completion.status).toBe(400)
    expect(completion.body.error).toMatchObject({
      code: "context_length_exceeded",
      param: "prompt",
      message: expect.stringContaining(`${CONTEXT} tokens`)
    })
    const chat = await postJson(`${server.url}/v1/chat/completions`, {
      model: MODEL,
      messages: [{ role: "user", content: prompt }],
      stream: true
    })
    expect(chat.status).toBe(400)
    expect(chat.body.error).toMatchObject({ code: "context_length_exceeded", param: "messages" })

    const ws = await openSocket(`${server.wsUrl}/ws/generate`)
    const [frame] = await wsAnswer(ws, { model: MODEL, prompt })
    expect(frame.error.code).toBe("context_length_exceeded")
    ws.close()
  })

  it("a generation that reaches the end of the context stops with finish_reason length", async () => {
    const api = await postJson(`${server.url}/api/generate`, {
      model: MODEL,
      prompt: "Once upon a time",
      max_tokens: 1000,
      temperature: 0
    })
    expect(api.status).toBe(200)
    expect(api.body.choices[0].finish_reason).toBe("length")
    expect(api.body.usage.total_tokens).toBe(CONTEXT)

    const sse = await postSse(`${server.url}/api/generate`, {
      model: MODEL,
      prompt: "Once upon a time",
      max_tokens: 1000,
      temperature: 0,
      stream: true
    })
    expect(sseText(sse.events)).toMatchObject({ finish: "length", done: true, text: api.body.choices[0].text })

    // OpenAI's default is no limit but the context
    const completion = await postJson(`${server.url}/v1/completions`, {
      model: MODEL,
      prompt: "Once upon a time",
      temperature: 0
    })
    expect(completion.body.choices[0].finish_reason).toBe("length")
    expect(completion.body.usage.total_tokens).toBe(CONTEXT)
  })
})
