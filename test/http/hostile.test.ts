import { Duration, Option, Redacted } from "effect"
import { spawnSync } from "node:child_process"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { exposeCollector } from "../../src/services/NativeGarbage.js"
import { postJson } from "../support/clients.js"
import { hermetic } from "../support/env.js"
import { SHARED_MODELS } from "../support/models.js"
import { type RunningServer, startServer } from "../support/server.js"

/**
 * Client mistakes that used to crash a handler (500) or echo too much: prototype-named fields,
 * nesting deep enough to overflow the stack, a huge wrong-typed value, WebSocket handshakes that
 * are not handshakes. Each gets a 4xx in the path's own error format.
 */

let server: RunningServer & { readonly close: () => Promise<void> }
let keyed: RunningServer & { readonly close: () => Promise<void> }
beforeAll(async () => {
  server = await startServer({}, { bodyTimeout: Duration.millis(500) })
  keyed = await startServer({}, { apiKey: Option.some(Redacted.make("sesame")) })
})
afterAll(async () => {
  await server.close()
  await keyed.close()
})

const chat = { model: "stories260K", messages: [{ role: "user", content: "hi" }], max_tokens: 2 }
const deep = (n: number) => "[".repeat(n) + "]".repeat(n)

/** A raw HTTP/1.1 exchange, so headers can be what no client library would send. */
const raw = (port: number, request: string) =>
  new Promise<string>((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(request))
    let answer = ""
    socket.on("data", (d) => {
      answer += d.toString()
      if (/\r\n\r\n[\s\S]*\}$/.test(answer)) socket.end()
    })
    socket.on("end", () => resolve(answer))
    socket.on("error", reject)
    setTimeout(() => socket.destroy(new Error(`no full answer: ${answer}`)), 5000)
  })

