import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { findLocalBuild } from "../src/services/LlamaRuntime.js"
import { hermetic } from "./support/env.js"
import { SHARED_MODELS, sharedModel } from "./support/models.js"

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const BIN = path.join(ROOT, "bin", "shimmy.js")

/** Runs the real `shimmy` command (built by `npm run build`) in a clean environment. */
const shimmy = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  expect(fs.existsSync(path.join(ROOT, "dist", "src", "cli", "bin.js")), "run `npm run build` first").toBe(true)
  // the system stores are searched (in a home of its own): `list` and `diag` show them empty
  const { cwd, env: clean } = hermetic("cli", { SHIMMY_MODEL_PATHS: SHARED_MODELS, ...env })
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: "utf8", timeout: 60_000, env: clean })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

describe("shimmy CLI", () => {
  it("lists the shared models with metadata and marks the guarded ones", () => {
    const { code, stdout } = shimmy(["list"])
    expect(code).toBe(0)
    const rows = stdout.split("\n").filter((l) => l.includes(SHARED_MODELS))
    expect(rows).toHaveLength(5)
    const stories = rows.find((r) => r.startsWith("stories260K "))!
    expect(stories).toMatch(/llama\s+293K\s+F32\s+2048\s+ok\s+path/)
    for (const quant of ["f32", "Q4_0", "Q8_0"]) {
      expect(rows.find((r) => r.startsWith(`TinyStories-656K-${quant} `))).toMatch(/\sguarded\s/)
    }
    expect(stdout).toMatch(/TinyStories-656K-Q8_0: guarded: vocabulary has no byte-fallback tokens/)
  })

  it("lists as JSON", () => {
    const { code, stdout } = shimmy(["list", "--json"])
    expect(code).toBe(0)
    const models = JSON.parse(stdout) as Array<{ name: string; status: string }>
    expect(models.map((m) => m.name).sort()).toEqual(
      ["TinyStories-656K-Q4_0", "TinyStories-656K-Q8_0", "TinyStories-656K-f32", "llama-2-tiny-random", "stories260K"]
    )
  })

  it("generates a story from stories260K", () => {
    const { code, stdout } = shimmy([
      "generate",
      "--model",
      "stories260K",
      "--prompt",
      "Once upon a time",
      "--max-tokens",
      "30",
      "--temperature",
      "0"
    ])
    expect(code).toBe(0)
    expect(stdout.startsWith(", there was a little girl named Lily.")).toBe(true)
  })

  it("may leave out --model when one model is known, and reports timings with -v", () => {
    const { code, stdout, stderr } = shimmy(
      ["generate", "-p", "Once upon a time", "--max-tokens", "12", "--temperature", "0", "-v"],
      { SHIMMY_MODEL_PATHS: sharedModel("stories260K.gguf") }
    )
    expect(code).toBe(0)
    expect(stdout).toMatch(/^, there was a little girl/)
    expect(stderr).toMatch(/5 prompt \+ 12 completion tokens .* tokens\/s decode; finish: length/)
  })

  it("prints one clear line and exits non-zero for user mistakes", () => {
    const unknown = shimmy(["generate", "--model", "nope", "--prompt", "hi"])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr.trim()).toBe(
      "error: Model 'nope' is not available; available models: llama-2-tiny-random, stories260K, TinyStories-656K-f32, TinyStories-656K-Q4_0, TinyStories-656K-Q8_0"
    )
    const ambiguous = shimmy(["generate", "--prompt", "hi"])
    expect(ambiguous.code).toBe(1)
    expect(ambiguous.stderr).toMatch(/^error: several models are available, name one with --model/)
    const guarded = shimmy(["generate", "--model", "TinyStories-656K-Q4_0", "--prompt", "naïve"])
    expect(guarded.code).toBe(1)
    expect(guarded.stderr.trim()).toBe(`error: model 'TinyStories-656K-Q4_0' has no tokens for these characters: "ï"`)
    const bounds = shimmy(["generate", "--model", "stories260K", "--prompt", "hi", "--max-tokens", "0"])
    expect(bounds.code).toBe(1)
    expect(bounds.stderr).toMatch(/^error: max_tokens: /)
    for (const r of [unknown, ambiguous, guarded, bounds]) expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it("probes every model, and fails when one cannot load", () => {
    const all = shimmy(["probe"])
    expect(all.code).toBe(0)
    expect(all.stdout.split("\n").filter((l) => l.startsWith("ok "))).toHaveLength(5)
    expect(all.stdout).toMatch(/ok\s+stories260K: loaded in \d+ ms \(context 2048\), 16 tokens in \d+ ms: ", there was/)
    // what each model's chat template can do: these have none, so the generic template
    expect(all.stdout).toMatch(/stories260K: .*\n\s+chat template Generic: no tools, no thinking/)

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shimmy-probe-"))
    fs.writeFileSync(path.join(dir, "broken.gguf"), fs.readFileSync(sharedModel("stories260K.gguf")).subarray(0, 4096))
    const broken = shimmy(["probe", "broken", "--model-dirs", dir])
    expect(broken.code).toBe(1)
    expect(broken.stdout).toMatch(/^FAIL\s+broken: Model 'broken' could not be loaded: /)
  })

  it("reports diagnostics", () => {
    const { code, stdout } = shimmy(["diag"], { SHIMMY_THREADS: "1" })
    expect(code).toBe(0)
    expect(stdout).toMatch(/^node\s+v\d+/m)
    expect(stdout).toMatch(/^cpu\s+.*\(\d+ cores\)/m)
    expect(stdout).toMatch(/^threads\s+1 per context \(SHIMMY_THREADS=1, /m)
    expect(stdout).toMatch(/^llama\.cpp\s+\S+/m)
    // SHIMMY_GPU defaults to auto: node-llama-cpp's detection, the CPU where it finds no GPU
    const backend = /^backend\s+(\S+) \((.*)\)$/m.exec(stdout)
    expect(backend?.[2]).toMatch(/^auto: /)
    if (backend?.[1] === "cpu") expect(backend[2]).toContain("no usable CUDA, Vulkan or Metal device")
    else expect(backend?.[1]).toMatch(/^(cuda|vulkan|metal)$/)
    expect(stdout).toContain(`${SHARED_MODELS} (5 models)`)
    // libuv's pool has one thread (bin/shimmy.js) unless UV_THREADPOOL_SIZE says otherwise
    expect(stdout).toMatch(/^thread pool\s+1 \(UV_THREADPOOL_SIZE/m)
    expect(stdout).not.toMatch(/^warning\s/m)
    // more than one, under an OpenMP build decoding on 2 threads, is warned about
    const three = shimmy(["diag"], { UV_THREADPOOL_SIZE: "3", SHIMMY_THREADS: "2" }).stdout
    expect(three).toMatch(/^thread pool\s+3 \(/m)
    if (/^llama\.cpp\s.*OpenMP/m.test(three)) {
      expect(three).toMatch(/^warning\s+libuv's thread pool has 3 threads .*UV_THREADPOOL_SIZE=1/m)
    } else {
      expect(three).not.toMatch(/^warning\s/m)
    }
  })

  it("runs the llama.cpp build SHIMMY_BUILD chooses", async () => {
    const prebuilt = shimmy(["diag"], { SHIMMY_BUILD: "prebuilt" })
    expect(prebuilt.code).toBe(0)
    expect(prebuilt.stdout).toMatch(/^llama\.cpp\s+\S+ \(prebuilt build; SHIMMY_BUILD=prebuilt\)$/m)
    expect(prebuilt.stdout).toMatch(/^threads\s+.*prebuilt without OpenMP\)$/m)
    // `local` needs `npm run build:llama` (scripts/setup.sh runs it): the OpenMP build, or a refusal that says so
    const local = shimmy(["diag"], { SHIMMY_BUILD: "local" })
    if (await findLocalBuild()) {
      expect(local.code).toBe(0)
      expect(local.stdout).toMatch(/^llama\.cpp\s+\S+ \(local build, OpenMP; SHIMMY_BUILD=local\)$/m)
      // the default takes it on a machine without a GPU
      const auto = shimmy(["diag"])
      if (/^backend\s+cpu /m.test(auto.stdout)) expect(auto.stdout).toMatch(/\(local build, OpenMP; auto: /m)
    } else {
      expect(local.code).not.toBe(0)
      expect(local.stdout + local.stderr).toContain("SHIMMY_BUILD=local, but there is no local build")
    }
    const bad = shimmy(["diag"], { SHIMMY_BUILD: "fast" })
    expect(bad.code).not.toBe(0)
    expect(bad.stdout + bad.stderr).toContain("SHIMMY_BUILD")
  })

  it("has -V, --version and -h", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }
    expect(shimmy(["-V"]).stdout.trim()).toBe(pkg.version)
    expect(shimmy(["--version"]).stdout.trim()).toBe(pkg.version)
    const help = shimmy(["-h"])
    expect(help.code).toBe(0)
    for (const command of ["serve", "generate", "list", "probe", "diag"]) expect(help.stdout).toContain(command)
    expect(help.stdout).toContain("--verbose")
  })
})
