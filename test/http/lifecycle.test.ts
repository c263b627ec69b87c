import { Schema } from "effect"
import * as fs from "node:fs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import * as ModelsApi from "../../src/domain/ModelsApi.js"
import * as SeedApi from "../../src/domain/SeedApi.js"
import { freshDir } from "../support/env.js"
import {
  counter,
  eventually,
  expectSettled,
  generate,
  getJson,
  loadedNames,
  modelsIn,
  openStream,
  postJson
} from "../support/lifecycle.js"
import { type RunningServer, startServer } from "../support/server.js"

/**
 * Models in memory through Shimmy's own endpoints, over real sockets with fetch and `ws`:
 * `GET /api/models/loaded`, `POST /api/models/load` and `/api/models/unload` (and llama-server's
 * router-mode `/models/load`, `/models/unload`), a per-request `keep_alive` on `/api/generate`
 * and the WebSocket, health while a model loads, and one load for concurrent first requests.
 * Each case ends with nothing busy, queued or waiting (no leaked sequences).
 */

let server: RunningServer & { readonly close: () => Promise<void> }
let dir: string
let base: string

beforeAll(async () => {
  dir = freshDir("lifecycle")
  modelsIn(dir, { tiny: "stories260K.gguf", random: "llama-2-tiny-random.gguf", q8: "TinyStories-656K-Q8_0.gguf" }, [
    "slow",
    "slow2",
    "slow3"
  ])
  server = await startServer({ modelPaths: [dir], parallel: 2 })
  base = server.url
}, 60_000)

// the wire Schemas describe what is sent, strictly (no field they do not know)
const strictly = <A, I>(schema: Schema.Schema<A, I>, value: unknown) =>
  Schema.decodeUnknownSync(schema, { onExcessProperty: "error" })(value)

