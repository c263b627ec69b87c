import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { choose, type HubFile } from "../src/services/Hub.js"
import { parseReference } from "../src/services/HubRef.js"

/** The references `shimmy pull` takes, and the file(s) each one means in a repository's listing. */

const HUB = new URL("https://huggingface.co")
const ok = (text: string, revision?: string) => {
  const parsed = parseReference(text, HUB, revision)
  if (Either.isLeft(parsed)) throw new Error(parsed.left.reason)
  return parsed.right
}
const refused = (text: string) => {
  const parsed = parseReference(text, HUB)
  if (Either.isRight(parsed)) throw new Error(`${text} was accepted`)
  expect(parsed.left.kind).toBe("bad_reference")
  return parsed.left.reason
}

describe("parseReference", () => {
  it("reads llama-server's, Ollama's and the hub's spellings", () => {
    expect(ok("org/repo")).toEqual({ _tag: "Hub", repo: "org/repo", revision: "main" })
    expect(ok("org/repo:Q4_K_M")).toEqual({ _tag: "Hub", repo: "org/repo", revision: "main", tag: "Q4_K_M" })
    expect(ok("hf.co/org/repo:q8_0")).toEqual({ _tag: "Hub", repo: "org/repo", revision: "main", tag: "q8_0" })
    expect(ok("huggingface.co/org/repo:latest")).toEqual({ _tag: "Hub", repo: "org/repo", revision: "main" })
    expect(ok("org/repo/sub/dir/model-Q4_0.gguf")).toEqual({
      _tag: "Hub",
      repo: "org/repo",
      revision: "main",
      file: "sub/dir/model-Q4_0.gguf"
    })
    expect(ok("https://huggingface.co/org/repo/resolve/v1.0/model.gguf?download=true")).toEqual({
      _tag: "Hub",
      repo: "org/repo",
      revision: "v1.0",
      file: "model.gguf"
    })
    expect(ok("https://huggingface.co/org/repo/blob/main/model.gguf")).toMatchObject({ file: "model.gguf" })
    expect(ok("https://hf.co/org/repo")).toEqual({ _tag: "Hub", repo: "org/repo", revision: "main" })
    const plain = ok("https://example.com/models/tiny%20one.gguf")
    expect(plain._tag === "Url" && plain.file).toBe("tiny one.gguf")
  })

  it("takes a revision as @rev (after the repo or at the end) or --revision, which wins", () => {
    expect(ok("org/repo@dev:Q4_K_M")).toEqual({ _tag: "Hub", repo: "org/repo", revision: "dev", tag: "Q4_K_M" })
    expect(ok("org/repo:Q4_K_M@dev")).toEqual({ _tag: "Hub", repo: "org/repo", revision: "dev", tag: "Q4_K_M" })
    expect(ok("org/repo/model.gguf@abc123")).toMatchObject({ revision: "abc123", file: "model.gguf" })
    expect(ok("org/repo@dev", "main")).toMatchObject({ revision: "main" })
    expect(ok("org/repo", "refs/pr/1")).toMatchObject({ revision: "refs/pr/1" })
  })

  it("refuses what is not a reference, saying why", () => {
    expect(refused("")).toMatch(/it is empty/)
    expect(refused("llama3.2")).toMatch(/name a Hugging Face repository as org\/repo/)
    expect(refused("org/repo/README.md")).toMatch(/"README.md" is not a .gguf file/)
    expect(refused("org/repo:Q4/x.gguf")).toMatch(/a quantization tag or a file, not both/)
    expect(refused("org/../x.gguf")).toMatch(/is not a repository name|not valid/)
    expect(refused("org/repo/../x.gguf")).toMatch(/the file path is not valid/)
    expect(refused("ftp://host/x.gguf")).toMatch(/only http\(s\) URLs/)
    expect(refused("https://example.com/x.bin")).toMatch(/does not name a .gguf file/)
    expect(refused("org/re po")).toMatch(/contains spaces/)
  })
})

const files = (...paths: ReadonlyArray<string>): ReadonlyArray<HubFile> =>
  paths.map((path) => ({ path, size: 1, sha256: undefined }))
const chosen = (listing: ReadonlyArray<HubFile>, wanted: { file?: string; tag?: string } = {}) =>
  choose("org/repo", listing, wanted)

describe("choose", () => {
  const repo = files(
    "README.md",
    "m-Q2_K.gguf",
    "m-Q4_K_M.gguf",
    "m-Q8_0.gguf",
    "mmproj-m-f16.gguf",
    "big/m-F16-00001-of-00002.gguf",
    "big/m-F16-00002-of-00002.gguf"
  )
  it("picks Q4_K_M by default, else the preferred order, else the first GGUF by name (never an mmproj)", () => {
    expect(chosen(repo)).toEqual(Either.right(files("m-Q4_K_M.gguf")))
    expect(chosen(files("a-Q8_0.gguf", "a-Q2_K.gguf"))).toEqual(Either.right(files("a-Q8_0.gguf")))
    expect(chosen(files("z.gguf", "mmproj.gguf", "b.gguf"))).toEqual(Either.right(files("b.gguf")))
  })

  it("matches a tag case-insensitively, a split model with all its parts", () => {
    expect(chosen(repo, { tag: "q8_0" })).toEqual(Either.right(files("m-Q8_0.gguf")))
    expect(chosen(repo, { tag: "F16" })).toEqual(
      Either.right(files("big/m-F16-00001-of-00002.gguf", "big/m-F16-00002-of-00002.gguf"))
    )
    expect(chosen(repo, { file: "big/m-F16-00002-of-00002.gguf" })).toEqual(
      Either.right(files("big/m-F16-00001-of-00002.gguf", "big/m-F16-00002-of-00002.gguf"))
    )
  })

  it("lists the quantizations there are for an unknown tag, the files for a repo without GGUF", () => {
    const tag = chosen(repo, { tag: "IQ1_S" })
    expect(Either.isLeft(tag) && tag.left.reason).toBe(
      "org/repo has no GGUF file for the tag \"IQ1_S\"; its quantizations: F16, Q2_K, Q4_K_M, Q8_0"
    )
    const none = chosen(files("README.md", "model.safetensors"))
    expect(Either.isLeft(none) && none.left.reason).toBe(
      "org/repo has no GGUF files; it has: README.md, model.safetensors"
    )
  })
})
