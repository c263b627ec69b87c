import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { chooseBuild, findLocalBuild } from "../src/services/LlamaRuntime.js"
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
