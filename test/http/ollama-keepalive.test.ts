import * as crypto from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Ollama } from "ollama"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { freshDir } from "../support/env.js"
import { sharedModel } from "../support/models.js"
import { type RunningServer, startServer } from "../support/server.js"

/**
 * Models in memory through Ollama's API: `/api/ps`, `keep_alive` per request (a duration, 0 to
 * unload, -1 forever), load-only requests, and unloads that wait for a running stream. What
 * `/api/ps` says is checked against what the engine does: a model that left memory loads again.
 */

let server: RunningServer & { readonly close: () => Promise<void> }
let dir: string
const model = "stories260K"

beforeAll(async () => {
  dir = freshDir("ollama-keepalive")
  await fs.copyFile(sharedModel("stories260K.gguf"), path.join(dir, "stories260K.gguf"))
  await fs.copyFile(sharedModel("llama-2-tiny-random.gguf"), path.join(dir, "digested.gguf"))
  server = await startServer({ modelPaths: [dir], parallel: 2 }, {}, { ollama: true })
}, 60_000)

afterAll(async () => {
  await server?.close()
  await fs.rm(dir, { recursive: true, force: true })
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const loadedNames = async (ollama: Ollama) => (await ollama.ps()).models.map((m) => m.name)

/** Until `check` holds, for at most `ms` (an unload after a stream runs once the response has ended). */
const eventually = async (check: () => Promise<boolean>, ms = 3000) => {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check()) return true
    await sleep(25)
  }
  return check()
}

describe.each(["/ollama", "the Ollama-only listener"] as const)("keep-alive on %s", (where) => {
  let ollama: Ollama
  beforeAll(async () => {
    ollama = new Ollama({ host: where === "/ollama" ? `${server.url}/ollama` : server.ollamaUrl! })
    // each case starts with the model out of memory
    await ollama.generate({ model, prompt: "", keep_alive: 0 })
  })

  it("ps lists a model after a request, with its size and expiry; keep_alive 0 takes it out, and it loads again", async () => {
    const first = await ollama.generate({ model, prompt: "Once", stream: false, options: { num_predict: 2 } })
    expect(first.load_duration).toBeGreaterThan(0)
    const { models } = await ollama.ps()
    const listed = models.find((m) => m.name === `${model}:latest`)!
    expect(listed).toMatchObject({ model: `${model}:latest`, size_vram: 0 })
    expect(listed.size).toBeGreaterThan(1_000_000)
    expect(listed.digest).toMatch(/^270cba1b/)
    expect(listed.details.family).toBe("llama")
    // no keep_alive and SHIMMY_MODEL_IDLE_TIMEOUT left infinite: kept for good (Go's longest time)
    expect(new Date(listed.expires_at).getFullYear()).toBeGreaterThan(2200)
    const again = await ollama.generate({ model, prompt: "Once", stream: false, options: { num_predict: 2 } })
    expect(again.load_duration).toBe(0)

    const last = await ollama.chat({
      model,
      messages: [{ role: "user", content: "Once" }],
      stream: false,
      keep_alive: 0,
      options: { num_predict: 2 }
    })
    expect(last.done).toBe(true)
    expect(await loadedNames(ollama)).not.toContain(`${model}:latest`)
    const reloaded = await ollama.generate({ model, prompt: "Once", stream: false, options: { num_predict: 2 } })
    expect(reloaded.load_duration).toBeGreaterThan(0)
    expect(await loadedNames(ollama)).toContain(`${model}:latest`)
  })

  it("a keep_alive duration sets the expiry; past it the model leaves memory", async () => {
    const before = Date.now()
    await ollama.generate({ model, prompt: "Once", stream: false, keep_alive: "1s", options: { num_predict: 1 } })
    const listed = (await ollama.ps()).models.find((m) => m.name === `${model}:latest`)!
    const expires = new Date(listed.expires_at).getTime()
    expect(expires).toBeGreaterThan(before + 900)
    expect(expires).toBeLessThan(Date.now() + 1100)
    // a look at the model (show) uses it without changing its keep-alive
    expect((await ollama.show({ model })).capabilities).toContain("completion")
    await sleep(1500)
    expect(await loadedNames(ollama)).not.toContain(`${model}:latest`)
    // a number is seconds; a later request's keep_alive replaces the earlier one
    await ollama.generate({ model, prompt: "Once", keep_alive: 0.3, options: { num_predict: 1 } })
    await ollama.generate({ model, prompt: "Once", keep_alive: -1, options: { num_predict: 1 } })
    await sleep(600)
    const kept = (await ollama.ps()).models.find((m) => m.name === `${model}:latest`)!
    expect(new Date(kept.expires_at).getFullYear()).toBeGreaterThan(2200)
  })

  it("a request without messages or prompt loads the model (done_reason load); with keep_alive 0 it unloads", async () => {
    await ollama.generate({ model, prompt: "", keep_alive: 0 })
    expect(await loadedNames(ollama)).not.toContain(`${model}:latest`)
    const load = await ollama.chat({ model, messages: [] })
    expect(load).toMatchObject({ model, done: true, done_reason: "load", message: { role: "assistant", content: "" } })
    expect(await loadedNames(ollama)).toContain(`${model}:latest`)
    const unload = await ollama.chat({ model, messages: [], keep_alive: 0 })
    expect(unload).toMatchObject({ done: true, done_reason: "unload" })
    expect(await loadedNames(ollama)).not.toContain(`${model}:latest`)
    const viaGenerate = await ollama.generate({ model, prompt: "" })
    expect(viaGenerate).toMatchObject({ done: true, done_reason: "load", response: "" })
    expect(await loadedNames(ollama)).toContain(`${model}:latest`)
  })

  it("unloading a model that is streaming waits for the stream: it runs to its end, then the model goes", async () => {
    const stream = await ollama.generate({
      model,
      prompt: "Once upon a time",
      raw: true,
      stream: true,
      options: { num_predict: 60, temperature: 0 }
    })
    const iterator = stream[Symbol.asyncIterator]()
    await iterator.next()
    const unload = await ollama.generate({ model, prompt: "", keep_alive: 0 })
    expect(unload.done_reason).toBe("unload")
    // still in use: still in memory
    expect(await loadedNames(ollama)).toContain(`${model}:latest`)
    let last: { done: boolean; eval_count?: number } | undefined
    for (;;) {
      const next = await iterator.next()
      if (next.done === true) break
      last = next.value
    }
    expect(last).toMatchObject({ done: true, eval_count: 60 })
    expect(await eventually(async () => !(await loadedNames(ollama)).includes(`${model}:latest`))).toBe(true)
  })

  it("embed holds the model like a generation: keep_alive 0 unloads it after", async () => {
    await ollama.embed({ model, input: "Once", keep_alive: -1 })
    expect(await loadedNames(ollama)).toContain(`${model}:latest`)
    await ollama.embed({ model, input: "Once", keep_alive: 0 })
    expect(await loadedNames(ollama)).not.toContain(`${model}:latest`)
    const again = await ollama.embed({ model, input: "Once" })
    expect(again.load_duration).toBeGreaterThan(0)
  })
})

