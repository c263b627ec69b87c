import { Effect, Layer, ManagedRuntime } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { LlamaRuntime } from "../src/services/LlamaRuntime.js"
import { exposeCollector } from "../src/services/NativeGarbage.js"
import { openSocket, postJson, wsAnswer } from "./support/clients.js"
import { modelsDir, startServer, testConfig } from "./support/server.js"

/**
 * Broken model files next to good ones: a request for a broken one fails with model_load_failed,
 * every other model keeps being served, and the process stays up.
 */

const source = fs.readFileSync(path.join(modelsDir, "stories260K.gguf"))
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shimmy-faults-"))

// cut to half its size: the header parses, the weights stop short
fs.writeFileSync(path.join(dir, "half-stories.gguf"), source.subarray(0, Math.floor(source.byteLength / 2)))
// whole, with an architecture llama.cpp does not know: the header is fine, llama.cpp's load fails
const alien = Buffer.from(source)
const key = alien.indexOf("general.architecture")
alien.write("xxxxx", alien.indexOf("llama", key + 20))
fs.writeFileSync(path.join(dir, "alien-stories.gguf"), alien)
// not a GGUF at all
fs.writeFileSync(path.join(dir, "garbage.gguf"), Buffer.from("this is not a model\n".repeat(100)))

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

type Server = Awaited<ReturnType<typeof startServer>>

describe("broken model files", () => {
  let server: Server
  beforeAll(async () => {
    server = await startServer({ modelPaths: [modelsDir, dir] })
  })
  afterAll(() => server.close())

  const good = { model: "stories260K", prompt: "Once upon a time", max_tokens: 6, temperature: 0 }

  it.each(["half-stories", "alien-stories", "garbage"])(
    "%s fails with model_load_failed; others are served",
    async (name) => {
      const api = await postJson(`${server.url}/api/generate`, { model: name, prompt: "Once", max_tokens: 4 })
      expect(api.status).toBe(500)
      expect(api.body.error).toEqual({
        code: "model_load_failed",
        message: expect.any(String),
        details: expect.stringContaining(name)
      })

      const v1 = await postJson(`${server.url}/v1/chat/completions`, {
        model: name,
        messages: [{ role: "user", content: "Hi" }],
        stream: true
      })
      expect(v1.status).toBe(500)
      expect(v1.body.error).toMatchObject({ code: "model_load_failed", type: "server_error" })

      const ws = await openSocket(`${server.wsUrl}/ws/generate`)
      const [frame] = await wsAnswer(ws, { model: name, prompt: "Once" })
      expect(frame.error.code).toBe("model_load_failed")
      // the same connection goes on with a good model
      expect((await wsAnswer(ws, good)).at(-1)).toMatchObject({ done: true, usage: { completion_tokens: 6 } })
      ws.close()

      const ok = await postJson(`${server.url}/api/generate`, good)
      expect(ok.status).toBe(200)
      expect(ok.body.choices[0].text).toContain("there was")
    }
  )

  it("the broken files are listed with the reason, and a failed load is tried again (and fails again) without harm", async () => {
    const { models } = await (await fetch(`${server.url}/api/models`)).json() as any
    const half = models.find((m: any) => m.id === "half-stories")
    expect(half).toMatchObject({ status: "unusable", reason: expect.stringContaining("truncated") })
    for (let i = 0; i < 3; i++) {
      const again = await postJson(`${server.url}/api/generate`, { model: "alien-stories", prompt: "Once" })
      expect(again.body.error.code).toBe("model_load_failed")
    }
    const health = await (await fetch(`${server.url}/api/health`)).json() as any
    expect(health.status).toBe("healthy")
    expect(health.loaded_models).not.toContain("alien-stories")
  })
})

describe("the runtime after a failed load", () => {
  it("closes even when the failed model has been garbage-collected", async () => {
    const runtime = ManagedRuntime.make(LlamaRuntime.layer.pipe(Layer.provide(testConfig())))
    const llama = await runtime.runPromise(Effect.flatMap(LlamaRuntime, (r) => r.llama))
    await expect(llama.loadModel({ modelPath: path.join(dir, "alien-stories.gguf") })).rejects.toThrow(
      /Failed to load model/
    )
    // node-llama-cpp's half-made model, only weakly reachable now, goes with a full collection
    const gc = exposeCollector()
    expect(gc).toBeDefined()
    for (let i = 0; i < 3; i++) {
      await gc!({ type: "major", execution: "async" })
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const closed = await Promise.race([
      runtime.dispose().then(() => "closed"),
      new Promise((resolve) => setTimeout(() => resolve("still closing after 10 s"), 10_000))
    ])
    expect(closed).toBe("closed")
  })
})
