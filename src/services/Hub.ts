import { Effect, Either, Option, Redacted, Schema } from "effect"
import { PullFailed } from "../domain/Errors.js"
import { HubError, HubModelInfo } from "../domain/Hub.js"

/**
 * The Hugging Face hub's HTTP API as `shimmy pull` uses it: the file list of a revision (with the
 * sizes and sha256 the hub publishes), the choice of the GGUF file(s) a reference means, and
 * requests that follow the hub's redirects to its CDN without carrying the token along.
 */

export interface HubAccess {
  /** `HF_ENDPOINT` (a mirror), else https://huggingface.co */
  readonly endpoint: URL
  /** `HF_TOKEN`: sent to the endpoint's origin only */
  readonly token: Option.Option<Redacted.Redacted>
}

export interface HubFile {
  /** the path in the repository */
  readonly path: string
  readonly size: number | undefined
  /** what the hub publishes for the file's LFS object; blobs are named by it */
  readonly sha256: string | undefined
}

export interface Fetched {
  readonly response: Response
  /** the first answer's headers (the hub's `X-Repo-Commit`, `X-Linked-Etag`, `X-Linked-Size`) */
  readonly first: Headers
}

const USER_AGENT = "shimmy (+https://github.com/; huggingface_hub compatible cache)"
const MAX_REDIRECTS = 10

const describe = (u: unknown): string => {
  if (u instanceof Error) {
    const cause = (u as Error & { cause?: unknown }).cause
    return cause instanceof Error ? `${u.message} (${cause.message})` : u.message
  }
  return String(u)
}

/**
 * `url` with redirects followed by hand: `Authorization` goes to the endpoint's origin only (a
 * CDN, or any other host a redirect names, never sees the token).
 */
export const fetchFollowing = (
  access: HubAccess,
  url: URL,
  init: { readonly method: "GET" | "HEAD"; readonly headers?: Record<string, string>; readonly signal: AbortSignal }
): Effect.Effect<Fetched, PullFailed> =>
  Effect.gen(function*() {
    let current = url
    let first: Headers | undefined
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const authorized = current.origin === access.endpoint.origin && Option.isSome(access.token)
      const headers: Record<string, string> = {
        "user-agent": USER_AGENT,
        ...init.headers,
        ...(authorized ? { authorization: `Bearer ${Redacted.value(Option.getOrThrow(access.token))}` } : {})
      }
      const target = current
      const response = yield* Effect.tryPromise({
        try: () => fetch(target, { method: init.method, headers, redirect: "manual", signal: init.signal }),
        catch: (e) => new PullFailed({ kind: "network", reason: `could not reach ${target.host}: ${describe(e)}` })
      })
      first ??= response.headers
      const location = response.headers.get("location")
      if (response.status >= 300 && response.status < 400 && location !== null) {
        yield* Effect.promise(() => response.body?.cancel().catch(() => undefined) ?? Promise.resolve())
        current = new URL(location, current)
        continue
      }
      return { response, first }
    }
    return yield* Effect.fail(
      new PullFailed({ kind: "upstream", reason: `${url.href} redirects more than ${MAX_REDIRECTS} times` })
    )
  })

/** The hub's `{"error": ...}` of a refusal, if it sent one. */
const errorText = (response: Response) =>
  Effect.promise(() => response.text().catch(() => "")).pipe(
    Effect.map((text) => {
      try {
        return Option.getOrUndefined(Schema.decodeUnknownOption(HubError)(JSON.parse(text)))?.error
      } catch {
        return undefined
      }
    })
  )

/** A refusal of the hub (or a file server) in words that say what to do. */
export const refusal = (access: HubAccess, response: Response, what: string): Effect.Effect<PullFailed> =>
  Effect.map(errorText(response), (said) => {
    const hub = said !== undefined ? ` (the server said: ${said})` : ""
    const code = response.headers.get("x-error-code")
    const hasToken = Option.isSome(access.token)
    switch (response.status) {
      case 401:
        return new PullFailed({
          kind: "unauthorized",
          reason: hasToken
            ? `${what}: the token in HF_TOKEN was refused (401)${hub}`
            : `${what} needs authentication (401): it is gated, private or does not exist; ` +
              `set HF_TOKEN to a Hugging Face access token${hub}`
        })
      case 403:
        return new PullFailed({
          kind: "forbidden",
          reason: `${what}: access denied (403); for a gated repository accept its conditions on the hub and ` +
            `${hasToken ? "check that HF_TOKEN may read it" : "set HF_TOKEN"}${hub}`
        })
      case 404:
        return new PullFailed({
          kind: "not_found",
          reason: code === "RevisionNotFound"
            ? `${what}: no such revision (404)${hub}`
            : code === "EntryNotFound"
            ? `${what}: no such file (404)${hub}`
            : `${what}: not found (404)${hub}`
        })
      default:
        return new PullFailed({ kind: "upstream", reason: `${what}: the server answered ${response.status}${hub}` })
    }
  })

