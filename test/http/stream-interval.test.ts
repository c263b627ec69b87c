import { Duration } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { hermetic } from "../support/env.js"
import { SHARED_MODELS } from "../support/models.js"
import { type RunningServer, startServer } from "../support/server.js"

// A server that writes a streamed reply at most every 100 ms (`SHIMMY_STREAM_INTERVAL`), over
// stories260K, whose tokens come far faster than that: the clients get every event, in order,
// with the same text as an answer that is not streamed, in a few socket reads instead of one a token.

const MODEL = "stories260K"
const PROMPT = "Once upon a time"

let server: RunningServer & { readonly close: () => Promise<void> }
beforeAll(async () => {
  server = await startServer({}, { streamInterval: Duration.millis(100) })
}, 60_000)
afterAll(() => server?.close())

const generate = (body: Record<string, unknown>, url = server.url) =>
  fetch(`${url}/api/generate`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, prompt: PROMPT, temperature: 0, ...body })
  })

// the body's reads as they arrive, with the ms from the request to each
const reads = async (response: Response) => {
  const decoder = new TextDecoder()
  const chunks: Array<string> = []
  const reader = response.body!.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return chunks
    chunks.push(decoder.decode(value, { stream: true }))
  }
}

describe("a streamed reply with SHIMMY_STREAM_INTERVAL", () => {
  it("SSE from /api/generate: every token its own event, the text of the unstreamed answer, fewer reads", async () => {
    const expected = await (await generate({ max_tokens: 96 })).json() as any
    expect(expected.usage.completion_tokens).toBe(96)
    const response = await generate({ max_tokens: 96, stream: true })
    expect(response.status).toBe(200)
    const chunks = await reads(response)
    const events = chunks.join("").split("\n\n").filter((e) => e.length > 0)
    expect(events.at(-1)).toBe("data: [DONE]")
    const data = events.slice(0, -1).map((e) => JSON.parse(e.slice("data: ".length)))
    const last = data.at(-1)
    expect(last.choices[0].finish_reason).toBe("length")
    expect(last.usage.completion_tokens).toBe(96)
    expect(data.map((d) => d.choices[0].text).join("")).toBe(expected.choices[0].text)
    // one event a token (and the last); far fewer reads than events: events arrived several a write
    expect(data.length).toBeGreaterThanOrEqual(90)
    expect(chunks.length).toBeLessThan(data.length / 2)
    // the first read carries the first event alone: it is not held for the interval
    expect(chunks[0]!.split("\n\n").filter((e) => e.length > 0)).toHaveLength(1)
  }, 60_000)

  it("the official openai client streams chat completions to the same content as the unstreamed answer", async () => {
    const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 })
    const request = {
      model: MODEL,
      messages: [{ role: "user" as const, content: PROMPT }],
      max_tokens: 64,
      temperature: 0
    }
    const whole = await openai.chat.completions.create(request)
    const stream = await openai.chat.completions.create({
      ...request,
      stream: true,
      stream_options: { include_usage: true }
    })
    let content = ""
    let usage: OpenAI.CompletionUsage | undefined | null
    let finish: string | null | undefined
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta.content ?? ""
      finish ??= chunk.choices[0]?.finish_reason
      usage ??= chunk.usage
    }
    expect(content).toBe(whole.choices[0]!.message.content)
    expect(finish).toBe(whole.choices[0]!.finish_reason)
    expect(usage?.completion_tokens).toBe(whole.usage?.completion_tokens)
  }, 60_000)
})

describe("SHIMMY_STREAM_INTERVAL", () => {
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "shimmy.js")

  it("is read by `shimmy serve`: a streamed reply arrives a few events a read", async () => {
    const { cwd, env } = hermetic("stream-interval", {
      SHIMMY_MODEL_PATHS: SHARED_MODELS,
      SHIMMY_STREAM_INTERVAL: "200 millis"
    })
    const child = spawn(process.execPath, [bin, "serve", "--bind", "127.0.0.1:0"], { cwd, env })
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = ""
        child.stdout.on("data", (chunk) => {
          out += String(chunk)
          const found = /listening on (http:\/\/\S+)/.exec(out)?.[1]
          if (found !== undefined) resolve(found)
        })
        child.once("exit", (code) => reject(new Error(`exited ${code}: ${out}`)))
      })
      const chunks = await reads(await generate({ max_tokens: 64, stream: true }, url))
      const events = chunks.join("").split("\n\n").filter((e) => e.length > 0)
      expect(events.at(-1)).toBe("data: [DONE]")
      expect(events.length).toBeGreaterThanOrEqual(60)
      expect(chunks.length).toBeLessThan(events.length / 2)
    } finally {
      child.kill()
    }
  }, 60_000)

  it("is refused at start-up when it is not a duration of at most 10 seconds", () => {
    for (const value of ["1 hour", "fast"]) {
      const { cwd, env } = hermetic("stream-interval", {
        SHIMMY_MODEL_PATHS: SHARED_MODELS,
        SHIMMY_STREAM_INTERVAL: value
      })
      const result = spawnSync(process.execPath, [bin, "serve", "--bind", "127.0.0.1:0"], {
        cwd,
        env,
        encoding: "utf8",
        timeout: 30_000
      })
      expect(result.status, value).toBe(1)
      expect(result.stdout).not.toMatch(/listening/)
      expect(result.stdout + result.stderr).toMatch(/SHIMMY_STREAM_INTERVAL/)
    }
  }, 60_000)
})
