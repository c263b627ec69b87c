import { Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { chooseBuild, findLocalBuild, poolThreads, poolWarning } from "../src/services/LlamaRuntime.js"
import { freshDir } from "./support/env.js"

const LOCAL = "/x/localBuilds/linux-x64-abc"

/** chooseBuild with a GPU detection that records whether it was asked. */
const choose = async (
  setting: "auto" | "prebuilt" | "local",
  gpu: "auto" | "cuda" | "vulkan" | "metal" | "off",
  localBuild: string | undefined,
  found = false
) => {
  let asked = false
  const choice = await chooseBuild({
    setting,
    gpu,
    localBuild,
    gpuFound: () => {
      asked = true
      return Promise.resolve(found)
    }
  })
  return { ...choice, asked }
}

describe("chooseBuild (SHIMMY_BUILD)", () => {
  it("auto takes the local build on the CPU, the prebuilt one for a GPU or without a local build", async () => {
    expect(await choose("auto", "auto", LOCAL, false)).toMatchObject({ _tag: "Local", asked: true })
    expect(await choose("auto", "auto", LOCAL, true)).toMatchObject({
      _tag: "Prebuilt",
      reason: expect.stringContaining("found a GPU"),
      asked: true
    })
    // SHIMMY_GPU=off needs no detection
    expect(await choose("auto", "off", LOCAL)).toMatchObject({ _tag: "Local", asked: false })
    for (const gpu of ["cuda", "vulkan", "metal"] as const) {
      expect(await choose("auto", gpu, LOCAL)).toMatchObject({
        _tag: "Prebuilt",
        reason: `auto: SHIMMY_GPU=${gpu} needs a prebuilt GPU binary`,
        asked: false
      })
    }
    expect(await choose("auto", "auto", undefined)).toMatchObject({
      _tag: "Prebuilt",
      reason: expect.stringContaining("no local build"),
      asked: false
    })
  })

  it("prebuilt is always the prebuilt binary", async () => {
    for (const gpu of ["auto", "cuda", "off"] as const) {
      expect(await choose("prebuilt", gpu, LOCAL, false)).toMatchObject({ _tag: "Prebuilt", asked: false })
    }
  })

  it("local insists on the local build, and refuses without one or with a GPU asked for", async () => {
    expect(await choose("local", "auto", LOCAL, true)).toMatchObject({ _tag: "Local", asked: false })
    expect(await choose("local", "off", LOCAL)).toMatchObject({ _tag: "Local" })
    expect(await choose("local", "auto", undefined)).toMatchObject({
      _tag: "Refused",
      reason: expect.stringContaining("npm run build:llama")
    })
    expect(await choose("local", "cuda", LOCAL)).toMatchObject({
      _tag: "Refused",
      reason: expect.stringContaining("SHIMMY_GPU=cuda")
    })
  })
})

describe("findLocalBuild", () => {
  /** node-llama-cpp's `llama/` folder as `npm run build:llama` leaves it. */
  const llamaDir = (lastBuild: unknown, addonIn?: string, sources = true) => {
    const dir = freshDir("llama-build")
    if (sources) {
      // the clone `node-llama-cpp source download` makes
      fs.mkdirSync(path.join(dir, "llama.cpp", ".git"), { recursive: true })
      fs.mkdirSync(path.join(dir, "llama.cpp", "grammars"))
      fs.writeFileSync(path.join(dir, "llama.cpp.info.json"), "{}")
    }
    if (lastBuild !== undefined) {
      fs.writeFileSync(
        path.join(dir, "lastBuild.json"),
        typeof lastBuild === "string" ? lastBuild : JSON.stringify(lastBuild)
      )
    }
    if (addonIn !== undefined) {
      fs.mkdirSync(path.join(dir, "localBuilds", addonIn, "Release"), { recursive: true })
      fs.writeFileSync(path.join(dir, "localBuilds", addonIn, "Release", "llama-addon.node"), "")
    }
    return dir
  }

  it("finds the folder lastBuild.json names when its addon is there", async () => {
    const dir = llamaDir({ folderName: "linux-x64-abc" }, "linux-x64-abc")
    expect(await findLocalBuild(dir)).toBe(path.join(dir, "localBuilds", "linux-x64-abc"))
  })

  it("finds none without lastBuild.json, the addon or the sources, or with a folder name that leaves localBuilds", async () => {
    expect(await findLocalBuild(llamaDir(undefined, "linux-x64-abc"))).toBeUndefined()
    expect(await findLocalBuild(llamaDir({ folderName: "linux-x64-abc" }))).toBeUndefined()
    expect(await findLocalBuild(llamaDir({ folderName: "linux-x64-abc" }, "linux-x64-other"))).toBeUndefined()
    expect(await findLocalBuild(llamaDir({ folderName: "../linux-x64-abc" }, "linux-x64-abc"))).toBeUndefined()
    expect(await findLocalBuild(llamaDir({ folderName: 42 }, "linux-x64-abc"))).toBeUndefined()
    expect(await findLocalBuild(llamaDir("not json", "linux-x64-abc"))).toBeUndefined()
    expect(await findLocalBuild(llamaDir(null, "linux-x64-abc"))).toBeUndefined()
    // without its sources node-llama-cpp finds no grammars for it: JSON mode and tools would fail
    expect(await findLocalBuild(llamaDir({ folderName: "linux-x64-abc" }, "linux-x64-abc", false))).toBeUndefined()
  })

  it("looks in the node-llama-cpp this project installs by default", async () => {
    const found = await findLocalBuild()
    const own = path.resolve("node_modules/node-llama-cpp/llama")
    expect(found).toBe(await findLocalBuild(own))
  })
})

describe("poolThreads (UV_THREADPOOL_SIZE as libuv reads it)", () => {
  it("is 4 unset, the leading integer when set, 1 for 0 or none, at most 1024", () => {
    expect(poolThreads(undefined)).toBe(4)
    expect(poolThreads("1")).toBe(1)
    expect(poolThreads("3")).toBe(3)
    expect(poolThreads(" 8")).toBe(8)
    expect(poolThreads("6 threads")).toBe(6)
    expect(poolThreads("0")).toBe(1)
    expect(poolThreads("")).toBe(1)
    expect(poolThreads("many")).toBe(1)
    expect(poolThreads("5000")).toBe(1024)
    expect(poolThreads("-2")).toBe(1024)
  })
})

describe("poolWarning", () => {
  it("warns only for a pool of several threads under an OpenMP build decoding on several threads", () => {
    const warning = poolWarning(4, true, 2)
    expect(Option.isSome(warning)).toBe(true)
    expect(Option.getOrThrow(warning)).toContain("has 4 threads")
    expect(Option.getOrThrow(warning)).toContain("UV_THREADPOOL_SIZE=1")
    expect(Option.isNone(poolWarning(1, true, 2))).toBe(true)
    // the prebuilt binary starts its threads for each decode: no teams to fight
    expect(Option.isNone(poolWarning(4, false, 2))).toBe(true)
    // one thread a decode starts no OpenMP team
    expect(Option.isNone(poolWarning(4, true, 1))).toBe(true)
  })
})