describe("hostile requests", () => {
  it("prototype-named fields are refused by name on every /v1 endpoint; the seed API ignores them", async () => {
    for (const key of ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"]) {
      for (
        const [endpoint, body] of [
          ["/v1/chat/completions", chat],
          ["/v1/completions", { model: "stories260K", prompt: "hi", max_tokens: 2 }],
          ["/v1/embeddings", { model: "stories260K", input: "hi" }]
        ] as const
      ) {
        const text = JSON.stringify(body).replace(/^\{/, `{${JSON.stringify(key)}:1,`)
        const answer = await postJson(`${server.url}${endpoint}`, text)
        expect(answer.status, `${endpoint} ${key}`).toBe(400)
        expect(answer.body.error).toMatchObject({ param: key, code: "invalid_request", type: "invalid_request_error" })
      }
      const seed = await postJson(
        `${server.url}/api/generate`,
        `{"${key}":1,"model":"stories260K","prompt":"Once","max_tokens":2}`
      )
      expect(seed.status).toBe(200)
    }
  })

  it("nesting thousands deep anywhere is a 400, never a stack overflow", async () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["/api/generate", `{"model":"stories260K","prompt":${deep(5000)}}`],
      ["/api/generate", `{"model":"stories260K","prompt":"x","stop":${deep(100_000)}}`],
      ["/v1/chat/completions", `{"model":"stories260K","messages":${deep(5000)}}`],
      ["/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":${deep(3000)}}]}`],
      [
        "/v1/chat/completions",
        `{"model":"stories260K","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"schema":${
          "{\"items\":".repeat(3000)
        }{}${"}".repeat(3000)}}}}`
      ]
    ]
    for (const [endpoint, body] of cases) {
      const answer = await postJson(`${server.url}${endpoint}`, body)
      expect(answer.status, endpoint).toBe(400)
      const message = endpoint.startsWith("/v1") ? answer.body.error.message : answer.body.error.details
      expect(message).toMatch(/deeper than 128 levels/)
    }
  })

  it("a huge wrong-typed value is not echoed back whole", async () => {
    const answer = await postJson(
      `${server.url}/api/generate`,
      `{"model":"stories260K","prompt":[${"1,".repeat(150_000)}1]}`
    )
    expect(answer.status).toBe(400)
    expect(answer.body.error.details).toMatch(/^'prompt': Expected string/)
    expect(JSON.stringify(answer.body).length).toBeLessThan(1000)
  })

  it("unknown /v1 paths, /v1 itself included, answer 404 in OpenAI's shape", async () => {
    for (const p of ["/v1", "/v1/", "/v1/nothing/at/all"]) {
      const response = await fetch(`${server.url}${p}`)
      expect(response.status, p).toBe(404)
      expect(await response.json()).toMatchObject({ error: { code: "not_found", type: "invalid_request_error" } })
    }
  })

  it("WebSocket handshakes that are not ones get a 4xx error body, and the server still serves", async () => {
    const get = (headers: string) => `GET /ws/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`
    const cases = [
      ["Upgrade: websocket\r\nConnection: keep-alive\r\n", 426],
      ["Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", 400],
      [
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 99\r\n",
        400
      ]
    ] as const
    for (const [headers, status] of cases) {
      const answer = await raw(server.port, get(headers))
      expect(answer, headers).toMatch(new RegExp(`^HTTP/1.1 ${status} `))
      expect(answer).toMatch(/content-type: application\/json/i)
      expect(JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4))).toMatchObject({
        error: { code: "invalid_request" }
      })
    }
    expect(
      (await postJson(`${server.url}/api/generate`, { model: "stories260K", prompt: "Once", max_tokens: 2 })).status
    ).toBe(200)
  })

  it("Expect: 100-continue with a body over the limit gets its 413 instead of 100 Continue", async () => {
    const ask = (p: string, length: number) =>
      raw(
        server.port,
        `POST ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\n\r\n`
      )
    for (
      const [p, shape] of [["/api/generate", { code: "request_too_large" }], ["/v1/completions", {
        code: "request_too_large",
        type: "invalid_request_error"
      }]] as const
    ) {
      const answer = await ask(p, 2 * 1024 * 1024)
      expect(answer, p).toMatch(/^HTTP\/1.1 413 /)
      expect(answer).not.toMatch(/100 Continue/)
      expect(JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4))).toMatchObject({ error: shape })
    }
    // within the limit it continues and the request is answered
    const body = JSON.stringify({ model: "stories260K", prompt: "Once", max_tokens: 2 })
    const continued = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(server.port, "127.0.0.1", () =>
        socket.write(
          `POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`
        ))
      let answer = ""
      let sent = false
      socket.on("data", (d) => {
        answer += d.toString()
        // the body goes only once the server said to continue
        if (!sent && answer.startsWith("HTTP/1.1 100")) {
          sent = true
          socket.write(body)
        }
      })
      socket.on("end", () => resolve(answer))
      socket.on("error", reject)
    })
    expect(continued).toMatch(/^HTTP\/1.1 100 Continue/)
    expect(continued).toMatch(/HTTP\/1.1 200 OK/)
  })

  it("a body that never ends is cut at the deadline with a 408 in the path's format", async () => {
    for (
      const [p, shape] of [["/api/generate", { code: "request_timeout" }], ["/v1/completions", {
        code: "request_timeout",
        type: "invalid_request_error"
      }]] as const
    ) {
      const started = performance.now()
      // chunked, one chunk, then silence
      const answer = await raw(
        server.port,
        `POST ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"mod\r\n`
      )
      expect(answer, p).toMatch(/^HTTP\/1.1 408 /)
      expect(JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4))).toMatchObject({ error: shape })
      expect(performance.now() - started).toBeLessThan(3000)
    }
  })

  it("an upgrade to anything but a WebSocket (curl --http2's h2c) is refused clearly, not read as an empty body", async () => {
    const body = JSON.stringify({ model: "stories260K", prompt: "Once", max_tokens: 2 })
    const answer = await raw(
      server.port,
      `POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`
    )
    expect(answer).toMatch(/^HTTP\/1.1 400 /)
    expect(JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)).error.details).toMatch(
      /'Upgrade: h2c' is not supported/
    )
  })

  it("5,000 rejected WebSocket upgrades keep nothing: the heap stays where it was", async () => {
    const handshakes = [
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 99\r\n",
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    ]
    const rejected = (i: number) =>
      new Promise<void>((resolve) => {
        const socket = net.connect(server.port, "127.0.0.1", () =>
          socket.write(`GET /ws/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n${handshakes[i % 2]}\r\n`))
        socket.on("data", () =>
          socket.end())
        socket.on("close", () =>
          resolve())
        socket.on("error", () => resolve())
      })
    const gc = exposeCollector()
    expect(gc).toBeDefined()
    const heap = async () => {
      for (let i = 0; i < 3; i++) await gc!({ type: "major", execution: "async" })
      return process.memoryUsage().heapUsed
    }
    // warm-up: lazily created module state is not a leak
    for (let i = 0; i < 200; i++) await rejected(i)
    const before = await heap()
    for (let round = 0; round < 50; round++) await Promise.all(Array.from({ length: 100 }, (_, i) => rejected(i)))
    const grown = (await heap()) - before
    // each rejected upgrade used to keep ~71 KB (5,000: ~350 MB)
    expect(grown).toBeLessThan(16 * 1024 * 1024)
    expect(
      (await postJson(`${server.url}/api/generate`, { model: "stories260K", prompt: "Once", max_tokens: 2 })).status
    ).toBe(200)
  }, 60_000)

  it("with an API key, /api/health tells a caller without it only the status", async () => {
    const anonymous = await (await fetch(`${keyed.url}/api/health`)).json()
    expect(anonymous).toEqual({ status: "healthy" })
    const wrong = await (await fetch(`${keyed.url}/api/health`, { headers: { "x-api-key": "" } })).json()
    expect(wrong).toEqual({ status: "healthy" })
    const known: any = await (await fetch(`${keyed.url}/api/health`, { headers: { authorization: "Bearer sesame" } }))
      .json()
    expect(known.sequences).toBeDefined()
    expect(known.loaded_models).toBeDefined()
    // an empty key header is no key
    expect(
      (await postJson(`${keyed.url}/api/generate`, { model: "stories260K", prompt: "x" }, {
        headers: { "x-api-key": "" }
      })).status
    )
      .toBe(401)
  })
})

describe("an empty API key", () => {
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "shimmy.js")
  it("is refused at start-up, from the flag and from the environment", () => {
    for (const [args, env] of [[["--api-key", ""]], [["--api-key", "   "]], [[], { SHIMMY_API_KEY: " " }]] as const) {
      const { cwd, env: clean } = hermetic("api-key", { SHIMMY_MODEL_PATHS: SHARED_MODELS, ...env })
      const result = spawnSync(process.execPath, [bin, "serve", "--bind", "127.0.0.1:0", ...args], {
        cwd,
        env: clean,
        encoding: "utf8",
        timeout: 30_000
      })
      expect(result.status, JSON.stringify(args)).toBe(1)
      expect(result.stdout).not.toMatch(/listening/)
      expect(result.stdout + result.stderr).toMatch(/API_KEY is empty|--api-key is empty/)
    }
  })
})
