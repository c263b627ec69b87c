import { Effect, Either, Option, Redacted, Stream } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { PullFailed } from "../domain/Errors.js"
import type { PullEvent } from "../domain/Pull.js"
import { checkMagic, download, verify } from "./Download.js"
import { choose, fetchFollowing, filesOf, type HubAccess, type HubFile, modelInfo, refusal } from "./Hub.js"
import { blobPath, io, link, lockPath, partialPath, repoFolder, withFileLock, writeRef } from "./HubCache.js"
import { parseReference, type Reference } from "./HubRef.js"
import { ModelRegistry } from "./ModelRegistry.js"
import { ShimmyConfig } from "./ShimmyConfig.js"

/**
 * `shimmy pull` and the pull endpoints: a reference resolved on the hub (or a plain URL), its
 * GGUF file(s) downloaded into the Hugging Face cache (a URL's into the models directory),
 * verified, linked where discovery finds them, and the registry rescanned. One pull of a file at a
 * time: a second pull of the same blob waits for the first (in this process by a semaphore, across
 * processes by a lock file) and then finds it done.
 */

type Emit = (event: PullEvent) => Effect.Effect<void>

export interface PullOptions {
  /** `--revision`: wins over an `@rev` in the reference */
  readonly revision?: string | undefined
}

const SPLIT = /-(\d{5})-of-(\d{5})\.gguf$/i

/** The name discovery gives a file: its base name without `.gguf` (and a split's part suffix). */
export const modelNameOf = (file: string) =>
  path.basename(file).replace(/\.gguf$/i, "").replace(/-\d{5}-of-\d{5}$/i, "")

const exists = (file: string) => Effect.promise(() => fs.stat(file).then((s) => s.size, () => undefined))

