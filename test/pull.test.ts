import { Option, Redacted } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Ollama } from "ollama"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { freshDir } from "./support/env.js"
import { type FakeHub, sha256, startHub } from "./support/hub.js"
import { sharedModel } from "./support/models.js"
import { type RunningServer, startServer } from "./support/server.js"
import { splitGguf } from "./support/split.js"

/**
 * Pulls through the real server, over sockets, with the official `ollama` client (`/api/pull`)
 * and fetch (`/api/models/pull`), from a local stand-in for the hub (test/support/hub.ts) that
 * serves real GGUFs: the pulled models are then listed and generate. Only the network is imitated.
 */

const STORIES = fs.readFileSync(sharedModel("stories260K.gguf"))
const Q8 = fs.readFileSync(sharedModel("TinyStories-656K-Q8_0.gguf"))
const COMMIT = "0123456789abcdef0123456789abcdef01234567"

let hub: FakeHub
let server: RunningServer & { readonly close: () => Promise<void> }
let cache: string
let ollama: Ollama
/** under `/ollama`: at the root of the main port, `POST /api/generate` is the seed API's */
let mounted: Ollama

const repoDir = (repo: string) => path.join(cache, `models--${repo.replace("/", "--")}`)

const addRepos = () => {
  hub.repos.set("tiny/stories-GGUF", {
    commit: COMMIT,
    files: {
      "README.md": Buffer.from("# tiny stories\n"),
      "stories260K-Q4_K_M.gguf": STORIES,
      "tinystories-Q8_0.gguf": Q8
    }
  })
  hub.repos.set("tiny/no-gguf", {
    commit: COMMIT,
    files: { "README.md": Buffer.from("#\n"), "model.safetensors": Buffer.from("x"), "config.json": Buffer.from("{}") }
  })
  const [one, two] = splitGguf(sharedModel("stories260K.gguf"), 2)
  hub.repos.set("tiny/split-GGUF", {
    commit: COMMIT,
    files: { "split-stories-00001-of-00002.gguf": one!, "split-stories-00002-of-00002.gguf": two! }
  })
}

/** A fresh repository holding a copy of the stories model under `file`, so a test downloads it anew. */
const freshRepo = (name: string, file: string) => {
  hub.repos.set(`tiny/${name}`, { commit: COMMIT, files: { [file]: STORIES } })
  return `tiny/${name}`
}

beforeAll(async () => {
  hub = await startHub()
  addRepos()
  cache = freshDir("pull-cache")
  server = await startServer({
    modelPaths: [],
    discoverSystem: true,
    huggingFaceCache: cache,
    ollamaModels: path.join(cache, "no-ollama"),
    lmStudioDirs: [],
    hubEndpoint: hub.url
  })
  ollama = new Ollama({ host: server.url })
  mounted = new Ollama({ host: `${server.url}/ollama` })
})

// a greedy story of `n` tokens from a model by the name Ollama's client gives it
const story = (model: string, n: number) =>
  mounted.generate({ model, prompt: "Once upon a time", options: { num_predict: n, temperature: 0 } })

afterAll(async () => {
  await server?.close()
  await hub?.close()
})

beforeEach(() => {
  for (const key of Object.keys(hub.faults) as Array<keyof typeof hub.faults>) delete hub.faults[key]
  hub.requests.length = 0
})

const refusal = async (call: () => Promise<unknown>) => {
  try {
    await call()
  } catch (e) {
    return e as Error & { status_code?: number; error?: string }
  }
  throw new Error("the call succeeded")
}

/** The start of a `Range: bytes=N-` header. */
const resumedAt = (range: string | undefined) => Number(/^bytes=(\d+)-$/.exec(range ?? "")?.[1] ?? Number.NaN)

const names = async () => (await ollama.list()).models.map((m) => m.name)

const partials = (dir: string) =>
  fs.existsSync(path.join(dir, "blobs"))
    ? fs.readdirSync(path.join(dir, "blobs")).filter((f) => f.endsWith(".incomplete"))
    : []