/** The files of `repo` at `revision` and the commit it names. */
export const modelInfo = (access: HubAccess, repo: string, revision: string, signal: AbortSignal) =>
  Effect.gen(function*() {
    const url = new URL(
      `${access.endpoint.pathname.replace(/\/$/, "")}/api/models/${repo}/revision/${
        encodeURIComponent(revision)
      }?blobs=true`,
      access.endpoint
    )
    const { response } = yield* fetchFollowing(access, url, { method: "GET", signal })
    if (!response.ok) {
      return yield* Effect.flatMap(refusal(access, response, `repository ${repo}@${revision}`), Effect.fail)
    }
    const body = yield* Effect.tryPromise({
      try: () => response.json() as Promise<unknown>,
      catch: (e) =>
        new PullFailed({ kind: "upstream", reason: `the hub's answer for ${repo} is not JSON: ${describe(e)}` })
    })
    return yield* Schema.decodeUnknown(HubModelInfo)(body).pipe(
      Effect.mapError(() =>
        new PullFailed({ kind: "upstream", reason: `the hub's answer for ${repo} has no commit and file list` })
      )
    )
  })

const SPLIT = /-(\d{5})-of-(\d{5})\.gguf$/i
const QUANT = /(?:^|[-._/])((?:I?Q\d(?:_[A-Z0-9]+)*)|F16|BF16|F32|MXFP4(?:_MOE)?)(?=[-._/]|$)/gi

/** Quantizations tried, in order, when a reference names none (llama-server's and Ollama's default first). */
const PREFERRED = ["Q4_K_M", "Q4_K_S", "Q4_0", "Q5_K_M", "Q5_K_S", "Q6_K", "Q8_0"]

/** One model in a repository: a file, or the parts of a split one (first part first). */
interface Choice {
  readonly label: string
  readonly files: ReadonlyArray<HubFile>
}

const nameOf = (file: string) => file.replace(/\.gguf$/i, "").replace(/-\d{5}-of-\d{5}$/i, "")

const matchesTag = (label: string, tag: string) =>
  new RegExp(`(?:^|[-._/])${tag.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?:[-._/]|$)`, "i").test(label)

const quantsIn = (labels: ReadonlyArray<string>) => {
  const found = new Set<string>()
  for (const label of labels) for (const m of label.matchAll(QUANT)) found.add(m[1]!.toUpperCase())
  return [...found].sort()
}

/** The GGUF models of a listing: single files and split sets; vision projectors (`mmproj`) left out. */
const choices = (files: ReadonlyArray<HubFile>): ReadonlyArray<Choice> => {
  const byLabel = new Map<string, Array<HubFile>>()
  for (const file of [...files].sort((a, b) => a.path.localeCompare(b.path))) {
    if (!file.path.toLowerCase().endsWith(".gguf") || /mmproj/i.test(file.path)) continue
    const label = SPLIT.test(file.path) ? nameOf(file.path) : file.path.replace(/\.gguf$/i, "")
    byLabel.set(label, [...(byLabel.get(label) ?? []), file])
  }
  return [...byLabel].map(([label, parts]) => ({ label, files: parts }))
}

export const filesOf = (info: HubModelInfo): ReadonlyArray<HubFile> =>
  info.siblings.map((s) => ({
    path: s.rfilename,
    size: s.lfs?.size ?? s.size,
    sha256: s.lfs?.sha256 ?? s.lfs?.oid?.replace(/^sha256:/, "")
  }))

/**
 * The file(s) a reference means: the named file (with its other parts, if split), else the model
 * whose name has the tag, else Q4_K_M, the next of `PREFERRED`, or the first GGUF by name.
 */
export const choose = (
  repo: string,
  files: ReadonlyArray<HubFile>,
  wanted: { readonly file?: string | undefined; readonly tag?: string | undefined }
): Either.Either<ReadonlyArray<HubFile>, PullFailed> => {
  const models = choices(files)
  if (wanted.file !== undefined) {
    const file = files.find((f) => f.path === wanted.file)
    if (file === undefined) {
      return Either.left(
        new PullFailed({
          kind: "not_found",
          reason: `${repo} has no file ${wanted.file}; its GGUF files: ${
            files.filter((f) => f.path.toLowerCase().endsWith(".gguf")).map((f) => f.path).join(", ") || "(none)"
          }`
        })
      )
    }
    if (!SPLIT.test(file.path)) return Either.right([file])
    const label = nameOf(file.path)
    return Either.right(models.find((m) => m.label === label)?.files ?? [file])
  }
  if (models.length === 0) {
    const names = files.map((f) => f.path)
    return Either.left(
      new PullFailed({
        kind: "no_gguf",
        reason: `${repo} has no GGUF files; it has: ${names.slice(0, 20).join(", ") || "(nothing)"}${
          names.length > 20 ? `, and ${names.length - 20} more` : ""
        }`
      })
    )
  }
  if (wanted.tag !== undefined) {
    const tag = wanted.tag
    const found = models.find((m) => matchesTag(m.label, tag))
    if (found !== undefined) return Either.right(found.files)
    const quants = quantsIn(models.map((m) => m.label))
    return Either.left(
      new PullFailed({
        kind: "unknown_tag",
        reason: `${repo} has no GGUF file for the tag ${JSON.stringify(tag)}; ${
          quants.length > 0
            ? `its quantizations: ${quants.join(", ")}`
            : `its GGUF files: ${models.map((m) => m.files[0]!.path).join(", ")}`
        }`
      })
    )
  }
  for (const quant of PREFERRED) {
    const found = models.find((m) => matchesTag(m.label, quant))
    if (found !== undefined) return Either.right(found.files)
  }
  return Either.right(models[0]!.files)
}
