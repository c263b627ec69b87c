import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { TestServer } from "../support/server.js"

const getJson = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url)
    return { status: response.status, type: response.headers.get("content-type"), body: (await response.json()) as any }
  })

const generate = (url: string, model: string) =>
  Effect.promise(() =>
    fetch(`${url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model, prompt: "Once", max_tokens: 2, temperature: 0 })
    })
      .then((r) => r.json())
  )

layer(TestServer.layer)("GET /api/models and /api/health", (it) => {
  it.effect("the server starts with no model loaded, and health says so", () =>
    Effect.gen(function*() {
      const { url } = yield* TestServer
      const health = yield* getJson(`${url}/api/health`)
      expect(health.status).toBe(200)
      expect(health.type).toMatch(/^application\/json/)
      expect(health.body).toMatchObject({ status: "healthy", models_loaded: 0, models_available: 5, loaded_models: [] })
      expect(health.body.memory_usage).toMatch(/^\d+(\.\d)?(B|KB|MB|GB|TB)$/)
      expect(health.body.version).toMatch(/^\d+\.\d+\.\d+/)
      expect(health.body.uptime_seconds).toBeGreaterThanOrEqual(0)
    }))

  it.effect("lists every model with the spec's fields and the registry's metadata", () =>
    Effect.gen(function*() {
      const { url } = yield* TestServer
      const { body, status } = yield* getJson(`${url}/api/models`)
      expect(status).toBe(200)
      const ids = body.models.map((m: any) => m.id)
      expect(ids.sort()).toEqual(
        ["TinyStories-656K-Q4_0", "TinyStories-656K-Q8_0", "TinyStories-656K-f32", "llama-2-tiny-random", "stories260K"]
          .sort()
      )
      for (const m of body.models) {
        expect(typeof m.name).toBe("string")
        expect(typeof m.description).toBe("string")
        expect(m.description.length).toBeGreaterThan(0)
        expect(m.architecture).toBe("llama")
        expect(m.size_bytes).toBeGreaterThan(100_000)
      }
      const stories = body.models.find((m: any) => m.id === "stories260K")
      expect(stories).toMatchObject({
        size_bytes: 1_185_376,
        quantization: "F32",
        context_length: 2048,
        status: "ok",
        guarded: false
      })
      const q4 = body.models.find((m: any) => m.id === "TinyStories-656K-Q4_0")
      expect(q4).toMatchObject({ quantization: "Q4_0", status: "guarded", guarded: true })
      expect(q4.description).toContain("guarded")
    }))

  it.effect("a model loads on first use, and both endpoints then report it loaded", () =>
    Effect.gen(function*() {
      const { url } = yield* TestServer
      yield* generate(url, "llama-2-tiny-random")
      const health = yield* getJson(`${url}/api/health`)
      expect(health.body.models_loaded).toBe(1)
      expect(health.body.loaded_models).toEqual(["llama-2-tiny-random"])
      // what llama.cpp runs on, and why (the tests' config turns the GPU off)
      expect(health.body.runtime).toEqual({
        backend: "cpu",
        gpu_setting: "off",
        reason: "SHIMMY_GPU=off: the CPU",
        build: expect.stringMatching(/^(prebuilt|local)$/),
        openmp: expect.any(Boolean),
        threads: 1,
        lone_threads: 1
      })
      const { body } = yield* getJson(`${url}/api/models`)
      const loaded = body.models.filter((m: any) => m.loaded).map((m: any) => m.id)
      expect(loaded).toEqual(["llama-2-tiny-random"])
    }))
})
