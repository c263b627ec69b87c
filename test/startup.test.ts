import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import { hermetic } from "./support/env.js"
import { sharedModel } from "./support/models.js"

/**
 * Start-up of the real `shimmy` command (`npm run build` first): the server listens and answers
 * before node-llama-cpp is loaded, and commands that need no model never load it. A module hook
 * holds back or refuses the import of node-llama-cpp, so "before it is loaded" is not a race.
 */

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "bin", "shimmy.js")
const hooks = fs.mkdtempSync(path.join(os.tmpdir(), "shimmy-startup-"))

/** A `--import` module whose resolve hook runs `body` before node-llama-cpp resolves. */
const hookFlag = (name: string, body: string) => {
  const hook = path.join(hooks, `${name}-hook.mjs`)
  fs.writeFileSync(
    hook,
    `import * as fs from "node:fs"\nexport async function resolve(specifier, context, next) {\n` +
      `  if (specifier === "node-llama-cpp") { ${body} }\n  return next(specifier, context)\n}\n`
  )
  const register = path.join(hooks, `${name}.mjs`)
  fs.writeFileSync(
    register,
    `import { register } from "node:module"\nregister(${JSON.stringify(pathToFileURL(hook).href)})\n`
  )
  return `--import=${pathToFileURL(register).href}`
}

const gate = path.join(hooks, "open")
// waits until the test creates the gate file
const held = hookFlag(
  "held",
  `while (!fs.existsSync(${JSON.stringify(gate)})) await new Promise((r) => setTimeout(r, 10))`
)
const refused = hookFlag("refused", `throw new Error("node-llama-cpp was loaded")`)

const { cwd, env } = hermetic("startup")

const children: Array<ChildProcess> = []
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL")
})
afterAll(() => fs.rmSync(hooks, { recursive: true, force: true }))

const serve = (flag: string | undefined, extra: Record<string, string> = {}) => {
  const child = spawn(process.execPath, [
    ...(flag === undefined ? [] : [flag]),
    bin,
    "serve",
    "--bind",
    "127.0.0.1:0",
    "--model-dirs",
    sharedModel("stories260K.gguf")
  ], {
    cwd,
    env: { ...env, ...extra },
    stdio: ["ignore", "pipe", "pipe"]
  })
  children.push(child)
  let output = ""
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()))
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
  const url = new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      output += d.toString()
      const found = /listening on (http:\/\/\S+)/.exec(output)?.[1]
      if (found !== undefined) resolve(found)
    })
    void exited.then((code) => reject(new Error(`shimmy serve exited (${code}) before listening:\n${output}`)))
  })
  return { url, exited, output: () => output }
}

const generate = (url: string) =>
  fetch(`${url}/api/generate`, {
    method: "POST",
    body: JSON.stringify({ model: "stories260K", prompt: "Once upon a time", max_tokens: 12, temperature: 0 })
  })

describe("shimmy start-up", () => {
  it("answers /api/health while llama.cpp is still loading; a generation sent meanwhile waits for it", async () => {
    fs.rmSync(gate, { force: true })
    const server = serve(held)
    const url = await server.url
    const health = await fetch(`${url}/api/health`)
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({
      status: "healthy",
      models_available: 1,
      models_loaded: 0,
      loaded_models: []
    })
    const models = await (await fetch(`${url}/api/models`)).json() as { models: Array<{ id: string; loaded: boolean }> }
    expect(models.models).toEqual([expect.objectContaining({ id: "stories260K", loaded: false })])

    let answered = false
    const pending = generate(url).then((r) => {
      answered = true
      return r
    })
    await new Promise((r) => setTimeout(r, 300))
    expect(answered).toBe(false)
    fs.writeFileSync(gate, "")
    const response = await pending
    expect(response.status).toBe(200)
    const body = await response.json() as { choices: Array<{ text: string }> }
    expect(body.choices[0]!.text.startsWith(", there was a little girl")).toBe(true)
    const after = await (await fetch(`${url}/api/health`)).json()
    expect(after).toMatchObject({ models_loaded: 1, loaded_models: ["stories260K"] })
  })

  it("ends `serve` with one error line and status 1 when node-llama-cpp cannot be loaded", async () => {
    const server = serve(refused)
    await server.url
    expect(await server.exited).toBe(1)
    expect(server.output()).toMatch(/^error: .*cannot load node-llama-cpp: .*node-llama-cpp was loaded/m)
  })

  // libuv creates its pool's threads together, on first use (here: reading the ES modules)
  it.runIf(process.platform === "linux")(
    "runs with libuv's pool of one thread unless UV_THREADPOOL_SIZE says otherwise",
    async () => {
      const threads = async (extra: Record<string, string>) => {
        const server = serve(undefined, extra)
        const response = await generate(await server.url)
        expect(response.status).toBe(200)
        return fs.readdirSync(`/proc/${children.at(-1)!.pid}/task`).length
      }
      const one = await threads({})
      const four = await threads({ UV_THREADPOOL_SIZE: "4" })
      expect(four - one).toBe(3)
    }
  )

  it("lists models and prints the version without loading node-llama-cpp", () => {
    const run = (...args: ReadonlyArray<string>) =>
      spawnSync(process.execPath, [refused, bin, ...args], {
        cwd,
        env: { ...env, SHIMMY_MODEL_PATHS: sharedModel("stories260K.gguf") },
        encoding: "utf8"
      })
    const list = run("list")
    expect(list.stderr).toBe("")
    expect(list.status).toBe(0)
    expect(list.stdout).toMatch(/^stories260K\s+1\.1MB\s+llama\s+293K\s+F32\s+2048\s+ok\s/m)
    const version = run("-V")
    expect(version.status).toBe(0)
    expect(version.stdout.trim()).toBe("0.1.0")
  })
})
