import { Clock, Duration, Effect, Option, SynchronizedRef } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { InvalidRequest, ModelNotFound } from "../domain/Errors.js"
import { ModelInfo, type ModelSource } from "../domain/Model.js"
import { type Candidate, fromHuggingFace, fromOllama, fromPaths } from "./Discovery.js"
import { GgufError, summarize, type VocabularyGuard } from "./Gguf.js"
import { hubAlias, hubNameOf } from "./HubAlias.js"
import { ShimmyConfig } from "./ShimmyConfig.js"

/** A discovered model with what the engine needs to use it safely. */
export interface RegisteredModel {
  readonly info: ModelInfo
  readonly vocabulary: VocabularyGuard
}

/** A place that was searched, and how many models it held. */
export interface SearchedLocation {
  readonly source: ModelSource
  readonly location: string
  readonly exists: boolean
  readonly models: number
}

interface Snapshot {
  readonly models: ReadonlyArray<RegisteredModel>
  readonly searched: ReadonlyArray<SearchedLocation>
}

const RESCAN_INTERVAL_MS = 2_000
const HEADER_TIMEOUT = Duration.seconds(10)

const unusableGuard: VocabularyGuard = { _tag: "Safe" }

/**
 * The Ollama name `x` means `x:latest`, and `x:latest` names a model `x` found without a tag
 * (Ollama clients list and ask for every model as `name:tag`).
 */
const lookupKeys = (name: string): ReadonlyArray<string> => {
  const lower = name.toLowerCase()
  if (!lower.includes(":")) return [lower, `${lower}:latest`]
  return lower.endsWith(":latest") ? [lower, lower.slice(0, -":latest".length)] : [lower]
}

