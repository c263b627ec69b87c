import * as fs from "node:fs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
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
 * SHIMMY_MAX_LOADED_MODELS over real sockets: loading one model more than the limit evicts the
 * least recently used idle model, never one in use; a request that needs a slot while every model
 * in memory is in use waits and proceeds once one is idle, and past the queue's limit gets 503 in
 * its dialect's format; two requests for two new models at once both get answered. `slow` is a
 * synthetic model whose streams run for seconds: it is the model kept in use.
 */

let dir: string
type Server = RunningServer & { readonly close: () => Promise<void> }
let one: Server
let two: Server

beforeAll(async () => {
  dir = freshDir("max-loaded")
  modelsIn(dir, { tiny: "stories260K.gguf", random: "llama-2-tiny-random.gguf", q8: "TinyStories-656K-Q8_0.gguf" }, [
    "slow"
  ])
  one = await startServer({ modelPaths: [dir], parallel: 2, maxLoadedModels: 1, maxQueue: 2 })
  two = await startServer({ modelPaths: [dir], parallel: 2, maxLoadedModels: 2, maxQueue: 8 })
}, 60_000)

afterAll(async () => {
  await one?.close()
  await two?.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

const loadedGauge = async (base: string) => {
  const text = await (await fetch(`${base}/metrics`)).text()
  return Number(text.split("\n").find((l) => l.startsWith("shimmy_models_loaded "))?.split(" ")[1])
}

describe("SHIMMY_MAX_LOADED_MODELS=1", () => {
  it("loading a second model evicts the idle first one", async () => {
    const base = one.url
    expect((await generate(base, "tiny")).status).toBe(200)
    expect(await loadedNames(base)).toEqual(["tiny"])
    const evictions = await counter(base, "shimmy_model_evictions_total", "tiny")
    expect((await generate(base, "random")).status).toBe(200)
    expect(await loadedNames(base)).toEqual(["random"])
    expect(await counter(base, "shimmy_model_evictions_total", "tiny")).toBe(evictions + 1)
    expect(await loadedGauge(base)).toBe(1)
    expect((await getJson(`${base}/api/health`)).body.model_slots).toEqual({ max: 1, used: 1, waiting: 0 })
    // an evicted model loads again when asked for: a second load, and the other one evicted
    const loads = await counter(base, "shimmy_model_loads_total", "tiny")
    expect((await generate(base, "tiny")).status).toBe(200)
    expect(await counter(base, "shimmy_model_loads_total", "tiny")).toBe(loads + 1)
    expect(await counter(base, "shimmy_model_evictions_total", "random")).toBe(1)
    expect(await loadedNames(base)).toEqual(["tiny"])
    expect(await loadedGauge(base)).toBe(1)
    await expectSettled(base)
  })

  it("never evicts a model in use: a request for another waits until its stream ends, then proceeds", async () => {
    const base = one.url
    const stream = await openStream(base, "slow", 400)
    expect(await loadedNames(base)).toEqual(["slow"])
    let answeredAt = 0
    const waiting = generate(base, "tiny").then((reply) => {
      answeredAt = Date.now()
      return reply
    })
    expect(
      await eventually(async () => (await getJson(`${base}/api/health`)).body.model_slots.waiting === 1)
    ).toBe(true)
    // still the busy one in memory, the waiting request unanswered
    expect(await loadedNames(base)).toEqual(["slow"])
    expect(answeredAt).toBe(0)

    const rest = await stream.rest()
    const endedAt = Date.now()
    expect(rest.at(-1)).toBe("[DONE]")
    const reply = await waiting
    expect(reply.status).toBe(200)
    expect(reply.body.usage.completion_tokens).toBeGreaterThan(0)
    expect(answeredAt).toBeGreaterThanOrEqual(endedAt - 50)
    expect(await loadedNames(base)).toEqual(["tiny"])
    await expectSettled(base)
  })

  it("past the queue's limit a request gets 503 in its dialect's format; the two waiting for different models both finish", async () => {
    const base = one.url
    const stream = await openStream(base, "slow")
    // two requests, each for a different model not in memory: both wait (the queue holds 2)
    const first = generate(base, "tiny")
    const second = postJson(`${base}/v1/completions`, { model: "random", prompt: "Hello", max_tokens: 2 })
    expect(
      await eventually(async () => (await getJson(`${base}/api/health`)).body.model_slots.waiting === 2)
    ).toBe(true)
    const metrics = await (await fetch(`${base}/metrics`)).text()
    expect(metrics).toContain("\nshimmy_model_slot_queue_depth 2\n")
    expect(metrics).toContain("\nshimmy_model_slots_max 1\n")

    const seed = await generate(base, "q8")
    expect(seed.status).toBe(503)
    expect(seed.headers.get("retry-after")).toBe("1")
    expect(seed.body.error).toMatchObject({ code: "server_busy", message: "The server is busy" })
    expect(seed.body.error.details).toContain("SHIMMY_MAX_LOADED_MODELS")
    const openai = await postJson(`${base}/v1/completions`, { model: "q8", prompt: "Hello", max_tokens: 2 })
    expect(openai.status).toBe(503)
    expect(openai.body.error).toMatchObject({ type: "server_error", code: "server_busy" })
    const ollama = await postJson(`${base}/ollama/api/generate`, {
      model: "q8",
      prompt: "Hello",
      stream: false,
      options: { num_predict: 2 }
    })
    expect(ollama.status).toBe(503)
    expect(ollama.body.error).toContain("model slots")
    expect(await loadedNames(base)).toEqual(["slow"])

    await stream.stop()
    const [a, b] = await Promise.all([first, second])
    expect(a.status).toBe(200)
    expect(b.status).toBe(200)
    expect(b.body.choices[0].text).toEqual(expect.any(String))
    expect((await loadedNames(base)).length).toBe(1)
    expect(await loadedGauge(base)).toBe(1)
    await expectSettled(base)
  })

  it("a request that leaves while it waits for a slot is no longer counted, and loads nothing", async () => {
    const base = one.url
    const stream = await openStream(base, "slow")
    const controller = new AbortController()
    const gone = fetch(`${base}/api/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "q8", prompt: "Hello", max_tokens: 2 }),
      signal: controller.signal
    }).catch((e: unknown) => e)
    expect(
      await eventually(async () => (await getJson(`${base}/api/health`)).body.model_slots.waiting === 1)
    ).toBe(true)
    controller.abort()
    expect(await gone).toBeInstanceOf(Error)
    expect(
      await eventually(async () => (await getJson(`${base}/api/health`)).body.model_slots.waiting === 0)
    ).toBe(true)
    await stream.stop()
    await expectSettled(base)
    // nothing took the slot the request had waited for: slow stays until something needs it
    expect(await loadedNames(base)).toEqual(["slow"])
  })

  it("two requests for two new models at once, nothing in use: both are answered", async () => {
    const base = one.url
    await postJson(`${base}/api/models/unload`, { model: "tiny" })
    await postJson(`${base}/api/models/unload`, { model: "random" })
    const replies = await Promise.all([generate(base, "tiny"), generate(base, "q8"), generate(base, "random")])
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200])
    expect((await loadedNames(base)).length).toBe(1)
    await expectSettled(base)
  })
})

describe("SHIMMY_MAX_LOADED_MODELS=2", () => {
  it("evicts the least recently used idle model", async () => {
    const base = two.url
    for (const model of ["tiny", "random", "tiny"]) expect((await generate(base, model)).status).toBe(200)
    expect(await loadedNames(base)).toEqual(["random", "tiny"])
    // random was used before tiny's last request: it makes room
    expect((await generate(base, "q8")).status).toBe(200)
    expect(await loadedNames(base)).toEqual(["q8", "tiny"])
    expect(await counter(base, "shimmy_model_evictions_total", "random")).toBe(1)
    expect(await counter(base, "shimmy_model_evictions_total", "tiny")).toBe(0)
    await expectSettled(base)
  })

  it("passes over a busy model even when it is the least recently used, and evicts it once idle in its turn", async () => {
    const base = two.url
    for (const model of ["q8", "tiny"]) await postJson(`${base}/api/models/unload`, { model })
    const stream = await openStream(base, "slow")
    // slow's use began first: by last use it is the oldest, but it is in use
    expect((await generate(base, "tiny")).status).toBe(200)
    expect(await loadedNames(base)).toEqual(["slow", "tiny"])
    expect((await generate(base, "random")).status).toBe(200)
    expect(await loadedNames(base)).toEqual(["random", "slow"])
    expect((await generate(base, "q8")).status).toBe(200)
    expect(await loadedNames(base)).toEqual(["q8", "slow"])
    expect(await counter(base, "shimmy_model_evictions_total", "slow")).toBe(0)

    await stream.stop()
    await expectSettled(base)
    // slow's use ended after q8's: q8 is now the least recently used
    expect((await generate(base, "tiny")).status).toBe(200)
    expect(await loadedNames(base)).toEqual(["slow", "tiny"])
    expect((await generate(base, "random")).status).toBe(200)
    expect(await loadedNames(base)).toEqual(["random", "tiny"])
    expect(await counter(base, "shimmy_model_evictions_total", "slow")).toBe(1)
    expect(await loadedGauge(base)).toBe(2)
    await expectSettled(base)
  })
})
