import { Data, Effect } from "effect"
import * as fs from "node:fs/promises"
import { GgmlType, GgufFileType, readGgufFileInfo, type GgufFileInfo } from "node-llama-cpp"

/** What the registry learns from a GGUF header, without loading any weights. */
export interface GgufSummary {
  readonly architecture: string | undefined
  readonly displayName: string | undefined
  readonly parameters: number | undefined
  readonly quantization: string | undefined
  readonly contextLength: number | undefined
  readonly chatTemplate: boolean
  readonly vocabulary: VocabularyGuard
}

/**
 * An SPM vocabulary without byte-fallback tokens makes llama.cpp throw an uncaught C++ exception
 * (which aborts the process) for any character it has no token for. Such a vocabulary is
 * `guarded`: text may only contain the characters in `allowed`.
 */
export type VocabularyGuard =
  | { readonly _tag: "Safe" }
  | { readonly _tag: "Guarded"; readonly allowed: ReadonlySet<string> }

const safe: VocabularyGuard = { _tag: "Safe" }

export const vocabularyGuard = (metadata: GgufFileInfo["metadata"]): VocabularyGuard => {
  const tokenizer = metadata.tokenizer?.ggml
  if (tokenizer?.model !== "llama" || tokenizer.tokens === undefined) return safe
  const tokens = tokenizer.tokens
  if (tokens.includes("<0x00>")) return safe
  const allowed = new Set<string>()
  for (const token of tokens) {
    const chars = [...token]
    if (chars.length === 1) allowed.add(chars[0]!)
  }
  // SPM writes a space as U+2581 before looking it up
  if (allowed.has("\u2581")) allowed.add(" ")
  return { _tag: "Guarded", allowed }
}

/** The characters of `text` that a guarded vocabulary cannot tokenize (distinct, in order). */
export const unsupportedCharacters = (guard: VocabularyGuard, text: string): ReadonlyArray<string> => {
  if (guard._tag === "Safe") return []
  const bad = new Set<string>()
  for (const char of text) if (!guard.allowed.has(char)) bad.add(char)
  return [...bad]
}

const quantizationOf = (info: GgufFileInfo): string | undefined => {
  const fileType = info.metadata.general?.file_type
  if (fileType !== undefined && GgufFileType[fileType] !== undefined) {
    return GgufFileType[fileType].replace(/^(MOSTLY|ALL)_/, "")
  }
  // no file_type key: name the type that holds most of the 2-D weights
  const counts = new Map<GgmlType, number>()
  for (const tensor of info.fullTensorInfo ?? []) {
    if (tensor.dimensions.length < 2) continue
    counts.set(tensor.ggmlType, (counts.get(tensor.ggmlType) ?? 0) + 1)
  }
  const top = [...counts].sort((a, b) => b[1] - a[1])[0]
  return top === undefined ? undefined : GgmlType[top[0]]
}

const parametersOf = (info: GgufFileInfo): number | undefined => {
  const tensors = info.fullTensorInfo
  if (tensors === undefined || tensors.length === 0) return undefined
  let total = 0
  for (const tensor of tensors) {
    let count = 1
    for (const dimension of tensor.dimensions) count *= Number(dimension)
    total += count
  }
  return total
}

const contextLengthOf = (info: GgufFileInfo): number | undefined => {
  const architecture = info.metadata.general?.architecture
  if (architecture === undefined) return undefined
  const section = (info.metadata as unknown as Record<string, { context_length?: unknown } | undefined>)[architecture]
  const value = section?.context_length
  return typeof value === "number" ? value : undefined
}

/** A valid GGUF that is not a model (for example llama.cpp's vocabulary-only test files). */
export class NotAModel extends Data.TaggedError("NotAModel")<{ readonly reason: string }> {}

export class GgufError extends Data.TaggedError("GgufError")<{ readonly reason: string }> {}

/** Reads and checks a GGUF header. Fails with a reason a user can act on. */
export const summarize = Effect.fn("Gguf.summarize")(function*(path: string) {
  const info = yield* Effect.tryPromise({
    try: () => readGgufFileInfo(path, { readTensorInfo: true, logWarnings: false, sourceType: "filesystem" }),
    catch: (cause) => new GgufError({ reason: `not a readable GGUF file: ${cause instanceof Error ? cause.message : String(cause)}` })
  })
  const size = yield* Effect.tryPromise({
    try: () => fs.stat(path).then((s) => s.size),
    catch: () => new GgufError({ reason: "cannot stat the file" })
  })
  // the header parses but the weights it points at lie beyond the end of the file
  const beyond = (info.fullTensorInfo ?? []).find((t) => t.filePart === 1 && Number(t.fileOffset) >= size)
  if (beyond !== undefined) {
    return yield* Effect.fail(new GgufError({ reason: `truncated: tensor '${beyond.name}' starts beyond the end of the file` }))
  }
  if ((info.fullTensorInfo ?? []).length === 0) {
    return yield* Effect.fail(new NotAModel({ reason: "the file holds no tensors (a vocabulary-only GGUF)" }))
  }
  const summary: GgufSummary = {
    architecture: info.metadata.general?.architecture,
    displayName: info.metadata.general?.name,
    parameters: parametersOf(info),
    quantization: quantizationOf(info),
    contextLength: contextLengthOf(info),
    chatTemplate: typeof info.metadata.tokenizer?.chat_template === "string",
    vocabulary: vocabularyGuard(info.metadata)
  }
  return summary
})