export class ModelRegistry extends Effect.Service<ModelRegistry>()("shimmy/ModelRegistry", {
  effect: Effect.gen(function*() {
    const config = yield* ShimmyConfig
    // headers are read once per file version, however often the directories are rescanned
    const headers = new Map<string, RegisteredModel | null>()

    const register = (candidate: Candidate) =>
      Effect.gen(function*() {
        const first = candidate.files[0]!
        const sizes = yield* Effect.forEach(candidate.files, (f) =>
          Effect.promise(() => fs.stat(f).then((s) => ({ size: s.size, mtime: s.mtimeMs }), () => undefined)))
        const sizeBytes = sizes.reduce((total, s) =>
          total + (s?.size ?? 0), 0)
        const key = `${candidate.name}\0${candidate.source}\0${candidate.files.join("\0")}\0${
          sizes.map((s) => `${s?.size}:${s?.mtime}`).join(",")
        }`
        if (headers.has(key)) return headers.get(key)!
        const base = { name: candidate.name, path: first, files: candidate.files, source: candidate.source, sizeBytes }
        const problem = candidate.problem ?? (sizes[0] === undefined ? "file is missing" : undefined)
        const registered: RegisteredModel | null = problem !== undefined
          ? {
            info: new ModelInfo({ ...base, status: "unusable", reason: problem, chatTemplate: false }),
            vocabulary: unusableGuard
          }
          : yield* summarize(first).pipe(
            // the reader is bounded by the file's size; this bounds a disk that stops answering
            Effect.timeoutFail({
              duration: HEADER_TIMEOUT,
              onTimeout: () =>
                new GgufError({ reason: `its header could not be read within ${Duration.format(HEADER_TIMEOUT)}` })
            }),
            Effect.map((s): RegisteredModel => ({
              info: new ModelInfo({
                ...base,
                status: s.vocabulary._tag === "Guarded" ? "guarded" : "ok",
                ...(s.vocabulary._tag === "Guarded"
                  ? { reason: "vocabulary has no byte-fallback tokens; input is limited to characters it can tokenize" }
                  : {}),
                ...(s.architecture !== undefined ? { architecture: s.architecture } : {}),
                ...(s.displayName !== undefined ? { displayName: s.displayName } : {}),
                ...(s.parameters !== undefined ? { parameters: s.parameters } : {}),
                ...(s.quantization !== undefined ? { quantization: s.quantization } : {}),
                ...(s.contextLength !== undefined ? { contextLength: s.contextLength } : {}),
                chatTemplate: s.chatTemplate
              }),
              vocabulary: s.vocabulary
            })),
            Effect.catchTag("NotAModel", () => Effect.succeed(null)),
            Effect.catchTag("GgufError", (e) =>
              Effect.succeed<RegisteredModel>({
                info: new ModelInfo({ ...base, status: "unusable", reason: e.reason, chatTemplate: false }),
                vocabulary: unusableGuard
              }))
          )
        headers.set(key, registered)
        return registered
      })

    const scan = Effect.gen(function*() {
      const locations: Array<{ source: ModelSource; location: string; find: Effect.Effect<ReadonlyArray<Candidate>> }> =
        [
          ...config.modelPaths.map((p) => ({
            source: "path" as const,
            location: path.resolve(p),
            find: fromPaths([p], "path")
          })),
          {
            source: "models-dir",
            location: path.resolve(config.modelsDir),
            find: fromPaths([config.modelsDir], "models-dir")
          }
        ]
      if (config.discoverSystem) {
        locations.push({
          source: "huggingface",
          location: config.huggingFaceCache,
          find: fromHuggingFace(config.huggingFaceCache)
        })
        locations.push({ source: "ollama", location: config.ollamaModels, find: fromOllama(config.ollamaModels) })
        for (const dir of config.lmStudioDirs) {
          locations.push({ source: "lmstudio", location: dir, find: fromPaths([dir], "lmstudio") })
        }
      }
      const models: Array<RegisteredModel> = []
      const names = new Set<string>()
      const searched: Array<SearchedLocation> = []
      for (const { find, location, source } of locations) {
        const exists = yield* Effect.promise(() => fs.access(location).then(() => true, () => false))
        let count = 0
        for (const found of yield* find) {
          // the first place a name is found wins: explicit paths before ./models before the stores;
          // a Hugging Face file whose name is taken is still listed, by its `hf.co/org/repo/file` name
          const renamed = names.has(found.name.toLowerCase()) && found.source === "huggingface"
            ? hubNameOf(found.files[0]!)
            : undefined
          const candidate = renamed !== undefined ? { ...found, name: renamed } : found
          if (names.has(candidate.name.toLowerCase())) continue
          const registered = yield* register(candidate)
          if (registered === null) continue
          names.add(candidate.name.toLowerCase())
          models.push(registered)
          count++
        }
        searched.push({ source, location, exists, models: count })
      }
      return { models, searched } satisfies Snapshot
    }).pipe(Effect.withSpan("ModelRegistry.scan"))

    const snapshot = yield* SynchronizedRef.make(yield* scan)
    let scannedAt = yield* Clock.currentTimeMillis

    const find = (snap: Snapshot, name: string) => {
      const keys = lookupKeys(name)
      // `hf.co/org/repo:tag`, the name an Ollama client pulled a model by, means the file it pulled
      return Option.fromNullable(
        snap.models.find((m) => keys.includes(m.info.name.toLowerCase())) ?? hubAlias(name, snap.models)
      )
    }

    const refresh = SynchronizedRef.updateAndGetEffect(
      snapshot,
      () => scan.pipe(Effect.tap(() => Clock.currentTimeMillis.pipe(Effect.map((now) => (scannedAt = now)))))
    )

    // a burst of requests for unknown names (or for the list) rescans the disks at most once per
    // interval; a rescan stats every file and reads only the headers of changed ones, each bounded
    const refreshIfStale = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      return now - scannedAt < RESCAN_INTERVAL_MS ? yield* SynchronizedRef.get(snapshot) : yield* refresh
    })

    // a file deleted or replaced since the last scan is not listed as it was
    const list = refreshIfStale.pipe(Effect.map((s) => s.models.map((m) => m.info)))

    /** Finds a model by name, case-insensitively; rescans (at most every 2 s) before giving up. */
    const resolve = Effect.fn("ModelRegistry.resolve")(function*(name: string) {
      const found = find(yield* SynchronizedRef.get(snapshot), name)
      if (Option.isSome(found)) return found.value
      const rescanned = yield* refreshIfStale
      return yield* Option.match(find(rescanned, name), {
        onSome: Effect.succeed,
        onNone: () =>
          Effect.fail(new ModelNotFound({ model: name, available: rescanned.models.map((m) => m.info.name) }))
      })
    })

    /** The named model, or the only usable one when no name is given. */
    const resolveDefault = Effect.fn("ModelRegistry.resolveDefault")(function*(name: Option.Option<string>) {
      if (Option.isSome(name)) return yield* resolve(name.value)
      const usable = (yield* SynchronizedRef.get(snapshot)).models.filter((m) => m.info.status !== "unusable")
      if (usable.length === 1) return usable[0]!
      return yield* Effect.fail(
        new InvalidRequest({
          param: "model",
          reason: usable.length === 0
            ? "no usable model was found; put GGUF files in ./models or set SHIMMY_MODEL_PATHS"
            : `several models are available, name one with --model: ${usable.map((m) => m.info.name).join(", ")}`
        })
      )
    })

    return {
      /** Every discovered model, usable or not, in discovery order. */
      list,
      /** Where models were looked for, with counts. */
      searched: SynchronizedRef.get(snapshot).pipe(Effect.map((s) => s.searched)),
      refresh: Effect.asVoid(refresh),
      resolve,
      resolveDefault
    } as const
  })
}) {}