/** Shimmy's own endpoint: the NDJSON lines, parsed. */
const shimmyPull = async (body: object) => {
  const response = await fetch(`${server.url}/api/models/pull`, { method: "POST", body: JSON.stringify(body) })
  const text = await response.text()
  return { status: response.status, type: response.headers.get("content-type"), text }
}

describe("Ollama's /api/pull through the ollama client", () => {
  it("pulls hf.co/org/repo (Q4_K_M by default) into the HF cache layout; the model is listed and generates", async () => {
    const parts = await ollama.pull({ model: "hf.co/tiny/stories-GGUF", stream: true })
    const statuses: Array<{ status: string; digest?: string; total?: number; completed?: number }> = []
    for await (const part of parts) statuses.push(part)
    const digest = sha256(STORIES)
    expect(statuses[0]!.status).toBe("pulling manifest")
    const downloading = statuses.filter((s) => s.status.startsWith("pulling ") && s.digest !== undefined)
    expect(downloading.length).toBeGreaterThan(0)
    expect(downloading.every((s) => s.digest === `sha256:${digest}` && s.total === STORIES.length)).toBe(true)
    expect(downloading.at(-1)!.status).toBe(`pulling ${digest.slice(0, 12)}`)
    expect(downloading.at(-1)!.completed).toBe(STORIES.length)
    expect(statuses.slice(-3).map((s) => s.status)).toEqual(["verifying sha256 digest", "writing manifest", "success"])

    // huggingface_hub's layout: the blob by its sha256, a relative link in the snapshot, the ref
    const dir = repoDir("tiny/stories-GGUF")
    expect(fs.readFileSync(path.join(dir, "blobs", digest)).equals(STORIES)).toBe(true)
    const snapshot = path.join(dir, "snapshots", COMMIT, "stories260K-Q4_K_M.gguf")
    expect(fs.readlinkSync(snapshot)).toBe(path.join("..", "..", "blobs", digest))
    expect(fs.readFileSync(path.join(dir, "refs", "main"), "utf8")).toBe(COMMIT)
    expect(partials(dir)).toEqual([])
    // the listing first, then the redirect followed to the CDN
    expect(hub.requests.map((r) => `${r.server} ${r.method} ${r.url.split("?")[0]}`)).toEqual([
      "hub GET /api/models/tiny/stories-GGUF/revision/main",
      `hub GET /tiny/stories-GGUF/resolve/${COMMIT}/stories260K-Q4_K_M.gguf`,
      `cdn GET /blob/${digest}`
    ])

    expect(await names()).toContain("stories260K-Q4_K_M:latest")
    const answer = await story("stories260K-Q4_K_M", 5)
    expect(answer.done).toBe(true)
    expect(answer.eval_count).toBe(5)
    // and by the name it was pulled by, as Ollama's clients do after `ollama pull`
    const byPulledName = await story("hf.co/tiny/stories-GGUF", 5)
    expect(byPulledName.response).toBe(answer.response)
  })

  it("matches a tag case-insensitively; stream:false answers one {status:\"success\"}; a second pull is instant", async () => {
    const answer = await ollama.pull({ model: "hf.co/tiny/stories-GGUF:q8_0", stream: false })
    expect(answer).toEqual({ status: "success" })
    const snapshot = path.join(repoDir("tiny/stories-GGUF"), "snapshots", COMMIT, "tinystories-Q8_0.gguf")
    expect(fs.readFileSync(snapshot).equals(Q8)).toBe(true)
    expect(await names()).toContain("tinystories-Q8_0:latest")
    const byTag = await mounted.generate({
      model: "hf.co/tiny/stories-GGUF:Q8_0",
      prompt: "Once upon a time",
      options: { num_predict: 3 }
    })
    expect(byTag.eval_count).toBe(3)
    hub.requests.length = 0
    expect(await ollama.pull({ model: "huggingface.co/tiny/stories-GGUF:Q8_0", stream: false })).toEqual({
      status: "success"
    })
    expect(hub.requests.filter((r) => r.server === "cdn")).toEqual([])
  })

  it("refuses clearly: an Ollama registry name, an unknown repo, a repo without GGUF, an unknown tag", async () => {
    const registry = await refusal(() => ollama.pull({ model: "llama3.2", stream: false }))
    expect(registry.status_code).toBe(400)
    expect(registry.error).toMatch(/"llama3.2" is not a model reference: .*Shimmy does not pull from Ollama's registry/)

    const missing = await refusal(() => ollama.pull({ model: "hf.co/tiny/nothing", stream: true }))
    expect(missing.status_code).toBe(404)
    expect(missing.error).toBe(
      "repository tiny/nothing@main: not found (404) (the server said: Repository not found)"
    )

    const none = await refusal(() => ollama.pull({ model: "hf.co/tiny/no-gguf", stream: false }))
    expect(none.status_code).toBe(404)
    expect(none.error).toBe("tiny/no-gguf has no GGUF files; it has: README.md, model.safetensors, config.json")

    const tag = await refusal(() => ollama.pull({ model: "hf.co/tiny/stories-GGUF:IQ2_XS", stream: true }))
    expect(tag.status_code).toBe(404)
    expect(tag.error).toBe("tiny/stories-GGUF has no GGUF file for the tag \"IQ2_XS\"; its quantizations: Q4_K_M, Q8_0")

    const revision = await refusal(() => ollama.pull({ model: "hf.co/tiny/stories-GGUF@v9", stream: false }))
    expect(revision.status_code).toBe(404)
    expect(revision.error).toMatch(/^repository tiny\/stories-GGUF@v9: no such revision \(404\)/)
  })

  it("resumes a cut download with Range in the same pull; the file is byte-identical", async () => {
    const repo = freshRepo("resume-GGUF", "resumed-Q4_K_M.gguf")
    hub.faults.cutAfter = 300_000
    hub.faults.cuts = 1
    expect(await ollama.pull({ model: `hf.co/${repo}`, stream: false })).toEqual({ status: "success" })
    // resumed from what had arrived: the client may lose the last bytes before the cut
    const cdn = hub.requests.filter((r) => r.server === "cdn")
    expect(cdn).toHaveLength(2)
    expect(cdn[0]!.range).toBeUndefined()
    expect(resumedAt(cdn[1]!.range)).toBeGreaterThan(0)
    expect(resumedAt(cdn[1]!.range)).toBeLessThanOrEqual(300_000)
    const blob = path.join(repoDir(repo), "blobs", sha256(STORIES))
    expect(fs.readFileSync(blob).equals(STORIES)).toBe(true)
    expect(await names()).toContain("resumed-Q4_K_M:latest")
  })

  it("a sha256 mismatch deletes the partial, fails in the stream and lists nothing", async () => {
    const repo = freshRepo("corrupt-GGUF", "corrupt-Q4_K_M.gguf")
    hub.faults.wrongBytes = true
    const parts = await ollama.pull({ model: `hf.co/${repo}`, stream: true })
    const error = await refusal(async () => {
      for await (const _ of parts) { /* the stream ends with the error line */ }
    })
    expect(error.message).toMatch(
      new RegExp(
        `^corrupt-Q4_K_M.gguf: the sha256 of the download is [0-9a-f]{64}, but the hub publishes ${
          sha256(STORIES)
        }; the download was deleted`
      )
    )
    expect(partials(repoDir(repo))).toEqual([])
    expect(fs.existsSync(path.join(repoDir(repo), "snapshots"))).toBe(false)
    expect(await names()).not.toContain("corrupt-Q4_K_M:latest")
  })

  it("a server that ignores Range and keeps cutting fails clearly; the partial is never listed", async () => {
    const repo = freshRepo("norange-GGUF", "norange-Q4_K_M.gguf")
    hub.faults.ignoreRange = true
    hub.faults.cutAfter = 200_000
    hub.faults.cuts = 10
    const error = await refusal(() => ollama.pull({ model: `hf.co/${repo}`, stream: false }))
    expect(error.status_code).toBe(502)
    expect(error.error).toMatch(
      /^norange-Q4_K_M.gguf: the connection was cut after [\d.]+ KiB of 1.1 MiB \(.*\); the server does not resume downloads \(it ignores Range\)$/
    )
    // what the second answer's body delivered before its cut (at 200,000 bytes): when the socket
    // closes, fetch drops the chunks its stream had not yet handed over, so it may be a little less
    const kept = Number(/cut after ([\d.]+) KiB/.exec(error.error!)![1])
    expect(kept).toBeGreaterThan(0)
    expect(kept).toBeLessThanOrEqual(195.3)
    const cdn = hub.requests.filter((r) => r.server === "cdn")
    expect(cdn).toHaveLength(2)
    expect(resumedAt(cdn[1]!.range)).toBeGreaterThan(0)
    expect(partials(repoDir(repo))).toHaveLength(1)
    expect(await names()).not.toContain("norange-Q4_K_M:latest")
  })

  it("pulls a split model whole; it loads through its snapshot paths and generates", async () => {
    expect(await ollama.pull({ model: "hf.co/tiny/split-GGUF", stream: false })).toEqual({ status: "success" })
    const snapshots = path.join(repoDir("tiny/split-GGUF"), "snapshots", COMMIT)
    expect(fs.readdirSync(snapshots).sort()).toEqual([
      "split-stories-00001-of-00002.gguf",
      "split-stories-00002-of-00002.gguf"
    ])
    const listed = (await ollama.list()).models.find((m) => m.name === "split-stories:latest")
    expect(listed?.size).toBe(
      hub.repos.get("tiny/split-GGUF")!.files["split-stories-00001-of-00002.gguf"]!.length +
        hub.repos.get("tiny/split-GGUF")!.files["split-stories-00002-of-00002.gguf"]!.length
    )
    const answer = await story("split-stories", 8)
    expect(answer.eval_count).toBe(8)
    // the same greedy story as the whole file: the parts hold the same weights
    const whole = await story("stories260K-Q4_K_M", 8)
    expect(answer.response).toBe(whole.response)
  })

  it("two pulls of the same file at once share the download and both succeed", async () => {
    const repo = freshRepo("twice-GGUF", "twice-Q4_K_M.gguf")
    const [a, b] = await Promise.all([
      ollama.pull({ model: `hf.co/${repo}`, stream: false }),
      ollama.pull({ model: `hf.co/${repo}`, stream: false })
    ])
    expect([a, b]).toEqual([{ status: "success" }, { status: "success" }])
    expect(hub.requests.filter((r) => r.server === "cdn")).toHaveLength(1)
    expect(fs.readFileSync(path.join(repoDir(repo), "blobs", sha256(STORIES))).equals(STORIES)).toBe(true)
  })
})

describe("pulls in other processes", () => {
  it("waits while another live process holds the blob's lock; a lock whose owner is gone is taken over", async () => {
    const repo = freshRepo("locked-GGUF", "locked-Q4_K_M.gguf")
    const lock = path.join(cache, ".locks", "models--tiny--locked-GGUF", `${sha256(STORIES)}.lock`)
    fs.mkdirSync(path.dirname(lock), { recursive: true })
    // a live pid (this process's) holds it
    fs.writeFileSync(lock, String(process.pid))
    const pulling = ollama.pull({ model: `hf.co/${repo}`, stream: false })
    await new Promise((r) => setTimeout(r, 800))
    expect(hub.requests.filter((r) => r.server === "cdn")).toEqual([])
    fs.rmSync(lock)
    expect(await pulling).toEqual({ status: "success" })
    expect(hub.requests.filter((r) => r.server === "cdn")).toHaveLength(1)

    const stale = freshRepo("stale-GGUF", "stale-Q4_K_M.gguf")
    const staleLock = path.join(cache, ".locks", "models--tiny--stale-GGUF", `${sha256(STORIES)}.lock`)
    fs.mkdirSync(path.dirname(staleLock), { recursive: true })
    fs.writeFileSync(staleLock, String(spawnSync("true").pid))
    expect(await ollama.pull({ model: `hf.co/${stale}`, stream: false })).toEqual({ status: "success" })
    expect(fs.existsSync(staleLock)).toBe(false)
  })
})

describe("POST /api/models/pull, Shimmy's own", () => {
  it("streams NDJSON: resolved, progress, verifying, done, for org/repo/file.gguf", async () => {
    const { status, text, type } = await shimmyPull({ model: "tiny/stories-GGUF/tinystories-Q8_0.gguf" })
    expect(status).toBe(200)
    expect(type).toBe("application/x-ndjson")
    const items = text.trim().split("\n").map((l) => JSON.parse(l) as { type: string } & Record<string, unknown>)
    expect(items[0]).toEqual({
      type: "resolved",
      source: "tiny/stories-GGUF",
      revision: "main",
      commit: COMMIT,
      files: [{ path: "tinystories-Q8_0.gguf", size: Q8.length }]
    })
    expect(items.filter((i) => i.type === "progress").at(-1)).toMatchObject({ completed: Q8.length, total: Q8.length })
    expect(items.at(-1)).toEqual({
      type: "done",
      model: "tinystories-Q8_0",
      path: path.join(repoDir("tiny/stories-GGUF"), "snapshots", COMMIT, "tinystories-Q8_0.gguf"),
      files: [path.join(repoDir("tiny/stories-GGUF"), "snapshots", COMMIT, "tinystories-Q8_0.gguf")],
      alias: "hf.co/tiny/stories-GGUF/tinystories-Q8_0.gguf"
    })
  })

  it("takes the hub's full URLs; stream:false answers the model's name and path", async () => {
    const repo = freshRepo("url-GGUF", "from-url.gguf")
    const response = await fetch(`${server.url}/api/models/pull`, {
      method: "POST",
      body: JSON.stringify({ model: `https://huggingface.co/${repo}/resolve/main/from-url.gguf`, stream: false })
    })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({
      model: "from-url",
      path: path.join(repoDir(repo), "snapshots", COMMIT, "from-url.gguf"),
      files: [path.join(repoDir(repo), "snapshots", COMMIT, "from-url.gguf")],
      alias: `hf.co/${repo}/from-url.gguf`
    })
  })

  it("answers errors in the seed API's shape; a bad reference is a 400", async () => {
    const bad = await shimmyPull({ model: "tiny/stories-GGUF:Q4_K_M/x.gguf" })
    expect(bad.status).toBe(400)
    expect(JSON.parse(bad.text)).toEqual({
      error: {
        code: "invalid_request",
        message: "The model could not be pulled",
        details: expect.stringContaining("give a quantization tag or a file, not both")
      }
    })
    const missing = await shimmyPull({ model: "tiny/stories-GGUF/nope.gguf" })
    expect(missing.status).toBe(404)
    expect(JSON.parse(missing.text).error.code).toBe("pull_not_found")
  })

  it("a client that goes away stops the download; the partial stays and the next pull resumes it", async () => {
    const repo = freshRepo("abort-GGUF", "aborted-Q4_K_M.gguf")
    hub.faults.stallAfter = 400_000
    const controller = new AbortController()
    const response = await fetch(`${server.url}/api/models/pull`, {
      method: "POST",
      body: JSON.stringify({ model: repo }),
      signal: controller.signal
    })
    expect(response.status).toBe(200)
    const partial = path.join(repoDir(repo), "blobs", `${sha256(STORIES)}.incomplete`)
    for (let i = 0; i < 100 && !(fs.existsSync(partial) && fs.statSync(partial).size === 400_000); i++) {
      await new Promise((r) => setTimeout(r, 50))
    }
    controller.abort()
    // the server lets go of the download once the request is gone
    for (
      let i = 0;
      i < 50 && fs.existsSync(path.join(cache, ".locks", `models--tiny--abort-GGUF`, `${sha256(STORIES)}.lock`));
      i++
    ) {
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(fs.statSync(partial).size).toBe(400_000)
    expect(await names()).not.toContain("aborted-Q4_K_M:latest")

    delete hub.faults.stallAfter
    hub.requests.length = 0
    const again = await shimmyPull({ model: repo, stream: false })
    expect(again.status).toBe(200)
    expect(hub.requests.filter((r) => r.server === "cdn").map((r) => r.range)).toEqual(["bytes=400000-"])
    expect(fs.readFileSync(path.join(repoDir(repo), "blobs", sha256(STORIES))).equals(STORIES)).toBe(true)
  })

  it("a full disk (ENOSPC from the kernel's /dev/full) fails with how much was needed", async () => {
    const repo = freshRepo("full-GGUF", "full-Q4_K_M.gguf")
    const blobs = path.join(repoDir(repo), "blobs")
    fs.mkdirSync(blobs, { recursive: true })
    fs.symlinkSync("/dev/full", path.join(blobs, `${sha256(STORIES)}.incomplete`))
    const { status, text } = await shimmyPull({ model: repo, stream: false })
    expect(status).toBe(507)
    expect(JSON.parse(text).error).toEqual({
      code: "pull_disk_full",
      message: "The model could not be pulled",
      details: `the disk is full: full-Q4_K_M.gguf needs 1.1 MiB more (1.1 MiB in all) in ${blobs}; ` +
        "free some space and pull again (the download resumes)"
    })
    expect(await names()).not.toContain("full-Q4_K_M:latest")
  })
})

describe("the API key", () => {
  it("covers both pull endpoints: they write to disk", async () => {
    const locked = await startServer(
      { modelPaths: [], huggingFaceCache: freshDir("pull-key"), hubEndpoint: hub.url },
      { apiKey: Option.some(Redacted.make("sk-pull")) }
    )
    try {
      for (const route of ["/api/pull", "/api/models/pull", "/ollama/api/pull"]) {
        const response = await fetch(`${locked.url}${route}`, {
          method: "POST",
          body: JSON.stringify({ model: "tiny/stories-GGUF" })
        })
        expect(response.status).toBe(401)
      }
      expect(hub.requests).toEqual([])
      const client = new Ollama({ host: locked.url, headers: { authorization: "Bearer sk-pull" } })
      expect(await client.pull({ model: "hf.co/tiny/stories-GGUF", stream: false })).toEqual({ status: "success" })
    } finally {
      await locked.close()
    }
  })
})

describe("HF_TOKEN", () => {
  let gated: RunningServer & { readonly close: () => Promise<void> }
  beforeAll(async () => {
    gated = await startServer({
      modelPaths: [],
      discoverSystem: true,
      huggingFaceCache: freshDir("pull-gated"),
      ollamaModels: "/nonexistent/ollama",
      lmStudioDirs: [],
      hubEndpoint: hub.url,
      hubToken: Option.some(Redacted.make("hf_secret"))
    })
  })
  afterAll(async () => {
    await gated?.close()
  })

  it("without a token a gated repo says to set HF_TOKEN; with it the pull succeeds and the CDN never sees it", async () => {
    hub.faults.token = "hf_secret"
    const open = await refusal(() => ollama.pull({ model: "hf.co/tiny/stories-GGUF", stream: false }))
    expect(open.status_code).toBe(403)
    expect(open.error).toMatch(/^repository tiny\/stories-GGUF@main needs authentication \(401\): .*set HF_TOKEN/)

    hub.requests.length = 0
    const client = new Ollama({ host: gated.url })
    expect(await client.pull({ model: "hf.co/tiny/stories-GGUF", stream: false })).toEqual({ status: "success" })
    expect(hub.requests.filter((r) => r.server === "hub").every((r) => r.authorization === "Bearer hf_secret")).toBe(
      true
    )
    const cdn = hub.requests.filter((r) => r.server === "cdn")
    expect(cdn).toHaveLength(1)
    expect(cdn[0]!.authorization).toBeUndefined()
  })
})
