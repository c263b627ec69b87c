import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ModelRegistry } from "../src/services/ModelRegistry.js"
import { sharedModel, testConfigLayer } from "./support/models.js"

const STORIES = sharedModel("stories260K.gguf")
const TINY_Q8 = sharedModel("TinyStories-656K-Q8_0.gguf")
const RANDOM = sharedModel("llama-2-tiny-random.gguf")

/** Lays out a Hugging Face cache, an Ollama store, LM Studio and a plain directory under a temp root. */
const layout = () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "shimmy-registry-"))
  const mk = (...parts: Array<string>) => {
    const dir = path.join(root, ...parts)
    fs.mkdirSync(dir, { recursive: true })
    return dir
  }
  // Hugging Face: snapshots hold symlinks into blobs/; two revisions hold the same file
  const hfRepo = mk("hf", "models--karpathy--tinyllamas")
  mk("hf", "models--karpathy--tinyllamas", "blobs")
  fs.copyFileSync(STORIES, path.join(hfRepo, "blobs", "abc123"))
  for (const rev of ["rev1", "rev2"]) {
    const snap = mk("hf", "models--karpathy--tinyllamas", "snapshots", rev)
    fs.symlinkSync(path.join("..", "..", "blobs", "abc123"), path.join(snap, "hf-stories.gguf"))
  }
  // Ollama: a manifest naming a blob by digest
  mk("ollama", "blobs")
  fs.symlinkSync(RANDOM, path.join(root, "ollama", "blobs", "sha256-deadbeef"))
  const manifestDir = mk("ollama", "manifests", "registry.ollama.ai", "library", "tiny-random")
  fs.writeFileSync(
    path.join(manifestDir, "latest"),
    JSON.stringify({
      layers: [
        { mediaType: "application/vnd.ollama.image.license", digest: "sha256:0000" },
        { mediaType: "application/vnd.ollama.image.model", digest: "sha256:deadbeef" }
      ]
    })
  )
  // LM Studio: publisher/repo/file
  const lm = mk("lmstudio", "someone", "TinyStories-GGUF")
  fs.symlinkSync(TINY_Q8, path.join(lm, "lm-tiny-q8.gguf"))
  // a plain directory: a truncated GGUF, a text file named .gguf, a complete and an incomplete split
  const plain = mk("plain")
  const bytes = fs.readFileSync(STORIES)
  fs.writeFileSync(path.join(plain, "truncated.gguf"), bytes.subarray(0, 2000))
  fs.writeFileSync(path.join(plain, "notes.gguf"), "this is not a model\n")
  fs.copyFileSync(STORIES, path.join(plain, "whole-00001-of-00002.gguf"))
  fs.copyFileSync(STORIES, path.join(plain, "whole-00002-of-00002.gguf"))
  fs.copyFileSync(STORIES, path.join(plain, "partial-00001-of-00003.gguf"))
  return { root, plain }
}

const { root, plain } = layout()

const withStores = ModelRegistry.Default

const provide = <A, E>(effect: Effect.Effect<A, E, ModelRegistry>) =>
  effect.pipe(
    Effect.provide(withStores),
    Effect.provide(
      testConfigLayer({
        modelPaths: [plain],
        huggingFaceCache: path.join(root, "hf"),
        ollamaModels: path.join(root, "ollama"),
        lmStudioDirs: [path.join(root, "lmstudio")],
        discoverSystem: true
      })
    )
  )

