import { Deferred, Effect } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type { ModelInfo } from "../domain/Model.js"

/**
 * The sha256 of a model's files, as Ollama's API lists it. Hashing a 5 GB file takes many seconds,
 * so each file version (paths, sizes, mtimes) is hashed once, on the first request that needs it
 * (not in the background at start-up, which would read every model on every start), in the
 * service's scope: requests asking meanwhile wait for the same hash, and one that goes away does
 * not waste it. A blob of Ollama's own store is named by its digest, which is taken as is.
 */

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

const OLLAMA_BLOB = /^sha256-([0-9a-f]{64})$/

/** What a digest is of: the files with their sizes and modification times. */
const versionOf = (files: ReadonlyArray<string>) =>
  Effect.promise(() =>
    Promise.all(
      files.map((file) =>
        fs.promises.stat(file).then((s) => `${file}\0${s.size}\0${s.mtimeMs}`, () => `${file}\0missing`)
      )
    )
  ).pipe(Effect.map((parts) => parts.join("\0\0")))

/** The sha256 of the files' bytes one after the other, read as a stream (never whole in memory). */
const hashFiles = (files: ReadonlyArray<string>) =>
  Effect.tryPromise({
    try: async (signal) => {
      const hash = crypto.createHash("sha256")
      for (const file of files) {
        for await (const chunk of fs.createReadStream(file, { signal, highWaterMark: 1024 * 1024 })) {
          hash.update(chunk as Buffer)
        }
      }
      return hash.digest("hex")
    },
    catch: (cause) => new Error(`cannot read ${files.join(", ")}: ${describe(cause)}`)
  })

export class ModelDigest extends Effect.Service<ModelDigest>()("shimmy/ModelDigest", {
  scoped: Effect.gen(function*() {
    const scope = yield* Effect.scope
    // per model path: the version last hashed and its digest (a replaced file drops the old one)
    const digests = new Map<string, { readonly version: string; readonly digest: Deferred.Deferred<string> }>()
    let hashed = 0

    /** The model's sha256 in hex; a file that cannot be read has the digest of its name and version. */
    const of = Effect.fn("ModelDigest.of")(function*(model: ModelInfo) {
      const blob = model.files.length === 1 ? OLLAMA_BLOB.exec(path.basename(model.path)) : null
      if (blob !== null) return blob[1]!
      const version = yield* versionOf(model.files)
      const known = digests.get(model.path)
      if (known !== undefined && known.version === version) return yield* Deferred.await(known.digest)
      const digest = yield* Deferred.make<string>()
      digests.set(model.path, { version, digest })
      yield* hashFiles(model.files).pipe(
        Effect.tap(() => Effect.sync(() => hashed++)),
        // an unreadable file is listed as unusable by the registry; its digest need only be stable
        Effect.catchAll((e) =>
          Effect.as(
            Effect.logWarning(e.message),
            crypto.createHash("sha256").update(version).digest("hex")
          )
        ),
        Effect.flatMap((hex) => Deferred.succeed(digest, hex)),
        Effect.forkIn(scope)
      )
      return yield* Deferred.await(digest)
    })

    return {
      of,
      /** How many file versions have been hashed (diagnostics, tests). */
      hashed: Effect.sync(() => hashed)
    } as const
  })
}) {}