export class Puller extends Effect.Service<Puller>()("shimmy/Puller", {
  effect: Effect.gen(function*() {
    const config = yield* ShimmyConfig
    const registry = yield* ModelRegistry
    // ShimmyConfig has checked that HF_ENDPOINT is a URL
    const endpoint = new URL(config.hubEndpoint ?? "https://huggingface.co")
    // HF_TOKEN, else the token `huggingface-cli login` saved
    const saved = config.hubTokenFile === undefined
      ? ""
      : yield* Effect.promise(() => fs.readFile(config.hubTokenFile!, "utf8").then((t) => t.trim(), () => ""))
    const token = Option.orElse(
      config.hubToken ?? Option.none(),
      () => saved.length > 0 ? Option.some(Redacted.make(saved)) : Option.none()
    )
    const access: HubAccess = { endpoint, token }
    const cache = config.huggingFaceCache
    // one pull of a blob at a time in this process; the lock file covers other processes
    const locks = new Map<string, Effect.Semaphore>()
    const locked = <A, E>(key: string, lockFile: string, effect: Effect.Effect<A, E>) => {
      let semaphore = locks.get(key)
      if (semaphore === undefined) {
        semaphore = Effect.unsafeMakeSemaphore(1)
        locks.set(key, semaphore)
      }
      return semaphore.withPermits(1)(withFileLock(lockFile, effect))
    }

    /** Fetches one file into `final` through its partial, unless it is there already. */
    const fetchInto = (
      emit: Emit,
      file: { readonly url: URL; readonly what: string; readonly size: number | undefined; readonly sha256?: string },
      final: string,
      lockFile: string
    ) =>
      locked(
        final,
        lockFile,
        Effect.gen(function*() {
          const digest = file.sha256 !== undefined ? { digest: file.sha256 } : {}
          const have = yield* exists(final)
          if (have !== undefined && (file.size === undefined || have === file.size)) {
            yield* emit({ _tag: "Progress", file: file.what, ...digest, completed: have, total: have })
            return
          }
          const partial = partialPath(final)
          const got = yield* download(access, {
            url: file.url,
            partial,
            size: file.size,
            what: file.what,
            onProgress: (completed, total) =>
              emit({
                _tag: "Progress",
                file: file.what,
                ...digest,
                completed,
                ...(total !== undefined ? { total } : {})
              })
          })
          // what the hub publishes: the listing's sha256, else the LFS etag of the resolve answer
          const linked = got.first.get("x-linked-etag")?.replace(/^W\//, "").replace(/"/g, "")
          const expected = file.sha256 ?? (linked !== undefined && /^[0-9a-f]{64}$/i.test(linked) ? linked : undefined)
          yield* emit({ _tag: "Verifying", file: file.what, ...(expected !== undefined ? { digest: expected } : {}) })
          if (expected !== undefined) yield* verify({ partial, what: file.what }, expected, got.sha256)
          yield* checkMagic({ partial, what: file.what })
          yield* io(final, () => fs.rename(partial, final))
        })
      )

    /** The blob a hub file is stored under: its sha256, else the etag the hub answers with. */
    const blobName = (file: HubFile, url: URL) =>
      file.sha256 !== undefined
        ? Effect.succeed(file.sha256)
        : Effect.scoped(Effect.gen(function*() {
          const controller = yield* Effect.acquireRelease(
            Effect.sync(() => new AbortController()),
            (c) => Effect.sync(() => c.abort())
          )
          const { first, response } = yield* fetchFollowing(access, url, { method: "HEAD", signal: controller.signal })
          if (!response.ok) return yield* Effect.flatMap(refusal(access, response, file.path), Effect.fail)
          const etag = (first.get("x-linked-etag") ?? first.get("etag") ?? "").replace(/^W\//, "").replace(/"/g, "")
          if (etag.length === 0) {
            return yield* Effect.fail(
              new PullFailed({ kind: "upstream", reason: `${file.path}: the hub sent no ETag` })
            )
          }
          return etag
        }))

    const fromHub = (ref: Extract<Reference, { _tag: "Hub" }>, emit: Emit) =>
      Effect.gen(function*() {
        const info = yield* Effect.scoped(Effect.gen(function*() {
          const controller = yield* Effect.acquireRelease(
            Effect.sync(() => new AbortController()),
            (c) => Effect.sync(() => c.abort())
          )
          return yield* modelInfo(access, ref.repo, ref.revision, controller.signal)
        }))
        const commit = info.sha
        const chosen = yield* choose(ref.repo, filesOf(info), { file: ref.file, tag: ref.tag })
        yield* emit({
          _tag: "Resolved",
          source: ref.repo,
          revision: ref.revision,
          commit,
          files: chosen.map((f) => ({ path: f.path, ...(f.size !== undefined ? { size: f.size } : {}) }))
        })
        const folder = repoFolder(cache, ref.repo)
        const blobs: Array<string> = []
        for (const file of chosen) {
          const url = new URL(
            `${endpoint.pathname.replace(/\/$/, "")}/${ref.repo}/resolve/${commit}/${
              file.path.split("/").map(encodeURIComponent).join("/")
            }`,
            endpoint
          )
          const blob = yield* blobName(file, url)
          blobs.push(blob)
          yield* fetchInto(
            emit,
            { url, what: file.path, size: file.size, ...(file.sha256 !== undefined ? { sha256: file.sha256 } : {}) },
            blobPath(folder, blob),
            lockPath(cache, path.basename(folder), blob)
          )
        }
        // every part is verified before any is linked: a split model shows up whole or not at all
        const linked: Array<string> = []
        for (const [i, file] of chosen.entries()) linked.push(yield* link(folder, commit, file.path, blobs[i]!))
        yield* writeRef(folder, ref.revision, commit)
        return { files: linked, inRepo: chosen[0]!.path }
      })

    const fromUrl = (ref: Extract<Reference, { _tag: "Url" }>, emit: Emit) =>
      Effect.gen(function*() {
        // a URL of a split model's first part brings every part
        const split = SPLIT.exec(ref.file)
        const count = split !== null && Number(split[1]) === 1 ? Number(split[2]) : 1
        const parts = Array.from({ length: count }, (_, i) => {
          if (count === 1) return { url: ref.url, file: ref.file }
          const file = ref.file.replace(SPLIT, `-${String(i + 1).padStart(5, "0")}-of-${split![2]}.gguf`)
          return { url: new URL(ref.url.href.replace(encodeURIComponent(ref.file), encodeURIComponent(file))), file }
        })
        yield* emit({ _tag: "Resolved", source: ref.url.href, files: parts.map((p) => ({ path: p.file })) })
        const dir = path.resolve(config.modelsDir)
        yield* io(dir, () => fs.mkdir(dir, { recursive: true }))
        const files: Array<string> = []
        for (const part of parts) {
          const final = path.join(dir, part.file)
          // the partial `<file>.gguf.incomplete` does not end in .gguf: discovery passes it over
          yield* fetchInto(emit, { url: part.url, what: part.file, size: undefined }, final, `${final}.lock`)
          files.push(final)
        }
        return { files }
      })

    const run = (reference: string, options: PullOptions, emit: Emit) =>
      Effect.gen(function*() {
        const ref = yield* Either.match(parseReference(reference, endpoint, options.revision), {
          onLeft: Effect.fail,
          onRight: Effect.succeed
        })
        const { files, inRepo } = ref._tag === "Hub"
          ? yield* fromHub(ref, emit)
          : { ...yield* fromUrl(ref, emit), inRepo: undefined }
        yield* registry.refresh
        const model = modelNameOf(files[0]!)
        // the first place a name is found wins it: say so when another file has this one
        const listed = yield* Effect.option(registry.resolve(model))
        const shadowedBy = Option.isSome(listed) && listed.value.info.path !== files[0]!
          ? listed.value.info.path
          : undefined
        yield* emit({
          _tag: "Done",
          model,
          path: files[0]!,
          files,
          ...(shadowedBy !== undefined ? { shadowedBy } : {}),
          ...(ref._tag === "Hub" && inRepo !== undefined ? { alias: `hf.co/${ref.repo}/${inRepo}` } : {})
        })
      })

    /**
     * Pulls `reference`; the stream reports the progress and ends after `Done`. Interrupting it
     * (a client that went away) stops the download; the partial file stays for a resume.
     */
    const pull = (reference: string, options: PullOptions = {}): Stream.Stream<PullEvent, PullFailed> =>
      Stream.asyncScoped<PullEvent, PullFailed>((emit) =>
        Effect.forkScoped(
          run(reference, options, (event) => Effect.promise(() => emit.single(event))).pipe(
            Effect.matchCauseEffect({
              onFailure: (cause) => Effect.promise(() => emit.halt(cause)),
              onSuccess: () => Effect.promise(() => emit.end())
            })
          )
        ), 64)

    return { pull } as const
  })
}) {}