describe("ModelRegistry", () => {
  it.effect("finds models in a Hugging Face cache, an Ollama store and LM Studio, without copying", () =>
    provide(Effect.gen(function*() {
      const registry = yield* ModelRegistry
      const models = yield* registry.list
      const byName = new Map(models.map((m) => [m.name, m]))

      const hf = byName.get("hf-stories")!
      expect(hf.source).toBe("huggingface")
      expect(hf.status).toBe("ok")
      // the snapshot's path, not the blob's: llama.cpp finds a split model's parts by the file's name
      expect(hf.path).toBe(
        path.join(root, "hf", "models--karpathy--tinyllamas", "snapshots", "rev1", "hf-stories.gguf")
      )
      // one entry although two snapshots link the same file
      expect(models.filter((m) => m.name === "hf-stories")).toHaveLength(1)

      const ollama = byName.get("tiny-random:latest")!
      expect(ollama.source).toBe("ollama")
      expect(ollama.path).toBe(RANDOM)
      expect(ollama.architecture).toBe("llama")

      const lm = byName.get("lm-tiny-q8")!
      expect(lm.source).toBe("lmstudio")
      expect(lm.quantization).toBe("Q8_0")
    })))

  it.effect("reads metadata from the GGUF header", () =>
    provide(Effect.gen(function*() {
      const registry = yield* ModelRegistry
      const stories = (yield* registry.resolve("hf-stories")).info
      expect(stories.architecture).toBe("llama")
      expect(stories.quantization).toBe("F32")
      expect(stories.contextLength).toBe(2048)
      expect(stories.parameters).toBeGreaterThan(250_000)
      expect(stories.parameters).toBeLessThan(300_000)
      expect(stories.chatTemplate).toBe(false)
      expect(stories.sizeBytes).toBe(fs.statSync(STORIES).size)
      // a split model is one model whose size is every part's
      const split = (yield* registry.resolve("whole")).info
      expect(split.status).toBe("ok")
      expect(split.files.map((f) => path.basename(f))).toEqual([
        "whole-00001-of-00002.gguf",
        "whole-00002-of-00002.gguf"
      ])
      expect(split.sizeBytes).toBe(2 * fs.statSync(STORIES).size)
    })))

  it.effect("lists corrupt files as unusable with a reason, and is not stopped by them", () =>
    provide(Effect.gen(function*() {
      const registry = yield* ModelRegistry
      const models = yield* registry.list
      const status = (name: string) => models.find((m) => m.name === name)
      expect(status("truncated")?.status).toBe("unusable")
      expect(status("truncated")?.reason).toMatch(/GGUF|truncated/)
      expect(status("notes")?.status).toBe("unusable")
      expect(status("notes")?.reason).toMatch(/GGUF/)
      expect(status("partial")?.status).toBe("unusable")
      expect(status("partial")?.reason).toMatch(/missing part\(s\) 2, 3 of 3/)
    })))

  it.effect("marks a vocabulary without byte fallback as guarded", () =>
    provide(Effect.gen(function*() {
      const registry = yield* ModelRegistry
      const lm = yield* registry.resolve("LM-TINY-Q8")
      expect(lm.info.status).toBe("guarded")
      expect(lm.vocabulary._tag).toBe("Guarded")
      const ok = yield* registry.resolve("hf-stories")
      expect(ok.vocabulary._tag).toBe("Safe")
    })))

  it.effect("looks names up case-insensitively, with Ollama's implicit :latest", () =>
    provide(Effect.gen(function*() {
      const registry = yield* ModelRegistry
      expect((yield* registry.resolve("HF-Stories")).info.name).toBe("hf-stories")
      expect((yield* registry.resolve("tiny-random")).info.name).toBe("tiny-random:latest")
      const missing = yield* Effect.exit(registry.resolve("no-such-model"))
      expect(Exit.isFailure(missing)).toBe(true)
      if (Exit.isFailure(missing)) {
        const error = missing.cause._tag === "Fail" ? missing.cause.error : undefined
        expect(error?._tag).toBe("ModelNotFound")
        expect(error?._tag === "ModelNotFound" && error.available).toContain("hf-stories")
      }
    })))

  it.effect("finds a model added after start-up, rescanning at most every 2 seconds", () =>
    provide(Effect.gen(function*() {
      const registry = yield* ModelRegistry
      fs.copyFileSync(STORIES, path.join(plain, "late-arrival.gguf"))
      // just scanned: a burst of unknown names does not rescan the disks
      expect((yield* Effect.flip(registry.resolve("late-arrival")))._tag).toBe("ModelNotFound")
      yield* TestClock.adjust("3 seconds")
      expect((yield* registry.resolve("late-arrival")).info.status).toBe("ok")
    })))

  it.effect("needs a name when several models are usable", () =>
    provide(Effect.gen(function*() {
      const registry = yield* ModelRegistry
      const error = yield* Effect.flip(registry.resolveDefault(Option.none()))
      expect(error._tag).toBe("InvalidRequest")
      expect(error.message).toMatch(/several models/)
    })))
})
