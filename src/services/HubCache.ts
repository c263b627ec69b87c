import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { PullFailed } from "../domain/Errors.js"

/**
 * The Hugging Face cache layout, as huggingface_hub writes it, so other tools share the files:
 * `models--org--repo/blobs/<sha256>` holds the bytes (`<sha256>.incomplete` while they arrive),
 * `snapshots/<commit>/<file>` is a relative symlink to the blob, `refs/<revision>` names the
 * commit. Discovery walks `snapshots/` only, and a file is linked there once it is verified, so a
 * half-written download is never found as a model.
 */

export const repoFolder = (cache: string, repo: string) => path.join(cache, `models--${repo.split("/").join("--")}`)

export const blobPath = (folder: string, blob: string) => path.join(folder, "blobs", blob)

export const partialPath = (blob: string) => `${blob}.incomplete`

export const snapshotPath = (folder: string, commit: string, file: string) =>
  path.join(folder, "snapshots", commit, ...file.split("/"))

/** Where the lock of a blob is: beside the cache's repositories, as huggingface_hub keeps its own. */
export const lockPath = (cache: string, repoFolderName: string, blob: string) =>
  path.join(cache, ".locks", repoFolderName, `${blob}.lock`)

/**
 * A file-system step of a pull, its failure typed: a full disk says so, anything else (a cache
 * that cannot be written) names the path and the system's error.
 */
export const io = <A>(target: string, what: () => Promise<A>): Effect.Effect<A, PullFailed> =>
  Effect.tryPromise({
    try: what,
    catch: (e) => {
      const code = (e as NodeJS.ErrnoException).code
      return code === "ENOSPC" || code === "EDQUOT"
        ? new PullFailed({ kind: "disk_full", reason: `the disk is full: ${target} could not be written` })
        : new PullFailed({
          kind: "storage",
          reason: `the download could not be stored at ${target}: ${e instanceof Error ? e.message : String(e)}`
        })
    }
  })

/** `snapshots/<commit>/<file>` pointing at its blob by a relative link (replaced if there is one). */
export const link = (folder: string, commit: string, file: string, blob: string) =>
  io(snapshotPath(folder, commit, file), async () => {
    const target = snapshotPath(folder, commit, file)
    await fs.mkdir(path.dirname(target), { recursive: true })
    const relative = path.relative(path.dirname(target), blobPath(folder, blob))
    const temporary = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.link`)
    await fs.rm(temporary, { force: true })
    await fs.symlink(relative, temporary)
    // a rename replaces the old link at once: discovery sees the old one or the new one
    await fs.rename(temporary, target)
    return target
  })

/** `refs/<revision>` holding the commit (huggingface_hub writes none when the revision is the commit). */
export const writeRef = (folder: string, revision: string, commit: string) =>
  revision === commit
    ? Effect.void
    : io(path.join(folder, "refs", ...revision.split("/")), async () => {
      const ref = path.join(folder, "refs", ...revision.split("/"))
      await fs.mkdir(path.dirname(ref), { recursive: true })
      await fs.writeFile(ref, commit)
    })

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const POLL_MS = 250

/**
 * Holds `lock` (a file made with O_EXCL, holding the owner's pid) while `effect` runs: another
 * process pulling the same blob waits. A lock whose owner is gone is taken over.
 */
export const withFileLock = <A, E, R>(
  lock: string,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | PullFailed, R> =>
  Effect.acquireUseRelease(
    Effect.gen(function*() {
      yield* io(path.dirname(lock), () => fs.mkdir(path.dirname(lock), { recursive: true }))
      for (;;) {
        const taken = yield* io(lock, () =>
          fs.writeFile(lock, String(process.pid), { flag: "wx" }).then(() =>
            true, (e: NodeJS.ErrnoException) => {
            if (e.code !== "EEXIST") throw e
            return false
          }))
        if (taken) {
          return
        }
        const text = yield* io(lock, () =>
          fs.readFile(lock, "utf8").catch(() => ""))
        // an empty lock is one being written this moment: wait for its pid
        const owner = Number(text)
        if (text.length > 0 && (!Number.isInteger(owner) || owner <= 0 || !alive(owner))) {
          yield* io(lock, () => fs.rm(lock, { force: true }))
          continue
        }
        yield* Effect.sleep(POLL_MS)
      }
    }),
    () => effect,
    () => Effect.promise(() => fs.rm(lock, { force: true }).catch(() => undefined))
  )
