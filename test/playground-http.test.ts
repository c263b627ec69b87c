import { Option, Redacted } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import * as zlib from "node:zlib"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildPlayground, PLAYGROUND_DIR } from "./support/browser.js"
import { hermetic } from "./support/env.js"
import { SHARED_MODELS } from "./support/models.js"
import { type RunningServer, startServer } from "./support/server.js"

/**
 * The playground's server side over real sockets, without a browser: the page's own requests pass
 * the guard (same origin from a loopback Host or the bound address) while a DNS-rebinding page's
 * do not, `GET /` is negotiated by `Accept` (the Ollama-only port keeps Ollama's answer), the
 * page loads without the API key, and the built page stays within its size budget.
 */

type Started = RunningServer & { readonly close: () => Promise<void> }

const MODELS = [path.join(SHARED_MODELS, "stories260K.gguf")]

/** A request with exactly these headers (fetch will not send a chosen `Host`). */
const raw = (
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; path?: string }
) =>
  new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const target = new URL(options.path ?? "/", url)
    const request = http.request(target, { method: options.method ?? "GET", headers: options.headers ?? {} }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (chunk) => (body += chunk))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    request.on("error", reject)
    request.end(options.body)
  })

/** The page's kind of request: a JSON POST with `Origin` and `Host` as a browser would send them. */
const post = (url: string, host: string, origin: string) =>
  raw(url, {
    method: "POST",
    path: "/v1/chat/completions",
    headers: { host, origin, "content-type": "application/json" },
    body: JSON.stringify({ model: "stories260K", messages: [{ role: "user", content: "Hi" }], max_tokens: 2 })
  })

describe("same-origin requests from the page", () => {
  let server: Started
  let port: number
  beforeAll(async () => {
    server = await startServer({ modelPaths: MODELS, threads: 1 })
    port = server.port
  })
  afterAll(() => server?.close())

  it("pass from a loopback Host, without CORS headers", async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
      const answer = await post(server.url, host, `http://${host}`)
      expect(answer.status, host).toBe(200)
      expect(JSON.parse(answer.body).choices[0].message.role).toBe("assistant")
      expect(answer.headers["access-control-allow-origin"]).toBeUndefined()
    }
  })

  it("are refused from a DNS-rebinding page (its own name as Host and Origin)", async () => {
    const answer = await post(server.url, `evil.example:${port}`, `http://evil.example:${port}`)
    expect(answer.status).toBe(403)
    expect(JSON.parse(answer.body).error.message).toMatch(/evil\.example/)
    expect(answer.headers["access-control-allow-origin"]).toBeUndefined()
  })

  it("are refused when Origin and Host differ (another site, another port, another scheme)", async () => {
    for (
      const origin of [
        `http://evil.example:${port}`,
        `http://127.0.0.1:${port + 1}`,
        `https://127.0.0.1:${port}`,
        "null"
      ]
    ) {
      const answer = await post(server.url, `127.0.0.1:${port}`, origin)
      expect(answer.status, origin).toBe(403)
    }
  })
})

describe("same origin on the bound address", () => {
  // 127.0.0.2 is this machine (all of 127/8 is) but not among the loopback names the guard knows:
  // only the rule for the exact bound address lets it through
  let server: Started
  beforeAll(async () => {
    server = await startServer({ modelPaths: MODELS, threads: 1 }, {}, { host: "127.0.0.2" })
  })
  afterAll(() => server?.close())

  it("passes when Host is the address and port the connection arrived on, and only then", async () => {
    const host = `127.0.0.2:${server.port}`
    expect((await post(server.url, host, `http://${host}`)).status).toBe(200)
    const other = `127.0.0.3:${server.port}`
    expect((await post(server.url, other, `http://${other}`)).status).toBe(403)
    const name = `rebound.example:${server.port}`
    expect((await post(server.url, name, `http://${name}`)).status).toBe(403)
  })
})

describe("same origin on a dual-stack listener", () => {
  // bound to `::`, an IPv4 connection arrives on ::ffff:127.0.0.2, and its Host names 127.0.0.2
  let server: Started
  beforeAll(async () => {
    server = await startServer({ modelPaths: MODELS, threads: 1 }, {}, { host: "::" })
  })
  afterAll(() => server?.close())

  it("takes the IPv4 address the connection arrived on as the bound address", async () => {
    const url = `http://127.0.0.2:${server.port}`
    const host = `127.0.0.2:${server.port}`
    expect((await post(url, host, `http://${host}`)).status).toBe(200)
    const name = `rebound.example:${server.port}`
    expect((await post(url, name, `http://${name}`)).status).toBe(403)
  })
})

