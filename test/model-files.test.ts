import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { postJson } from "./support/clients.js"
import { hermetic } from "./support/env.js"
import { readGguf, withMetadata, writeGguf } from "./support/gguf.js"
import { writeMalformed } from "./support/malformed.js"
import { SHARED_MODELS, sharedModel } from "./support/models.js"
import { startServer } from "./support/server.js"

/**
 * Model files that used to end the process (llama.cpp's asserts, SIGBUS) or hang discovery
 * (node-llama-cpp's header reader): each is listed as unusable with a reason, a request for it
 * fails with model_load_failed, and this process (which runs the server) lives on.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shimmy-model-files-"))
const malformed = writeMalformed(dir)

// a hyperparameter no header check refuses (MoE models may have no dense feed-forward), which
// llama.cpp asserts on when it creates the tensors: only the test load in a child process finds it
const stories = readGguf(sharedModel("stories260K.gguf"))
fs.writeFileSync(
  path.join(dir, "ffn-0.gguf"),
  writeGguf(withMetadata(stories, { "llama.feed_forward_length": { type: "u32", value: 0 } }))
)

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const good = { model: "stories260K", prompt: "Once upon a time", max_tokens: 6, temperature: 0 }

describe("shimmy list over broken model files", () => {
  it("finishes, and lists each as unusable with its reason", () => {
    expect(fs.existsSync(path.join(ROOT, "dist", "cli", "shimmy.js")), "run `npm run build` first").toBe(true)
    const result = spawnSync(process.execPath, [path.join(ROOT, "bin", "shimmy.js"), "list"], {
      ...hermetic("model-files", { SHIMMY_MODEL_PATHS: `${dir}:${SHARED_MODELS}` }),
      encoding: "utf8",
      timeout: 30_000
    })
    expect(result.signal).toBeNull()
    expect(result.status).toBe(0)
    for (const { name, reason } of malformed) {
      expect(result.stdout).toMatch(new RegExp(`^${name}\\s.*\\sunusable\\s`, "m"))
      const line = result.stdout.split("\n").find((l) => l.startsWith(`${name}: unusable: `))
      expect(line, name).toMatch(reason)
    }
    expect(result.stdout).toMatch(/^stories260K\s.*\sok\s/m)
  })
})

describe("a server over broken model files", () => {
  let server: Awaited<ReturnType<typeof startServer>>
  beforeAll(async () => {
    server = await startServer({ modelPaths: [dir, SHARED_MODELS] })
  })
  afterAll(() => server.close())

  it("answers model_load_failed with the reason for each, and keeps serving stories260K", async () => {
    for (const { name, reason } of malformed) {
      const reply = await postJson(`${server.url}/api/generate`, { model: name, prompt: "Once", max_tokens: 4 })
      expect(reply.status, name).toBe(500)
      expect(reply.body.error.code).toBe("model_load_failed")
      expect(reply.body.error.details).toMatch(reason)
    }
    const ok = await postJson(`${server.url}/api/generate`, good)
    expect(ok.status).toBe(200)
    expect(ok.body.choices[0].text).toContain("there was")
  })

  it("fails a model that llama.cpp aborts on in the test load, with llama.cpp's words, and lives on", async () => {
    const models = await (await fetch(`${server.url}/api/models`)).json() as {
      models: Array<{ id: string; status: string }>
    }
    expect(models.models.find((m) => m.id === "ffn-0")?.status).toBe("ok")
    for (let i = 0; i < 2; i++) {
      const reply = await postJson(`${server.url}/api/generate`, { model: "ffn-0", prompt: "Once", max_tokens: 4 })
      expect(reply.status).toBe(500)
      expect(reply.body.error.code).toBe("model_load_failed")
      expect(reply.body.error.details).toMatch(/killed by SIGABRT: .*GGML_ASSERT\(t_meta\.ne\[dim\] >= 1\) failed/)
    }
    const ok = await postJson(`${server.url}/api/generate`, good)
    expect(ok.status).toBe(200)
    const health = await (await fetch(`${server.url}/api/health`)).json() as {
      status: string
      loaded_models: Array<string>
    }
    expect(health.status).toBe("healthy")
    expect(health.loaded_models).not.toContain("ffn-0")
  })

  it("rescans for an unknown name with a hostile file present, and finds one added later as unusable", async () => {
    fs.copyFileSync(path.join(dir, "name-past-end.gguf"), path.join(dir, "late-name-past-end.gguf"))
    await new Promise((resolve) => setTimeout(resolve, 2_100))
    const started = Date.now()
    const unknown = await postJson(`${server.url}/api/generate`, { model: "no-such-model", prompt: "Once" })
    expect(unknown.body.error.code).toBe("model_not_found")
    const late = await postJson(`${server.url}/api/generate`, { model: "late-name-past-end", prompt: "Once" })
    expect(late.body.error.code).toBe("model_load_failed")
    expect(late.body.error.details).toMatch(/tensor 0's name needs 1000000000 bytes/)
    expect(Date.now() - started).toBeLessThan(5_000)
  })

  it("does not list a deleted model file", async () => {
    const doomed = path.join(dir, "doomed.gguf")
    fs.copyFileSync(sharedModel("stories260K.gguf"), doomed)
    await new Promise((resolve) => setTimeout(resolve, 2_100))
    const ids = async () =>
      ((await (await fetch(`${server.url}/api/models`)).json()) as { models: Array<{ id: string }> }).models.map((m) =>
        m.id
      )
    expect(await ids()).toContain("doomed")
    fs.rmSync(doomed)
    await new Promise((resolve) => setTimeout(resolve, 2_100))
    expect(await ids()).not.toContain("doomed")
  })

  it("keeps serving a loaded model whose file is overwritten and truncated in place (weights are not mapped)", async () => {
    const victim = path.join(dir, "victim.gguf")
    fs.copyFileSync(sharedModel("stories260K.gguf"), victim)
    await new Promise((resolve) => setTimeout(resolve, 2_100))
    const before = await postJson(`${server.url}/api/generate`, { ...good, model: "victim" })
    expect(before.status).toBe(200)
    // in place: the same inode, so mapped pages would now read zeros, then lie past the end
    const fd = fs.openSync(victim, "r+")
    fs.writeSync(fd, Buffer.alloc(fs.fstatSync(fd).size), 0, undefined, 0)
    fs.ftruncateSync(fd, 4096)
    fs.closeSync(fd)
    const after = await postJson(`${server.url}/api/generate`, { ...good, model: "victim", max_tokens: 12 })
    expect(after.status).toBe(200)
    expect(after.body.choices[0].text).toContain("there was")
  })
})