describe("Open WebUI's calls, replayed over fetch", () => {
  it.each(["/ollama", "the Ollama-only listener"] as const)("on %s", async (where) => {
    const base = where === "/ollama" ? `${server.url}/ollama` : server.ollamaUrl!
    const json = async (response: Response) => {
      expect(response.status).toBe(200)
      return (await response.json()) as Record<string, any>
    }
    expect((await json(await fetch(`${base}/api/version`))).version).toMatch(/^\d+\.\d+\.\d+$/)
    const tags = await json(await fetch(`${base}/api/tags`))
    expect(tags.models.map((m: { model: string }) => m.model)).toContain(`${model}:latest`)
    const chat = await fetch(`${base}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: `${model}:latest`,
        messages: [{ role: "system", content: "You are a storyteller" }, { role: "user", content: "Once upon a time" }],
        stream: true,
        options: { temperature: 0.7, top_p: 0.9, top_k: 40, num_predict: 12, num_ctx: 2048, repeat_penalty: 1.1 }
      })
    })
    expect(chat.status).toBe(200)
    expect(chat.headers.get("content-type")).toBe("application/x-ndjson")
    const lines = (await chat.text()).split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l))
    expect(lines.slice(0, -1).every((l) => l.done === false && typeof l.message.content === "string")).toBe(true)
    expect(lines.at(-1)).toMatchObject({ done: true, done_reason: "length", eval_count: 12 })
    const ps = await json(await fetch(`${base}/api/ps`))
    expect(ps.models.map((m: { name: string }) => m.name)).toContain(`${model}:latest`)
    // Open WebUI's "unload model"
    const unload = await json(
      await fetch(`${base}/api/generate`, {
        method: "POST",
        body: JSON.stringify({ model: `${model}:latest`, keep_alive: 0, prompt: "" })
      })
    )
    expect(unload).toMatchObject({ done: true, done_reason: "unload" })
    const after = await json(await fetch(`${base}/api/ps`))
    expect(after.models.map((m: { name: string }) => m.name)).not.toContain(`${model}:latest`)
  })
})

describe("digests", () => {
  it("are the sha256 of the file, and follow the file when it is replaced", async () => {
    const ollama = new Ollama({ host: server.ollamaUrl! })
    const file = path.join(dir, "digested.gguf")
    const sha = async () => crypto.createHash("sha256").update(await fs.readFile(file)).digest("hex")
    const listed = async () => (await ollama.list()).models.find((m) => m.name === "digested:latest")!.digest
    expect(await listed()).toBe(await sha())
    expect(await listed()).toBe(await sha())
    await fs.copyFile(sharedModel("TinyStories-656K-Q8_0.gguf"), file)
    // the registry rescans at most every 2 s
    await sleep(2100)
    const replaced = await sha()
    expect(replaced.startsWith("5793cbb3")).toBe(true)
    expect(await listed()).toBe(replaced)
  })
})
