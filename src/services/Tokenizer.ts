import { Effect } from "effect"
import type { LlamaModel, Token } from "node-llama-cpp"
import { GenerationFailed, InvalidRequest } from "../domain/Errors.js"
import type { LoadedModel } from "./LoadedModel.js"
import { refuseUnsupported } from "./Prompt.js"

/**
 * A loaded model's tokenizer on its own, as llama-server's `/tokenize` and `/detokenize` offer it.
 * Token ids from a client are checked against the vocabulary before llama.cpp sees them (an id
 * past its end reads out of bounds), and text against a guarded vocabulary (llama.cpp aborts the
 * process on a character it has no token for).
 */

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

interface Vocabulary {
  readonly kind: string | undefined
  readonly texts: ReadonlyArray<string> | undefined
  readonly types: ReadonlyArray<number> | undefined
}

const vocabularyOfModel = (model: LlamaModel): Vocabulary => {
  const ggml = model.fileInfo.metadata.tokenizer?.ggml
  return { kind: ggml?.model, texts: ggml?.tokens, types: ggml?.token_type }
}

const vocabularyOf = (loaded: LoadedModel): Vocabulary => vocabularyOfModel(loaded.model)

/** How many tokens the vocabulary has; undefined where the model's metadata does not tell. */
export const vocabularySize = (loaded: LoadedModel): number | undefined => vocabularyOf(loaded).texts?.length

export interface TokenizeOptions {
  /** BOS (and EOS) as the vocabulary adds them */
  readonly addSpecial: boolean
  /** text of a special token becomes that token */
  readonly parseSpecial: boolean
}

export const tokenize = (loaded: LoadedModel, text: string, options: TokenizeOptions) =>
  Effect.gen(function*() {
    const name = loaded.registered.info.name
    yield* refuseUnsupported(loaded, text, "content")
    return yield* Effect.try({
      try: (): ReadonlyArray<Token> => {
        const body = loaded.model.tokenize(text, options.parseSpecial)
        if (!options.addSpecial) return body
        const { bos, eos, shouldAppendEosToken, shouldPrependBosToken } = loaded.model.tokens
        return [
          ...(shouldPrependBosToken && bos !== null ? [bos] : []),
          ...body,
          ...(shouldAppendEosToken && eos !== null ? [eos] : [])
        ]
      },
      catch: (cause) => new GenerationFailed({ model: name, reason: `tokenization failed: ${describe(cause)}` })
    })
  })

/** Fails for the first id that is not in the vocabulary (llama.cpp does not check). */
export const checkIds = (loaded: LoadedModel, ids: ReadonlyArray<number>, param: string) =>
  Effect.gen(function*() {
    const name = loaded.registered.info.name
    const size = vocabularySize(loaded)
    if (size === undefined) {
      return yield* Effect.fail(
        new InvalidRequest({ param, reason: `model '${name}' does not tell its vocabulary's size` })
      )
    }
    const at = ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= size)
    if (at >= 0) {
      return yield* Effect.fail(
        new InvalidRequest({
          param: `${param}.${at}`,
          reason: `'${param}.${at}': token ${ids[at]} is not in the vocabulary of model '${name}' (ids 0 to ${
            size - 1
          })`
        })
      )
    }
    return ids as ReadonlyArray<Token>
  })

/**
 * Tokens back to text, as llama.cpp's own detokenizer writes it (special tokens as their text; an
 * SPM vocabulary's leading space, which tokenizing added, taken off again: text round-trips).
 */
export const detokenize = (loaded: LoadedModel, ids: ReadonlyArray<number>) =>
  Effect.flatMap(checkIds(loaded, ids, "tokens"), (tokens) =>
    Effect.try({
      try: () => loaded.model.detokenize(tokens, true),
      catch: (cause) =>
        new GenerationFailed({
          model: loaded.registered.info.name,
          reason: `detokenization failed: ${describe(cause)}`
        })
    }))

const TYPE_NORMAL = 1
const TYPE_UNKNOWN = 2
const TYPE_UNUSED = 5
const TYPE_BYTE = 6

const encoder = new TextEncoder()
const strictUtf8 = new TextDecoder("utf-8", { fatal: true })

/** GPT-2's byte-level BPE writes each byte as a printable character: the inverse of that table. */
const gpt2Bytes: ReadonlyMap<string, number> = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)
  const map = new Map<string, number>()
  let shifted = 0
  for (let b = 0; b < 256; b++) {
    map.set(String.fromCodePoint(printable(b) ? b : 256 + shifted++), b)
  }
  return map
})()

/**
 * A token's bytes as llama.cpp's `token_to_piece` writes them (special tokens as text, no space
 * taken off), from the vocabulary: SPM (`<0xXX>` byte tokens, `▁` for a space) and GPT-2
 * byte-level BPE. Undefined for other vocabularies.
 */
const pieceBytes = (vocabulary: Vocabulary, id: number): Uint8Array | undefined => {
  const text = vocabulary.texts?.[id]
  const type = vocabulary.types?.[id]
  if (text === undefined || type === undefined) return undefined
  if (vocabulary.kind === "llama") {
    if (type === TYPE_BYTE) {
      const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(text)
      return byte === null ? encoder.encode(text) : Uint8Array.of(parseInt(byte[1]!, 16))
    }
    if (type === TYPE_UNKNOWN) return encoder.encode("\u2585")
    return encoder.encode(type === TYPE_NORMAL || type === TYPE_UNUSED ? text.replace(/\u2581/g, " ") : text)
  }
  if (vocabulary.kind === "gpt2") {
    if (type !== TYPE_NORMAL) return encoder.encode(text)
    const bytes: Array<number> = []
    for (const char of text) {
      const byte = gpt2Bytes.get(char)
      if (byte === undefined) return encoder.encode(text)
      bytes.push(byte)
    }
    return Uint8Array.from(bytes)
  }
  return undefined
}

/**
 * Every token's bytes, by id, as llama.cpp's `token_to_piece` writes them; undefined for a
 * vocabulary whose pieces cannot be read from its metadata.
 */
export const vocabularyBytes = (model: LlamaModel): ReadonlyArray<Uint8Array> | undefined => {
  const vocabulary = vocabularyOfModel(model)
  const size = vocabulary.texts?.length ?? 0
  if (size === 0) return undefined
  const all: Array<Uint8Array> = []
  for (let id = 0; id < size; id++) {
    const bytes = pieceBytes(vocabulary, id)
    if (bytes === undefined) return undefined
    all.push(bytes)
  }
  return all
}

/** Each token with its piece: a string where its bytes are valid UTF-8 on their own, else the bytes. */
export const pieces = (loaded: LoadedModel, tokens: ReadonlyArray<Token>) =>
  Effect.try({
    try: () => {
      const vocabulary = vocabularyOf(loaded)
      return tokens.map((id) => {
        const bytes = pieceBytes(vocabulary, id)
        if (bytes === undefined) return { id: id as number, piece: loaded.model.detokenize([id], true) }
        try {
          return { id: id as number, piece: strictUtf8.decode(bytes) }
        } catch {
          return { id: id as number, piece: [...bytes] }
        }
      })
    },
    catch: (cause) =>
      new GenerationFailed({ model: loaded.registered.info.name, reason: `reading pieces failed: ${describe(cause)}` })
  })