afterAll(async () => {
  await server?.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

describe("load, list, unload", () => {
  it("loads a model, lists it with its memory, context, load time, expiry, sequences and last use, and unloads it", async () => {
    expect(await loadedNames(base)).not.toContain("tiny")
    const loaded = await postJson(`${base}/api/models/load`, { model: "tiny" })
    expect(loaded.status).toBe(200)
    expect(loaded.body).toMatchObject({ id: "tiny", status: "loaded", already_loaded: false, context_size: 2048 })
    expect(loaded.body.load_ms).toBeGreaterThanOrEqual(0)
    // SHIMMY_KEEP_ALIVE left infinite: it never expires
    expect(loaded.body.expires_at).toBeNull()
    strictly(ModelsApi.LoadResponse, loaded.body)

    const { body } = await getJson(`${base}/api/models/loaded`)
    strictly(ModelsApi.LoadedResponse, body)
    strictly(SeedApi.HealthResponse, (await getJson(`${base}/api/health`)).body)
    strictly(SeedApi.ModelsResponse, (await getJson(`${base}/api/models`)).body)
    const entry = body.models.find((m: { id: string }) => m.id === "tiny")
    expect(entry).toMatchObject({
      id: "tiny",
      vram_bytes: 0,
      context_size: 2048,
      load_ms: loaded.body.load_ms,
      in_use: false,
      expires_at: null,
      sequences: { total: 2, busy: 0, queued: 0 }
    })
    expect(entry.size_bytes).toBeGreaterThan(1_000_000)
    expect(Date.parse(entry.loaded_at)).toBeLessThanOrEqual(Date.now())
    expect(Date.parse(entry.last_used)).toBeGreaterThanOrEqual(Date.parse(entry.loaded_at))
    expect(body.slots).toEqual({ max: null, used: expect.any(Number), waiting: 0 })

    // loading again finds it in memory: the same load, not a second one
    const loads = await counter(base, "shimmy_model_loads_total", "tiny")
    const again = await postJson(`${base}/api/models/load`, { model: "tiny", keep_alive: "10m" })
    expect(again.body).toMatchObject({ already_loaded: true, load_ms: loaded.body.load_ms })
    expect(Date.parse(again.body.expires_at) - Date.now()).toBeGreaterThan(9 * 60_000)
    expect(await counter(base, "shimmy_model_loads_total", "tiny")).toBe(loads)

    const models = (await getJson(`${base}/api/models`)).body.models
    expect(models.find((m: { id: string }) => m.id === "tiny")).toMatchObject({ loaded: true, loading: false })

    const unloaded = await postJson(`${base}/api/models/unload`, { model: "tiny" })
    expect(unloaded).toMatchObject({ status: 200, body: { id: "tiny", status: "unloaded" } })
    strictly(ModelsApi.UnloadResponse, unloaded.body)
    expect(await loadedNames(base)).not.toContain("tiny")
    expect((await getJson(`${base}/api/health`)).body.loaded_models).not.toContain("tiny")
    const twice = await postJson(`${base}/api/models/unload`, { model: "tiny" })
    expect(twice.body).toEqual({ id: "tiny", status: "not_loaded" })

    // it loads again on the next request
    expect((await generate(base, "tiny")).status).toBe(200)
    expect(await counter(base, "shimmy_model_loads_total", "tiny")).toBe(loads + 1)
    await postJson(`${base}/api/models/unload`, { model: "tiny" })
    await expectSettled(base)
  })

  it("answers llama-server's router-mode /models/load and /models/unload", async () => {
    const routed = await postJson(`${base}/models/load`, { model: "random" })
    expect(routed).toMatchObject({ status: 200, body: { success: true } })
    strictly(ModelsApi.RouterResponse, routed.body)
    expect(await loadedNames(base)).toContain("random")
    expect(await postJson(`${base}/models/unload`, { model: "random" })).toMatchObject({
      status: 200,
      body: { success: true }
    })
    expect(await loadedNames(base)).not.toContain("random")
    const unknown = await postJson(`${base}/models/load`, { model: "nope" })
    expect(unknown.status).toBe(404)
    expect(unknown.body.error.code).toBe("model_not_found")
    await expectSettled(base)
  })

  it.each([
    ["an unknown model", "/api/models/load", { model: "no-such-model" }, 404, "model_not_found", undefined],
    ["an unknown model", "/api/models/unload", { model: "no-such-model" }, 404, "model_not_found", undefined],
    ["no model", "/api/models/load", {}, 400, "invalid_request", "model"],
    ["an empty model", "/api/models/unload", { model: "" }, 400, "invalid_request", "model"],
    [
      "a keep_alive that is no duration",
      "/api/models/load",
      { model: "tiny", keep_alive: "5 parsecs" },
      400,
      "invalid_request",
      "keep_alive"
    ],
    [
      "a keep_alive of the wrong type",
      "/api/models/load",
      { model: "tiny", keep_alive: true },
      400,
      "invalid_request",
      "keep_alive"
    ],
    [
      "keep_alive 0 on a load",
      "/api/models/load",
      { model: "tiny", keep_alive: 0 },
      400,
      "invalid_request",
      "keep_alive"
    ]
  ])("refuses %s on %s with a clear error", async (_what, path, body, status, code, param) => {
    const reply = await postJson(`${base}${path}`, body)
    expect(reply.status).toBe(status)
    expect(reply.body.error).toMatchObject({ code, message: expect.any(String), details: expect.any(String) })
    if (param !== undefined) expect(reply.body.error.details).toContain(param)
    expect(await loadedNames(base)).not.toContain("tiny")
  })

  it("refuses a body that is not JSON", async () => {
    const response = await fetch(`${base}/api/models/load`, { method: "POST", body: "{not json" })
    expect(response.status).toBe(400)
    expect(((await response.json()) as any).error.code).toBe("invalid_request")
  })
})

describe("unload while in use", () => {
  it("lets a running stream finish, then the model leaves memory", async () => {
    // 500 tokens of the synthetic model take seconds; the unload is asked after the first
    const stream = await openStream(base, "slow", 500)
    const unloading = await postJson(`${base}/api/models/unload`, { model: "slow" })
    expect(unloading.body).toEqual({ id: "slow", status: "unloading" })
    const during = (await getJson(`${base}/api/models/loaded`)).body.models.find((m: { id: string }) => m.id === "slow")
    expect(during).toMatchObject({ in_use: true, sequences: { busy: 1 } })

    const rest = await stream.rest()
    expect(rest.at(-1)).toBe("[DONE]")
    const last = JSON.parse(rest.at(-2)!)
    // never cut short: it ran to its max_tokens
    expect(last.choices[0].finish_reason).toBe("length")
    expect(last.usage.completion_tokens).toBe(500)
    expect(await eventually(async () => !(await loadedNames(base)).includes("slow"))).toBe(true)
    await expectSettled(base)
  })
})

describe("per-request keep_alive on /api/generate and the WebSocket", () => {
  it("0 unloads the model once the answer is complete; a duration sets its expiry; -1 keeps it", async () => {
    const kept = await generate(base, "tiny", { keep_alive: "5m" })
    expect(kept.status).toBe(200)
    const listed = (await getJson(`${base}/api/models/loaded`)).body.models.find((m: { id: string }) => m.id === "tiny")
    const expires = Date.parse(listed.expires_at) - Date.now()
    expect(expires).toBeGreaterThan(4 * 60_000)
    expect(expires).toBeLessThanOrEqual(5 * 60_000)

    expect((await generate(base, "tiny", { keep_alive: -1 })).status).toBe(200)
    const forever = (await getJson(`${base}/api/models/loaded`)).body.models.find((m: { id: string }) =>
      m.id === "tiny"
    )
    expect(forever.expires_at).toBeNull()

    const last = await generate(base, "tiny", { keep_alive: 0 })
    expect(last.status).toBe(200)
    expect(last.body.usage.completion_tokens).toBeGreaterThan(0)
    // a JSON answer is complete once generated: the model has left before it is sent
    expect(await loadedNames(base)).not.toContain("tiny")

    // seconds as text, as Ollama takes them
    expect((await generate(base, "tiny", { keep_alive: "120" })).status).toBe(200)
    const seconds = (await getJson(`${base}/api/models/loaded`)).body.models.find((m: { id: string }) =>
      m.id === "tiny"
    )
    expect(Date.parse(seconds.expires_at) - Date.now()).toBeGreaterThan(100_000)
    await postJson(`${base}/api/models/unload`, { model: "tiny" })
    await expectSettled(base)
  })

  it("0 on a stream unloads the model after its last event", async () => {
    const response = await fetch(`${base}/api/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "random", prompt: "Hello", max_tokens: 4, stream: true, keep_alive: "0s" })
    })
    expect(response.status).toBe(200)
    expect(await response.text()).toContain("[DONE]")
    expect(await eventually(async () => !(await loadedNames(base)).includes("random"))).toBe(true)
    await expectSettled(base)
  })

  it("refuses a keep_alive that is no duration, before anything loads", async () => {
    const reply = await generate(base, "tiny", { keep_alive: "soon" })
    expect(reply.status).toBe(400)
    expect(reply.body.error).toMatchObject({ code: "invalid_request" })
    expect(reply.body.error.details).toContain("keep_alive")
    expect(await loadedNames(base)).not.toContain("tiny")
  })

  it("takes keep_alive on /ws/generate: 0 unloads after the done frame, a bad one is an error frame", async () => {
    const frames = await new Promise<Array<any>>((resolve, reject) => {
      const socket = new WebSocket(`${server.wsUrl}/ws/generate`)
      const seen: Array<any> = []
      socket.on(
        "open",
        () => socket.send(JSON.stringify({ model: "random", prompt: "Hello", max_tokens: 3, keep_alive: 0 }))
      )
      socket.on("message", (data) => {
        const frame = JSON.parse(String(data))
        seen.push(frame)
        if (frame.done === true || frame.error !== undefined) {
          socket.close()
          resolve(seen)
        }
      })
      socket.on("error", reject)
    })
    expect(frames.at(-1)).toMatchObject({ done: true, usage: { completion_tokens: expect.any(Number) } })
    expect(await eventually(async () => !(await loadedNames(base)).includes("random"))).toBe(true)

    const refused = await new Promise<any>((resolve, reject) => {
      const socket = new WebSocket(`${server.wsUrl}/ws/generate`)
      socket.on("open", () => socket.send(JSON.stringify({ model: "random", prompt: "Hello", keep_alive: "later" })))
      socket.on("message", (data) => {
        socket.close()
        resolve(JSON.parse(String(data)))
      })
      socket.on("error", reject)
    })
    expect(refused.error).toMatchObject({ code: "invalid_request" })
    expect(refused.error.details).toContain("keep_alive")
    await expectSettled(base)
  })
})

describe("loading", () => {
  it("health and the lists say a model is loading, which and since when, while a first request loads it", async () => {
    const seen: Array<any> = []
    let listedLoading = false
    let done = false
    const request = generate(base, "slow2").finally(() => {
      done = true
    })
    // polled for as long as the request runs: its load (a probe in a child process, then 27 MB
    // of weights) is long against a request to /api/health
    while (!done) {
      const health = (await getJson(`${base}/api/health`)).body
      if (health.loading.length > 0) {
        seen.push(health.loading)
        const loaded = (await getJson(`${base}/api/models/loaded`)).body
        const models = (await getJson(`${base}/api/models`)).body.models
        if (
          loaded.loading.some((l: { id: string }) => l.id === "slow2") &&
          models.some((m: { id: string; loading: boolean }) => m.id === "slow2" && m.loading)
        ) listedLoading = true
      }
    }
    const reply = await request
    expect(reply.status).toBe(200)
    expect(seen.length).toBeGreaterThan(0)
    const first = seen[0][0]
    expect(first.model).toBe("slow2")
    expect(Date.parse(first.since)).toBeLessThanOrEqual(Date.now())
    expect(first.elapsed_ms).toBeGreaterThanOrEqual(0)
    expect(listedLoading).toBe(true)
    const after = (await getJson(`${base}/api/health`)).body
    expect(after.loading).toEqual([])
    expect(after.loaded_models).toContain("slow2")
    await postJson(`${base}/api/models/unload`, { model: "slow2" })
    await expectSettled(base)
  })

  it("two concurrent first requests for a model share one load", async () => {
    expect(await loadedNames(base)).not.toContain("slow3")
    const before = await counter(base, "shimmy_model_loads_total", "slow3")
    const [a, b, c] = await Promise.all([
      generate(base, "slow3"),
      generate(base, "slow3"),
      postJson(`${base}/api/models/load`, { model: "slow3" })
    ])
    expect([a.status, b.status, c.status]).toEqual([200, 200, 200])
    expect(await counter(base, "shimmy_model_loads_total", "slow3")).toBe(before + 1)
    await postJson(`${base}/api/models/unload`, { model: "slow3" })
    await expectSettled(base)
  })
})
