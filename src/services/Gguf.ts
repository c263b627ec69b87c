import { Data, Effect } from "effect"
import { GgufFileType } from "node-llama-cpp"
import { abortReason, truncation } from "./GgufChecks.js"
import { ggmlTypeName, GgufError, type GgufHeader, type GgufValue, readGgufHeader } from "./GgufReader.js"

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
 * `guarded`: text may only contain the characters it can write (see `vocabularyGuard`).
 */
export type VocabularyGuard =
  | { readonly _tag: "Safe" }
  | {
    readonly _tag: "Guarded"
    /** characters that are tokens */
    readonly allowed: ReadonlySet<string>
    /** bytes with a byte token: a character all of whose UTF-8 bytes are here can be written too */
    readonly bytes: ReadonlySet<number>
  }

const safe: VocabularyGuard = { _tag: "Safe" }

const hex = (byte: number) => `<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`

/**
 * llama.cpp's SPM tokenizer splits text into characters; a character that is not a token is
 * written as its UTF-8 bytes, each looked up as `<0xXX>` and then as the one-byte text, with
 * `std::map::at` (llama-vocab.cpp `byte_to_token`): a byte with neither throws through the C API
 * and aborts the process. So an SPM vocabulary is `Safe` only with a token for every byte;
 * otherwise a character may be written only if it is a token or all its bytes are.
 */
export const vocabularyGuard = (metadata: ReadonlyMap<string, GgufValue>): VocabularyGuard => {
  const list = metadata.get("tokenizer.ggml.tokens")
  if (metadata.get("tokenizer.ggml.model") !== "llama" || typeof list !== "object" || list.values === undefined) {
    return safe
  }
  const tokens = new Set(list.values.filter((t): t is string => typeof t === "string"))
  const bytes = new Set<number>()
  for (let byte = 0; byte < 256; byte++) {
    if (tokens.has(hex(byte)) || (byte < 0x80 && tokens.has(String.fromCharCode(byte)))) bytes.add(byte)
  }
  if (bytes.size === 256) return safe
  const allowed = new Set<string>()
  for (const token of tokens) {
    const chars = [...token]
    if (chars.length === 1) allowed.add(chars[0]!)
  }
  // SPM writes a space as U+2581 before looking it up
  if (allowed.has("\u2581")) allowed.add(" ")
  return { _tag: "Guarded", allowed, bytes }
}

const encoder = new TextEncoder()

/** The characters of `text` that a guarded vocabulary cannot tokenize (distinct, in order). */
export const unsupportedCharacters = (guard: VocabularyGuard, text: string): ReadonlyArray<string> => {
  if (guard._tag === "Safe") return []
  const bad = new Set<string>()
  for (const char of text) {
    if (guard.allowed.has(char) || bad.has(char)) continue
    if (!encoder.encode(char).every((byte) => guard.bytes.has(byte))) bad.add(char)
  }
  return [...bad]
}

const number = (value: GgufValue | undefined): number | undefined =>
  typeof value === "number" ? value : typeof value === "bigint" ? Number(value) : undefined

const quantizationOf = (header: GgufHeader): string | undefined => {
  const fileType = number(header.metadata.get("general.file_type"))
  if (fileType !== undefined && GgufFileType[fileType] !== undefined) {
    return GgufFileType[fileType].replace(/^(MOSTLY|ALL)_/, "")
  }
  // no file_type key: name the type that holds most of the 2-D weights
  const counts = new Map<number, number>()
  for (const tensor of header.tensors) {
    if (tensor.dimensions.length < 2) continue
    counts.set(tensor.type, (counts.get(tensor.type) ?? 0) + 1)
  }
  const top = [...counts].sort((a, b) => b[1] - a[1])[0]
  return top === undefined ? undefined : ggmlTypeName(top[0])
}

const parametersOf = (header: GgufHeader): number =>
  header.tensors.reduce((total, t) => total + t.dimensions.reduce((count, d) => count * d, 1), 0)

const stringOf = (value: GgufValue | undefined): string | undefined => (typeof value === "string" ? value : undefined)

/** A valid GGUF that is not a model (for example llama.cpp's vocabulary-only test files). */
export class NotAModel extends Data.TaggedError("NotAModel")<{ readonly reason: string }> {}

export { GgufError }

/** Reads and checks a GGUF header. Fails with a reason a user can act on. */
export const summarize = Effect.fn("Gguf.summarize")(function*(path: string) {
  const header = yield* readGgufHeader(path).pipe(
    Effect.mapError((e) => new GgufError({ reason: `not a readable GGUF file: ${e.reason}` }))
  )
  if (header.tensors.length === 0) {
    return yield* Effect.fail(new NotAModel({ reason: "the file holds no tensors (a vocabulary-only GGUF)" }))
  }
  const problem = truncation(header) ?? abortReason(header)
  if (problem !== undefined) return yield* Effect.fail(new GgufError({ reason: problem }))
  const meta = header.metadata
  const architecture = stringOf(meta.get("general.architecture"))
  const summary: GgufSummary = {
    architecture,
    displayName: stringOf(meta.get("general.name")),
    parameters: parametersOf(header),
    quantization: quantizationOf(header),
    contextLength: architecture === undefined ? undefined : number(meta.get(`${architecture}.context_length`)),
    chatTemplate: typeof meta.get("tokenizer.chat_template") === "string",
    vocabulary: vocabularyGuard(meta)
  }
  return summary
})
