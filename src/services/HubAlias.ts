import { Either } from "effect"
import * as path from "node:path"
import { choose, type HubFile } from "./Hub.js"
import { parseReference } from "./HubRef.js"

/**
 * The name an Ollama client pulled a model by (`hf.co/org/repo:Q4_K_M`) and then asks for it by:
 * among the Hugging Face cache's models of that repository, the one the reference would pull.
 * Worked out from the cache on every lookup, so it holds across restarts.
 */

const HUB = new URL("https://huggingface.co")

export const hubAlias = <M extends { readonly info: { readonly path: string; readonly source: string } }>(
  name: string,
  models: ReadonlyArray<M>
): M | undefined => {
  if (!/^(?:hf\.co|huggingface\.co)\//i.test(name)) return undefined
  const parsed = parseReference(name, HUB)
  if (Either.isLeft(parsed) || parsed.right._tag !== "Hub") return undefined
  const ref = parsed.right
  const folder = `models--${ref.repo.split("/").join("--")}`.toLowerCase()
  const inRepo = new Map<string, M>()
  for (const model of models) {
    if (model.info.source !== "huggingface") continue
    const parts = model.info.path.split(path.sep)
    const at = parts.findIndex((p, i) => p.toLowerCase() === folder && parts[i + 1] === "snapshots")
    // the path inside the repository: after `snapshots/<commit>/`
    if (at >= 0) inRepo.set(parts.slice(at + 3).join("/"), model)
  }
  const files: ReadonlyArray<HubFile> = [...inRepo.keys()].map((p) => ({ path: p, size: undefined, sha256: undefined }))
  const chosen = choose(ref.repo, files, { file: ref.file, tag: ref.tag })
  return Either.isRight(chosen) ? inRepo.get(chosen.right[0]!.path) : undefined
}

/** `hf.co/org/repo/path/file.gguf` for a file of the cache (`models--org--repo/snapshots/<commit>/...`). */
export const hubNameOf = (file: string): string | undefined => {
  const parts = file.split(path.sep)
  const at = parts.findIndex((p, i) => p.startsWith("models--") && parts[i + 1] === "snapshots")
  if (at < 0 || parts.length < at + 4) return undefined
  const repo = parts[at]!.slice("models--".length).split("--")
  if (repo.length !== 2) return undefined
  return `hf.co/${repo.join("/")}/${parts.slice(at + 3).join("/")}`
}
