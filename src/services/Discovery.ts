import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import type { ModelSource } from "../domain/Model.js"

/** A model file (or the parts of a split model) found on disk, before its header is read. */
export interface Candidate {
  readonly name: string
  readonly source: ModelSource
  /** first part first; every file resolved to its real path */
  readonly files: ReadonlyArray<string>
  /** why it cannot be used even before reading it (a missing split part) */
  readonly problem?: string
}

const SPLIT = /^(.*)-(\d{5})-of-(\d{5})$/
const MAX_DEPTH = 6

const isGguf = (name: string) => name.toLowerCase().endsWith(".gguf")
const stripGguf = (name: string) => name.slice(0, -".gguf".length)

const exists = (p: string) =>
  Effect.promise(() =>
    fs.stat(p).then(
      (s) => s,
      () => undefined
    )
  )

const realpath = (p: string) => Effect.promise(() => fs.realpath(p).catch(() => p))

/** Every `.gguf` file below `dir` (symlinks followed, depth bounded), sorted. */
const walk = (dir: string, depth = 0): Effect.Effect<ReadonlyArray<string>> =>
  Effect.gen(function*() {
    if (depth > MAX_DEPTH) return []
    const entries = yield* Effect.promise(() => fs.readdir(dir, { withFileTypes: true }).catch(() => []))
    const found: Array<string> = []
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith(".")) continue
      const full = path.join(dir, entry.name)
      const stat = entry.isSymbolicLink() ? yield* exists(full) : entry
      if (stat === undefined) continue
      if (stat.isDirectory()) {
        for (const file of yield* walk(full, depth + 1)) found.push(file)
      } else if (stat.isFile() && isGguf(entry.name)) found.push(full)
    }
    return found
  })

/**
 * Groups split parts (`x-00001-of-00003.gguf`) into one candidate named `x`. `resolve` says whether
 * files are named by their real paths; the Hugging Face cache keeps its snapshot paths instead.
 */
const group = (
  files: ReadonlyArray<string>,
  source: ModelSource,
  resolve: (file: string) => Effect.Effect<string> = realpath
): Effect.Effect<ReadonlyArray<Candidate>> =>
  Effect.gen(function*() {
    const candidates: Array<Candidate> = []
    const splits = new Map<string, { total: number; parts: Map<number, string> }>()
    for (const file of files) {
      const base = stripGguf(path.basename(file))
      const split = SPLIT.exec(base)
      if (split === null) {
        candidates.push({ name: base, source, files: [yield* resolve(file)] })
        continue
      }
      const key = path.join(path.dirname(file), split[1]!)
      const entry = splits.get(key) ?? { total: Number(split[3]), parts: new Map<number, string>() }
      entry.parts.set(Number(split[2]), yield* resolve(file))
      splits.set(key, entry)
    }
    for (const [key, { parts, total }] of splits) {
      const ordered = [...parts].sort((a, b) => a[0] - b[0]).map(([, file]) => file)
      const missing = Array.from({ length: total }, (_, i) => i + 1).filter((n) => !parts.has(n))
      candidates.push({
        name: path.basename(key),
        source,
        files: ordered,
        ...(missing.length > 0 || !parts.has(1)
          ? { problem: `split model is missing part(s) ${missing.join(", ")} of ${total}` }
          : {})
      })
    }
    return candidates
  })

/** Explicit files or directories (`SHIMMY_MODEL_PATHS`, `--model-dirs`, `./models`). */
export const fromPaths = (paths: ReadonlyArray<string>, source: ModelSource) =>
  Effect.gen(function*() {
    const files: Array<string> = []
    for (const p of paths) {
      const stat = yield* exists(p)
      if (stat?.isDirectory()) {
        for (const file of yield* walk(p)) files.push(file)
      } else if (stat?.isFile()) files.push(path.resolve(p))
    }
    return yield* group(files, source)
  })

/**
 * The Hugging Face hub cache: `models--org--repo/snapshots/<revision>/**.gguf`, symlinks into
 * `blobs/`. A file in several revisions is listed once. Files keep their snapshot paths: a blob is
 * named by its sha256, and llama.cpp finds a split model's other parts by the first part's name
 * (`x-00001-of-00003.gguf`), refusing `blobs/<sha256>` ("invalid split file name").
 */
export const fromHuggingFace = (hub: string) =>
  Effect.gen(function*() {
    const repos = yield* Effect.promise(() => fs.readdir(hub).catch(() => [] as Array<string>))
    const files: Array<string> = []
    for (const repo of repos.filter((r) => r.startsWith("models--")).sort()) {
      const snapshots = path.join(hub, repo, "snapshots")
      const seen = new Set<string>()
      for (const file of yield* walk(snapshots)) {
        const relative = path.relative(snapshots, file).split(path.sep).slice(1).join("/")
        if (seen.has(relative)) continue
        seen.add(relative)
        files.push(file)
      }
    }
    return yield* group(files, "huggingface", (file) => Effect.succeed(file))
  })

interface OllamaManifest {
  readonly layers?: ReadonlyArray<{ readonly mediaType?: string; readonly digest?: string }>
}

/**
 * The Ollama store: `manifests/<host>/<namespace>/<model>/<tag>` JSON files whose model layer
 * names a GGUF blob in `blobs/sha256-<hex>`. Named `model:tag` (`namespace/model:tag` outside
 * `library`, with the host outside registry.ollama.ai).
 */
export const fromOllama = (root: string) =>
  Effect.gen(function*() {
    const manifests = path.join(root, "manifests")
    const candidates: Array<Candidate> = []
    const walkManifests = (dir: string, depth: number): Effect.Effect<ReadonlyArray<string>> =>
      Effect.gen(function*() {
        const entries = yield* Effect.promise(() => fs.readdir(dir, { withFileTypes: true }).catch(() => []))
        const found: Array<string> = []
        for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
          const full = path.join(dir, entry.name)
          if (entry.isDirectory() && depth < 4) {
            for (const file of yield* walkManifests(full, depth + 1)) found.push(file)
          } else if (entry.isFile() && depth === 3) found.push(full)
        }
        return found
      })
    for (const manifest of yield* walkManifests(manifests, 0)) {
      const [host, namespace, model, tag] = path.relative(manifests, manifest).split(path.sep)
      const prefix = host === "registry.ollama.ai"
        ? (namespace === "library" ? "" : `${namespace}/`)
        : `${host}/${namespace}/`
      const name = `${prefix}${model}:${tag}`
      const text = yield* Effect.promise(() => fs.readFile(manifest, "utf8").catch(() => ""))
      let parsed: OllamaManifest | undefined
      try {
        parsed = JSON.parse(text) as OllamaManifest
      } catch {
        parsed = undefined
      }
      const layer = parsed?.layers?.find((l) => l.mediaType === "application/vnd.ollama.image.model")
      if (layer?.digest === undefined) {
        candidates.push({ name, source: "ollama", files: [manifest], problem: "Ollama manifest names no model layer" })
        continue
      }
      const blob = yield* realpath(path.join(root, "blobs", layer.digest.replace(":", "-")))
      candidates.push({ name, source: "ollama", files: [blob] })
    }
    return candidates
  })
