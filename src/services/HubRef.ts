import { Either } from "effect"
import { PullFailed } from "../domain/Errors.js"

/**
 * What `shimmy pull` and the pull endpoints take: a Hugging Face repository (with a quantization
 * tag or a file in it), in the spellings of llama-server (`org/repo:Q4_K_M`), Ollama
 * (`hf.co/org/repo:Q4_K_M`) and the hub's own URLs, or any http(s) URL of a `.gguf` file.
 */
export type Reference =
  | {
    readonly _tag: "Hub"
    /** `org/repo` */
    readonly repo: string
    /** a branch, tag or commit; `main` unless given */
    readonly revision: string
    /** a quantization to match against the file names (`Q4_K_M`) */
    readonly tag?: string
    /** a file's path in the repository */
    readonly file?: string
  }
  | { readonly _tag: "Url"; readonly url: URL; readonly file: string }

const HUB_HOSTS = new Set(["huggingface.co", "www.huggingface.co", "hf.co"])
// the hub's rule for names: letters, digits, `-`, `_`, `.`, not starting or ending with `-` or `.`
const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$/
const REVISION = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/
const TAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/

const isGguf = (file: string) => file.toLowerCase().endsWith(".gguf")

const bad = (reference: string, why: string) =>
  Either.left(
    new PullFailed({
      kind: "bad_reference",
      reason: `${JSON.stringify(reference)} is not a model reference: ${why}. ` +
        "Use org/repo, org/repo:Q4_K_M, org/repo/file.gguf, hf.co/org/repo:Q4_K_M or an https URL of a .gguf file"
    })
  )

type Parsed = Either.Either<Reference, PullFailed>

/** `org/repo[@rev][:tag]` or `org/repo/path/file.gguf[@rev]`, without a host. */
const parsePath = (reference: string, text: string, revision: string | undefined): Parsed => {
  let rest = text
  let rev = revision
  const at = rest.indexOf("@")
  if (at >= 0) {
    // `@rev` may stand after the repository or at the end; a `:tag` may follow it
    const after = rest.slice(at + 1)
    const colon = after.indexOf(":")
    const given = colon >= 0 ? after.slice(0, colon) : after
    rest = rest.slice(0, at) + (colon >= 0 ? after.slice(colon) : "")
    if (rev === undefined) rev = given
    if (!REVISION.test(given)) return bad(reference, `the revision ${JSON.stringify(given)} is not valid`)
  }
  const segments = rest.split("/")
  if (segments.length < 2 || segments[0] === "" || segments[1] === "") {
    return bad(reference, "name a Hugging Face repository as org/repo (Shimmy does not pull from Ollama's registry)")
  }
  const [org = "", repoAndTag = "", ...file] = segments
  const colon = repoAndTag.indexOf(":")
  const repo = colon >= 0 ? repoAndTag.slice(0, colon) : repoAndTag
  const tag = colon >= 0 ? repoAndTag.slice(colon + 1) : undefined
  if (!NAME.test(org) || !NAME.test(repo)) {
    return bad(reference, `${JSON.stringify(`${org}/${repo}`)} is not a repository name`)
  }
  if (rev !== undefined && !REVISION.test(rev)) {
    return bad(reference, `the revision ${JSON.stringify(rev)} is not valid`)
  }
  const base = { _tag: "Hub" as const, repo: `${org}/${repo}`, revision: rev ?? "main" }
  if (file.length > 0) {
    if (tag !== undefined) return bad(reference, "give a quantization tag or a file, not both")
    const path = file.join("/")
    if (file.some((s) => s === "" || s === "." || s === "..")) return bad(reference, "the file path is not valid")
    if (!isGguf(path)) return bad(reference, `${JSON.stringify(path)} is not a .gguf file`)
    return Either.right({ ...base, file: path })
  }
  if (tag !== undefined) {
    if (!TAG.test(tag)) return bad(reference, `the tag ${JSON.stringify(tag)} is not valid`)
    // Ollama's `:latest` is what a name without a tag means
    return Either.right(tag.toLowerCase() === "latest" ? base : { ...base, tag })
  }
  return Either.right(base)
}

/** A URL: the hub's `/org/repo/resolve/<rev>/<file>` (or `blob/`) is the hub; anything else a plain file. */
const parseUrl = (reference: string, url: URL, endpoint: URL, revision: string | undefined): Parsed => {
  if (url.protocol !== "https:" && url.protocol !== "http:") return bad(reference, "only http(s) URLs can be pulled")
  const hub = HUB_HOSTS.has(url.hostname.toLowerCase()) || url.origin === endpoint.origin
  if (hub) {
    const segments = url.pathname.split("/").filter((s) => s.length > 0).map(decodeURIComponent)
    const [org, repo, kind, rev, ...file] = segments
    if (org !== undefined && repo !== undefined && (kind === "resolve" || kind === "blob") && rev !== undefined) {
      if (file.length === 0) return bad(reference, "the URL names no file")
      return parsePath(reference, `${org}/${repo}/${file.join("/")}`, revision ?? rev)
    }
    if (org !== undefined && repo !== undefined && kind === undefined) {
      return parsePath(reference, `${org}/${repo}`, revision)
    }
  }
  const file = decodeURIComponent(url.pathname.split("/").pop() ?? "")
  if (!isGguf(file) || file.length <= ".gguf".length) return bad(reference, "the URL does not name a .gguf file")
  return Either.right({ _tag: "Url", url, file })
}

/**
 * Parses a reference; `revision` (`--revision`) wins over an `@rev` in it. `endpoint` is the hub
 * (`HF_ENDPOINT`): its URLs are the hub's too.
 */
export const parseReference = (text: string, endpoint: URL, revision?: string): Parsed => {
  const reference = text.trim()
  if (reference.length === 0) return bad(text, "it is empty")
  if (/\s/.test(reference)) return bad(reference, "it contains spaces")
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(reference)) {
    let url: URL
    try {
      url = new URL(reference)
    } catch {
      return bad(reference, "it is not a valid URL")
    }
    return parseUrl(reference, url, endpoint, revision)
  }
  const host = /^(?:hf\.co|huggingface\.co|www\.huggingface\.co)\//i.exec(reference)
  return parsePath(reference, host !== null ? reference.slice(host[0].length) : reference, revision)
}

/** How a reference is written back (in messages and the name Ollama clients use). */
export const showReference = (ref: Reference): string =>
  ref._tag === "Url"
    ? ref.url.href
    : `${ref.repo}${ref.file !== undefined ? `/${ref.file}` : ref.tag !== undefined ? `:${ref.tag}` : ""}${
      ref.revision !== "main" ? `@${ref.revision}` : ""
    }`