describe("GET /", () => {
  let server: Started
  beforeAll(async () => {
    await buildPlayground()
    server = await startServer({ modelPaths: MODELS, threads: 1 }, {}, { ollama: true })
  })
  afterAll(() => server?.close())

  it("gives a browser the page and everything else Ollama's answer; the Ollama-only port only that", async () => {
    const page = await raw(server.url, { headers: { accept: "text/html,*/*;q=0.8" } })
    expect(page.status).toBe(200)
    expect(page.headers["content-type"]).toMatch(/^text\/html/)
    expect(page.body).toContain("<title>Shimmy playground</title>")
    for (const accept of [undefined, "*/*", "application/json"]) {
      const other = await raw(server.url, { headers: accept === undefined ? {} : { accept } })
      expect(other.body, String(accept)).toBe("Ollama is running")
      expect(other.headers["vary"]).toContain("Accept")
    }
    const ollama = await raw(server.ollamaUrl!, { headers: { accept: "text/html" } })
    expect(ollama.body).toBe("Ollama is running")
    expect((await raw(server.ollamaUrl!, { path: "/playground/app.js" })).status).toBe(404)
  })

  it("serves the script and style with their types and the policy; nothing else under /playground", async () => {
    const script = await raw(server.url, { path: "/playground/app.js" })
    expect(script.status).toBe(200)
    expect(script.headers["content-type"]).toBe("text/javascript; charset=utf-8")
    expect(script.headers["x-content-type-options"]).toBe("nosniff")
    expect(script.headers["content-security-policy"]).toContain("default-src 'none'")
    const style = await raw(server.url, { path: "/playground/app.css" })
    expect(style.headers["content-type"]).toBe("text/css; charset=utf-8")
    for (const p of ["/playground/index.html", "/playground/../package.json", "/playground/app.js.map"]) {
      expect((await raw(server.url, { path: p })).status, p).toBe(404)
    }
  })

  it("the built page is within 200 KB gzipped and names nothing outside this server", async () => {
    let gzipped = 0
    for (const name of ["index.html", "app.js", "app.css"]) {
      const text = await fs.readFile(path.join(PLAYGROUND_DIR, name))
      gzipped += zlib.gzipSync(text, { level: 9 }).length
      // no CDN, no fonts, no analytics: the only URLs are the page's own
      expect(text.toString("utf8"), name).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//)
    }
    expect(gzipped).toBeGreaterThan(1_000)
    expect(gzipped).toBeLessThan(200 * 1024)
  })
})

describe("with an API key", () => {
  let server: Started
  beforeAll(async () => {
    await buildPlayground()
    server = await startServer({ modelPaths: MODELS, threads: 1 }, { apiKey: Option.some(Redacted.make("sesame")) })
  })
  afterAll(() => server?.close())

  it("the page and its files load without the key; the API and Ollama's root still need it", async () => {
    expect((await raw(server.url, { headers: { accept: "text/html" } })).status).toBe(200)
    expect((await raw(server.url, { path: "/playground/app.js" })).status).toBe(200)
    expect((await raw(server.url, { path: "/playground/app.css" })).status).toBe(200)
    expect((await raw(server.url, {})).status).toBe(401)
    expect((await raw(server.url, { path: "/v1/models", headers: { accept: "text/html" } })).status).toBe(401)
    const keyed = await raw(server.url, { path: "/v1/models", headers: { authorization: "Bearer sesame" } })
    expect(keyed.status).toBe(200)
  })
})

describe("the CLI bundle (npm run build first)", () => {
  it("serves the page from inside dist/cli/shimmy.js, with no dist/playground beside it", async () => {
    const root = path.resolve(PLAYGROUND_DIR, "../..")
    const built = path.join(root, "dist/cli/shimmy.js")
    expect(await fs.stat(built).then(() => true, () => false), "run `npm run build` first").toBe(true)
    // the bundle alone, in a tree of its own: only node-llama-cpp (external) comes from node_modules
    const { cwd, env } = hermetic("playground")
    const copy = await fs.mkdtemp(path.join(os.tmpdir(), "shimmy-playground-bundle-"))
    await fs.mkdir(path.join(copy, "dist/cli"), { recursive: true })
    await fs.copyFile(built, path.join(copy, "dist/cli/shimmy.js"))
    await fs.symlink(path.join(root, "node_modules"), path.join(copy, "node_modules"))
    const child = spawn(process.execPath, [
      path.join(copy, "dist/cli/shimmy.js"),
      "serve",
      "--bind",
      "127.0.0.1:0",
      "--model-dirs",
      MODELS[0]!
    ], { cwd, env, stdio: ["ignore", "pipe", "pipe"] })
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let output = ""
        child.stdout!.on("data", (d: Buffer) => {
          output += d.toString()
          const found = /listening on (http:\/\/\S+)/.exec(output)?.[1]
          if (found !== undefined) resolve(found)
        })
        child.stderr!.on("data", (d: Buffer) => (output += d.toString()))
        child.once("exit", (code) => reject(new Error(`shimmy serve exited (${code}) before listening:\n${output}`)))
      })
      const page = await raw(url, { headers: { accept: "text/html" } })
      expect(page.status).toBe(200)
      expect(page.body === await fs.readFile(path.join(PLAYGROUND_DIR, "index.html"), "utf8")).toBe(true)
      const script = await raw(url, { path: "/playground/app.js" })
      expect(script.status).toBe(200)
      // compared without a diff of two large strings
      expect(script.body === await fs.readFile(path.join(PLAYGROUND_DIR, "app.js"), "utf8"), "rebuild: npm run build")
        .toBe(true)
    } finally {
      child.kill("SIGKILL")
      await fs.rm(copy, { recursive: true, force: true })
    }
  })
})
