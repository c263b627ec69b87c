import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { freshDir, hermetic } from "./support/env.js"
import { type FakeHub, sha256, startHub } from "./support/hub.js"
import { sharedModel } from "./support/models.js"

/**
 * The real `shimmy pull` command (built by `npm run build`), spawned in a clean environment with
 * HF_ENDPOINT pointing at a local stand-in for the hub (test/support/hub.ts) that serves a real
 * GGUF. Spawned asynchronously: the stand-in runs in this process.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const BIN = path.join(ROOT, "bin", "shimmy.js")
const STORIES = fs.readFileSync(sharedModel("stories260K.gguf"))
const COMMIT = "fedcba9876543210fedcba9876543210fedcba98"

let hub: FakeHub

const shimmy = (args: ReadonlyArray<string>, env: Record<string, string>) => {
  expect(fs.existsSync(path.join(ROOT, "dist", "cli", "shimmy.js")), "run `npm run build` first").toBe(true)
  const { cwd, env: clean } = hermetic("pull-cli", env)
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: clean })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

beforeAll(async () => {
  hub = await startHub()
  hub.repos.set("cli/stories-GGUF", {
    commit: COMMIT,
    files: { "README.md": Buffer.from("#\n"), "stories-cli-Q4_K_M.gguf": STORIES }
  })
  hub.repos.set("cli/resume-GGUF", { commit: COMMIT, files: { "resume-cli-Q4_0.gguf": STORIES } })
})

afterAll(async () => {
  await hub?.close()
})

beforeEach(() => {
  for (const key of Object.keys(hub.faults) as Array<keyof typeof hub.faults>) delete hub.faults[key]
  hub.requests.length = 0
})

describe("shimmy pull", () => {
  it("pulls org/repo into $HF_HUB_CACHE, prints progress lines, where it is and its name; list shows it", async () => {
    const cache = freshDir("pull-cli-cache")
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache }
    const { code, stderr, stdout } = await shimmy(["pull", "cli/stories-GGUF"], env)
    expect(code).toBe(0)
    const snapshot = path.join(cache, "models--cli--stories-GGUF", "snapshots", COMMIT, "stories-cli-Q4_K_M.gguf")
    expect(stdout).toBe(
      `pulled stories-cli-Q4_K_M\n  path: ${snapshot}\n` +
        "  use it as: --model stories-cli-Q4_K_M  (shimmy generate --model stories-cli-Q4_K_M -p \"...\")\n"
    )
    // not a terminal: plain lines, no carriage returns
    expect(stderr).not.toContain("\r")
    expect(stderr).toContain(
      `pulling cli/stories-GGUF (commit ${COMMIT.slice(0, 12)}): stories-cli-Q4_K_M.gguf (1.1 MiB)`
    )
    expect(stderr).toContain("stories-cli-Q4_K_M.gguf: 100% (1.1 MiB / 1.1 MiB)")
    expect(stderr).toContain(`verifying stories-cli-Q4_K_M.gguf (sha256 ${sha256(STORIES).slice(0, 12)})`)
    expect(fs.readFileSync(snapshot).equals(STORIES)).toBe(true)

    const list = await shimmy(["list", "--json"], env)
    const models = JSON.parse(list.stdout) as Array<{ name: string; source: string; status: string }>
    expect(models.find((m) => m.name === "stories-cli-Q4_K_M")).toMatchObject({ source: "huggingface", status: "ok" })
  })

  it("says when another file holds the name, and gives the hf.co name that means the pulled one", async () => {
    const mine = freshDir("pull-cli-own")
    fs.copyFileSync(sharedModel("llama-2-tiny-random.gguf"), path.join(mine, "stories-cli-Q4_K_M.gguf"))
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: freshDir("pull-cli-cache"), SHIMMY_MODEL_PATHS: mine }
    const { code, stdout } = await shimmy(["pull", "cli/stories-GGUF"], env)
    expect(code).toBe(0)
    const alias = "hf.co/cli/stories-GGUF/stories-cli-Q4_K_M.gguf"
    expect(stdout).toContain(`  use it as: --model ${alias}`)
    expect(stdout).toContain(
      `  note: the name stories-cli-Q4_K_M is taken by ${
        path.join(mine, "stories-cli-Q4_K_M.gguf")
      }, found first; ${alias} names this file`
    )
    const story = await shimmy(
      ["generate", "--model", alias, "-p", "Once upon a time", "--max-tokens", "12", "--temperature", "0"],
      env
    )
    expect(story.stderr).toBe("")
    expect(story.code).toBe(0)
    // the pulled stories model, not the random one that holds the plain name
    expect(story.stdout).toMatch(/^, there was a little girl/)
  })

  it("draws a progress bar with bytes, rate and ETA on a terminal", async () => {
    const cache = freshDir("pull-cli-cache")
    // script(1) gives the command a pseudo-terminal: stderr is a TTY there
    const { cwd, env } = hermetic("pull-cli-tty", { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache })
    const output = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const child = spawn("script", ["-qec", `${process.execPath} ${BIN} pull cli/stories-GGUF`, "/dev/null"], {
        cwd,
        env
      })
      let text = ""
      child.stdout.on("data", (d: Buffer) => (text += d.toString()))
      child.on("close", (code) => resolve({ code, text }))
    })
    expect(output.code).toBe(0)
    expect(output.text).toContain("\r\x1b[2Kstories-cli-Q4_K_M.gguf [########################] 100% 1.1 MiB / 1.1 MiB")
    expect(output.text).toMatch(/ [\d.]+ (?:B|KiB|MiB|GiB)\/s {2}ETA \d+:\d\d/)
    expect(output.text).toContain("pulled stories-cli-Q4_K_M")
  })

  it("fails with one line on stderr and exit 1 for a bad reference and a missing repository", async () => {
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: freshDir("pull-cli-cache") }
    const bad = await shimmy(["pull", "just-a-name"], env)
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(
      /^error: "just-a-name" is not a model reference: name a Hugging Face repository as org\/repo/
    )
    expect(bad.stderr.trim().split("\n")).toHaveLength(1)
    const file = path.join(freshDir("pull-cli-file"), "not-a-dir")
    fs.writeFileSync(file, "")
    const unwritable = await shimmy(["pull", "cli/stories-GGUF"], { HF_ENDPOINT: hub.url, HF_HUB_CACHE: file })
    expect(unwritable.code).toBe(1)
    expect(unwritable.stderr.trim().split("\n").at(-1)).toMatch(
      /^error: the download could not be stored at .*not-a-dir.*: ENOTDIR/
    )
    const endpoint = await shimmy(["pull", "cli/stories-GGUF"], { HF_ENDPOINT: "ftp://mirror" })
    expect(endpoint.code).toBe(1)
    expect(endpoint.stderr).toContain("HF_ENDPOINT must be an http(s) URL")
    const missing = await shimmy(["pull", "cli/missing"], env)
    expect(missing.code).toBe(1)
    expect(missing.stderr).toBe(
      "error: repository cli/missing@main: not found (404) (the server said: Repository not found)\n"
    )
  })

  it("a download cut too often fails, is never listed, and the next run resumes it with Range", async () => {
    const cache = freshDir("pull-cli-cache")
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache }
    hub.faults.cutAfter = 100_000
    hub.faults.cuts = 100
    const first = await shimmy(["pull", "cli/resume-GGUF"], env)
    expect(first.code).toBe(1)
    expect(first.stderr.trim().split("\n").at(-1)).toMatch(
      /^error: resume-cli-Q4_0.gguf: the connection was cut after [\d.]+ KiB of 1.1 MiB \(.*\), 5 times; the partial download is kept: pull again to resume$/
    )
    const partial = path.join(cache, "models--cli--resume-GGUF", "blobs", `${sha256(STORIES)}.incomplete`)
    const kept = fs.statSync(partial).size
    expect(kept).toBeGreaterThan(0)
    const listed = await shimmy(["list", "--json"], env)
    expect((JSON.parse(listed.stdout) as Array<{ name: string }>).map((m) => m.name)).not.toContain("resume-cli-Q4_0")

    hub.faults.cuts = 0
    hub.requests.length = 0
    const second = await shimmy(["pull", "cli/resume-GGUF"], env)
    expect(second.code).toBe(0)
    expect(hub.requests.filter((r) => r.server === "cdn").map((r) => r.range)).toEqual([`bytes=${kept}-`])
    expect(fs.readFileSync(path.join(cache, "models--cli--resume-GGUF", "blobs", sha256(STORIES))).equals(STORIES))
      .toBe(true)
    expect(fs.existsSync(partial)).toBe(false)
  })

  it("sends HF_TOKEN to the hub (not to the CDN); without it a gated repository says to set it", async () => {
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: freshDir("pull-cli-cache") }
    hub.faults.token = "hf_cli_token"
    const refused = await shimmy(["pull", "cli/stories-GGUF"], env)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(
      /^error: repository cli\/stories-GGUF@main needs authentication \(401\).*set HF_TOKEN/
    )
    const wrong = await shimmy(["pull", "cli/stories-GGUF"], { ...env, HF_TOKEN: "hf_wrong" })
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toMatch(
      /^error: repository cli\/stories-GGUF@main: access denied \(403\); for a gated repository accept its conditions on the hub and check that HF_TOKEN may read it/
    )
    hub.requests.length = 0
    const allowed = await shimmy(["pull", "cli/stories-GGUF", "--revision", COMMIT], {
      ...env,
      HF_TOKEN: "hf_cli_token"
    })
    expect(allowed.code).toBe(0)
    expect(hub.requests.filter((r) => r.server === "hub").map((r) => r.authorization)).toEqual([
      "Bearer hf_cli_token",
      "Bearer hf_cli_token"
    ])
    expect(hub.requests.filter((r) => r.server === "cdn").map((r) => r.authorization)).toEqual([undefined])

    // the token `huggingface-cli login` saved in $HF_HOME/token, and the cache in $HF_HOME/hub
    const home = freshDir("pull-cli-hf-home")
    fs.writeFileSync(path.join(home, "token"), "hf_cli_token\n")
    const saved = await shimmy(["pull", "cli/stories-GGUF"], { HF_ENDPOINT: hub.url, HF_HOME: home })
    expect(saved.code).toBe(0)
    expect(saved.stdout).toContain(path.join(home, "hub", "models--cli--stories-GGUF", "snapshots", COMMIT))
  })

  it("pulls a plain URL into the models directory, where it is listed", async () => {
    const models = freshDir("pull-cli-models")
    hub.serveFile("plain-model.gguf", STORIES)
    const { code, stdout } = await shimmy(["pull", `${hub.cdnUrl}/files/plain-model.gguf`], {
      SHIMMY_MODELS_DIR: models,
      HF_HUB_CACHE: freshDir("pull-cli-cache")
    })
    expect(code).toBe(0)
    expect(stdout).toContain(`pulled plain-model\n  path: ${path.join(models, "plain-model.gguf")}\n`)
    expect(fs.readFileSync(path.join(models, "plain-model.gguf")).equals(STORIES)).toBe(true)
    expect(fs.readdirSync(models)).toEqual(["plain-model.gguf"])
    const list = await shimmy(["list", "--json"], { SHIMMY_MODELS_DIR: models })
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ name: "plain-model", source: "models-dir" })])

    // a page that is not a GGUF is deleted, never listed
    hub.serveFile("page.gguf", Buffer.from("<html>sign in</html>"))
    const page = await shimmy(["pull", `${hub.cdnUrl}/files/page.gguf`], { SHIMMY_MODELS_DIR: models })
    expect(page.code).toBe(1)
    expect(page.stderr.trim().split("\n").at(-1)).toBe(
      "error: page.gguf is not a GGUF file (it starts with \"<htm\"); the download was deleted"
    )
    expect(fs.readdirSync(models)).toEqual(["plain-model.gguf"])
  })
})
