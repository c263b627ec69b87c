import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Console, Effect, Fiber, Redacted } from "effect"
import { Option } from "effect"
import { Ollama } from "ollama"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { serveCommand } from "../../src/cli/Serve.js"
import { sharedModel } from "../support/models.js"
import { modelsDir, type RunningServer, startServer } from "../support/server.js"

/**
 * The Ollama-only listener shares the main port's guard: the API key, CORS and the body limit,
 * each refusal in Ollama's `{"error"}` shape; and `shimmy serve --ollama-port` starts it.
 */

const KEY = "s3cret-ollama"
const ORIGIN = "https://webui.example"
let server: RunningServer & { readonly close: () => Promise<void> }

beforeAll(async () => {
  server = await startServer(
    { modelPaths: [sharedModel("stories260K.gguf")] },
    { apiKey: Option.some(Redacted.make(KEY)), corsOrigins: [ORIGIN], maxBodyBytes: 4096 },
    { ollama: true }
  )
}, 60_000)

afterAll(async () => {
  await server?.close()
})

describe("the guard on the Ollama-only listener", () => {
  it("asks for the API key, and ollama-js gets in with it through its headers", async () => {
    const refused = await fetch(`${server.ollamaUrl}/api/tags`)
    expect(refused.status).toBe(401)
    expect(await refused.json()).toEqual({ error: expect.stringContaining("requires an API key") })
    const without = await new Ollama({ host: server.ollamaUrl! }).list().catch((e: Error & { status_code: number }) =>
      e
    )
    expect(without).toMatchObject({ name: "ResponseError", status_code: 401 })
    const ollama = new Ollama({ host: server.ollamaUrl!, headers: { authorization: `Bearer ${KEY}` } })
    expect((await ollama.list()).models.map((m) => m.name)).toEqual(["stories260K:latest"])
    // the same on /ollama of the main port
    expect((await fetch(`${server.url}/ollama/api/tags`)).status).toBe(401)
  })

  it("answers CORS for allowed origins and refuses others in Ollama's shape", async () => {
    const headers = { authorization: `Bearer ${KEY}` }
    const allowed = await fetch(`${server.ollamaUrl}/api/version`, { headers: { ...headers, origin: ORIGIN } })
    expect(allowed.status).toBe(200)
    expect(allowed.headers.get("access-control-allow-origin")).toBe(ORIGIN)
    const preflight = await fetch(`${server.ollamaUrl}/api/delete`, {
      method: "OPTIONS",
      headers: { origin: ORIGIN, "access-control-request-method": "DELETE" }
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get("access-control-allow-methods")).toContain("DELETE")
    const other = await fetch(`${server.ollamaUrl}/api/version`, {
      headers: { ...headers, origin: "https://evil.example" }
    })
    expect(other.status).toBe(403)
    expect(Object.keys((await other.json()) as object)).toEqual(["error"])
  })

  it("refuses a body over the limit with 413 in Ollama's shape", async () => {
    const big = await fetch(`${server.ollamaUrl}/api/chat`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ model: "stories260K", messages: [{ role: "user", content: "x".repeat(10_000) }] })
    })
    expect(big.status).toBe(413)
    expect(await big.json()).toEqual({ error: expect.stringContaining("4096 bytes") })
  })
})

describe("a busy server", () => {
  it("answers 503 with Retry-After in Ollama's shape, which ollama-js raises", async () => {
    const busy = await startServer({ modelPaths: [sharedModel("stories260K.gguf")], parallel: 1, maxQueue: 0 }, {}, {
      ollama: true
    })
    try {
      const ollama = new Ollama({ host: busy.ollamaUrl! })
      const running = await ollama.generate({
        model: "stories260K",
        prompt: "Once upon a time",
        raw: true,
        stream: true,
        options: { num_predict: 100_000 }
      })
      const iterator = running[Symbol.asyncIterator]()
      await iterator.next()
      const refused = await fetch(`${busy.ollamaUrl}/api/generate`, {
        method: "POST",
        body: JSON.stringify({ model: "stories260K", prompt: "Once", stream: false })
      })
      expect(refused.status).toBe(503)
      expect(refused.headers.get("retry-after")).toBe("1")
      expect(await refused.json()).toEqual({ error: expect.stringContaining("busy") })
      const raised = await ollama.chat({ model: "stories260K", messages: [{ role: "user", content: "hi" }] })
        .catch((e: Error & { status_code: number }) => e)
      expect(raised).toMatchObject({ name: "ResponseError", status_code: 503 })
      running.abort()
    } finally {
      await busy.close()
    }
  }, 60_000)
})

describe("shimmy serve --ollama-port", () => {
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

  it("starts the Ollama-only listener next to the main one, and stops it with the server", async () => {
    const lines: Array<string> = []
    const console = {
      ...globalThis.console,
      [Console.TypeId]: Console.TypeId,
      unsafe: globalThis.console,
      log: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void lines.push(args.join(" "))),
      error: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void lines.push(args.join(" ")))
    } as unknown as Console.Console
    const run = Command.run(serveCommand, { name: "shimmy", version: "test" })
    const fiber = Effect.runFork(
      run([
        "node",
        "shimmy",
        "--bind",
        "127.0.0.1:0",
        "--ollama-port",
        "0",
        "--model-dirs",
        modelsDir,
        "--threads",
        "1"
      ])
        .pipe(Effect.withConsole(console), Effect.provide(NodeContext.layer))
    )
    let url: string | undefined
    for (let i = 0; i < 400 && url === undefined; i++) {
      url = /Ollama API alone: (http:\/\/\S+)/.exec(lines.join("\n"))?.[1]
      if (url === undefined) await pause(25)
    }
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(lines.join("\n")).toMatch(/Ollama API: http:\/\/127\.0\.0\.1:\d+\/ollama/)
    expect(await (await fetch(`${url}/`)).text()).toBe("Ollama is running")
    const { models } = await new Ollama({ host: url! }).list()
    expect(models.map((m) => m.name)).toContain("stories260K:latest")
    await Effect.runPromise(Fiber.interrupt(fiber))
    expect(await fetch(`${url}/`).then(() => "up", () => "down")).toBe("down")
  }, 60_000)
})
