import { Effect } from "effect"
import { createHash, type Hash } from "node:crypto"
import { createReadStream } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { PullFailed } from "../domain/Errors.js"
import { fetchFollowing, type HubAccess, refusal } from "./Hub.js"
import { io } from "./HubCache.js"

/**
 * One file fetched into a partial file (`<blob>.incomplete`), resumed with `Range` from the
 * partial's size after an interruption (this run's or an earlier one's), hashed as it arrives.
 * A server that ignores `Range` (200) starts the file over; one that cuts the connection is asked
 * again from where it stopped, a few times, before the pull fails with the partial kept.
 */

export interface DownloadSpec {
  readonly url: URL
  readonly partial: string
  /** what the hub lists; else the response's length */
  readonly size: number | undefined
  /** the file's name in messages */
  readonly what: string
  readonly onProgress: (completed: number, total: number | undefined) => Effect.Effect<void>
}

export interface Downloaded {
  readonly sha256: string
  readonly size: number
  /** the first answer's headers (the hub's, before its redirect) */
  readonly first: Headers
}

const CUTS = 5
const PROGRESS_MS = 200

export const formatBytes = (n: number): string => {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let value = n
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`
}

const sizeOf = (file: string) => Effect.promise(() => fs.stat(file).then((s) => s.size, () => undefined))

const hashFile = (file: string, hash: Hash) =>
  io(file, () =>
    new Promise<void>((resolve, reject) => {
      const stream = createReadStream(file)
      stream.on("data", (chunk) => hash.update(chunk))
      stream.on("end", () => resolve())
      stream.on("error", reject)
    }))

const diskFull = (spec: DownloadSpec, needed: number, free?: number) =>
  new PullFailed({
    kind: "disk_full",
    reason: `the disk is full: ${spec.what} needs ${formatBytes(needed)} more${
      spec.size !== undefined ? ` (${formatBytes(spec.size)} in all)` : ""
    } in ${path.dirname(spec.partial)}${
      free !== undefined ? `, and ${formatBytes(free)} are free` : ""
    }; free some space and pull again (the download resumes)`
  })

const writeFailed = (spec: DownloadSpec, remaining: number) => (e: unknown) => {
  const code = (e as NodeJS.ErrnoException).code
  return code === "ENOSPC" || code === "EDQUOT"
    ? diskFull(spec, remaining)
    : new PullFailed({ kind: "upstream", reason: `could not write ${spec.partial}: ${String(e)}` })
}

/** Fails before a byte is fetched when the disk cannot hold what is left. */
const checkSpace = (spec: DownloadSpec, remaining: number) =>
  Effect.promise(() => fs.statfs(path.dirname(spec.partial)).then((s) => s.bavail * s.bsize, () => undefined)).pipe(
    Effect.flatMap((free) =>
      free !== undefined && free < remaining ? Effect.fail(diskFull(spec, remaining, free)) : Effect.void
    )
  )

type Attempt =
  | { readonly _tag: "Complete" }
  | { readonly _tag: "Cut"; readonly reason: string; readonly restarted: boolean }

export const download = (access: HubAccess, spec: DownloadSpec): Effect.Effect<Downloaded, PullFailed> =>
  Effect.gen(function*() {
    yield* io(path.dirname(spec.partial), () => fs.mkdir(path.dirname(spec.partial), { recursive: true }))
    let offset = (yield* sizeOf(spec.partial)) ?? 0
    let total = spec.size
    let hash = createHash("sha256")
    if (total !== undefined && offset > total) {
      yield* io(spec.partial, () => fs.truncate(spec.partial, 0))
      offset = 0
    }
    if (offset > 0) yield* hashFile(spec.partial, hash)
    let first: Headers | undefined
    let lastReport = 0
    const report = (force: boolean) => {
      const now = Date.now()
      if (!force && now - lastReport < PROGRESS_MS) return Effect.void
      lastReport = now
      return spec.onProgress(offset, total)
    }
    yield* report(true)

    const attempt = Effect.scoped(Effect.gen(function*() {
      const controller = yield* Effect.acquireRelease(
        Effect.sync(() => new AbortController()),
        (c) => Effect.sync(() => c.abort())
      )
      const fetched = yield* fetchFollowing(access, spec.url, {
        method: "GET",
        headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
        signal: controller.signal
      })
      first ??= fetched.first
      const response = fetched.response
      if (response.status === 416) {
        // the partial already holds every byte, or is not the file this server has
        const whole = Number(/\/(\d+)$/.exec(response.headers.get("content-range") ?? "")?.[1])
        if (whole === offset) return { _tag: "Complete" } satisfies Attempt
        yield* io(spec.partial, () => fs.truncate(spec.partial, 0))
        offset = 0
        hash = createHash("sha256")
        return { _tag: "Cut", reason: "the server refused the range asked for", restarted: false } satisfies Attempt
      }
      if (response.status !== 200 && response.status !== 206) {
        return yield* Effect.flatMap(refusal(access, response, spec.what), Effect.fail)
      }
      let restarted = false
      if (response.status === 206) {
        const start = Number(/^bytes (\d+)-/.exec(response.headers.get("content-range") ?? "")?.[1])
        if (start !== offset) {
          return yield* Effect.fail(
            new PullFailed({
              kind: "upstream",
              reason: `${spec.what}: the server sent bytes from ${start}, not ${offset}`
            })
          )
        }
      } else if (offset > 0) {
        // the server ignored Range and sends the whole file: start it over
        yield* io(spec.partial, () => fs.truncate(spec.partial, 0))
        offset = 0
        hash = createHash("sha256")
        restarted = true
      }
      const length = Number(response.headers.get("content-length") ?? Number.NaN)
      total ??= Number.isFinite(length) ? offset + length : undefined
      if (total !== undefined) yield* checkSpace(spec, total - offset)
      const handle = yield* Effect.acquireRelease(
        Effect.tryPromise({ try: () => fs.open(spec.partial, "a"), catch: writeFailed(spec, (total ?? 0) - offset) }),
        (h) => Effect.promise(() => h.close().catch(() => undefined))
      )
      const body = response.body
      if (body === null) return { _tag: "Complete" } satisfies Attempt
      const reader = body.getReader()
      for (;;) {
        const chunk = yield* Effect.either(Effect.tryPromise({ try: () => reader.read(), catch: (e) => e }))
        if (chunk._tag === "Left") {
          const cause = chunk.left instanceof Error ? chunk.left.message : String(chunk.left)
          return { _tag: "Cut", reason: cause, restarted } satisfies Attempt
        }
        if (chunk.right.done) return { _tag: "Complete" } satisfies Attempt
        const bytes = chunk.right.value
        yield* Effect.tryPromise({
          try: () => handle.write(bytes),
          catch: writeFailed(spec, (total ?? offset + bytes.length) - offset)
        })
        hash.update(bytes)
        offset += bytes.length
        yield* report(false)
      }
    }))

    let cuts = 0
    for (;;) {
      if (total !== undefined && offset === total && offset > 0) break
      const result = yield* attempt
      if (result._tag === "Complete") break
      cuts++
      if (result.restarted || cuts >= CUTS) {
        return yield* Effect.fail(
          new PullFailed({
            kind: "network",
            reason: `${spec.what}: the connection was cut after ${formatBytes(offset)}${
              total !== undefined ? ` of ${formatBytes(total)}` : ""
            } (${result.reason})${
              result.restarted
                ? "; the server does not resume downloads (it ignores Range)"
                : `, ${cuts} times; the partial download is kept: pull again to resume`
            }`
          })
        )
      }
      yield* Effect.sleep(100 * cuts)
    }
    yield* report(true)
    if (total !== undefined && offset !== total) {
      return yield* Effect.fail(
        new PullFailed({ kind: "upstream", reason: `${spec.what}: got ${offset} bytes, expected ${total}` })
      )
    }
    return { sha256: hash.digest("hex"), size: offset, first: first ?? new Headers() } satisfies Downloaded
  })

/** The bytes against the sha256 the hub publishes: a mismatch deletes the partial (it cannot be resumed). */
export const verify = (spec: { readonly partial: string; readonly what: string }, expected: string, actual: string) =>
  expected.toLowerCase() === actual
    ? Effect.void
    : Effect.zipRight(
      io(spec.partial, () => fs.rm(spec.partial, { force: true })),
      Effect.fail(
        new PullFailed({
          kind: "integrity",
          reason: `${spec.what}: the sha256 of the download is ${actual}, but the hub publishes ${expected}; ` +
            "the download was deleted: pull again"
        })
      )
    )

const MAGIC = Buffer.from("GGUF", "latin1")

/** A file that is not a GGUF (an HTML error page served with 200, say) is deleted, not linked. */
export const checkMagic = (spec: { readonly partial: string; readonly what: string }) =>
  Effect.gen(function*() {
    const head = yield* io(spec.partial, async () => {
      const handle = await fs.open(spec.partial, "r")
      try {
        const buffer = Buffer.alloc(4)
        const { bytesRead } = await handle.read(buffer, 0, 4, 0)
        return buffer.subarray(0, bytesRead)
      } finally {
        await handle.close()
      }
    })
    if (head.equals(MAGIC)) return
    yield* io(spec.partial, () => fs.rm(spec.partial, { force: true }))
    return yield* Effect.fail(
      new PullFailed({
        kind: "integrity",
        reason: `${spec.what} is not a GGUF file (it starts with ${JSON.stringify(head.toString("latin1"))}); ` +
          "the download was deleted"
      })
    )
  })
