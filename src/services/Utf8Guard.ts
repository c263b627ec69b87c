import type { LlamaModel, Token, TokenBias } from "node-llama-cpp"
import { loadedNodeLlamaCpp } from "./LlamaRuntime.js"
import { vocabularyBytes } from "./Tokenizer.js"

/**
 * Keeps a grammar-constrained output well-formed UTF-8. llama.cpp's grammar reads a token's bytes
 * more leniently than a UTF-8 decoder: it takes a lone continuation byte for a character, and any
 * lead byte with the right number of continuation bytes for one character, whatever the values
 * (C0/C1 and F5-FF leads, overlong E0/F0 forms, ED's surrogates, F4's past U+10FFFF). The decoded
 * text then has a U+FFFD for each byte of such a sequence: a string the grammar held to
 * `maxLength` 12 comes out longer, its arguments fail their schema, and a forced tool call comes
 * back as text. So while a grammar is in force, the tokens that would make the output ill-formed
 * at that point are never sampled.
 *
 * The decoder's states between tokens are few: between characters, or owing one to three
 * continuation bytes, four of those with a narrower range for the first one (Unicode's table of
 * well-formed byte sequences). Each state has its own, small, set of banned tokens. Where a
 * continuation byte is owed, the grammar itself already refuses a token that does not start with
 * one, so those sets hold only the tokens that start with a continuation byte of the wrong range
 * (and those banned everywhere): a few hundred of Qwen's 151,936, not the 46,000 that start with
 * some other byte.
 */

// between characters; owing 1, 2 or 3 continuation bytes (80-BF); owing 2 after E0 (A0-BF first)
// or ED (80-9F first); owing 3 after F0 (90-BF first) or F4 (80-8F first)
const CLEAR = 0
const STATES = 8
const INVALID = -1
const FIRST: ReadonlyArray<readonly [number, number]> = [
  [0, 0],
  [0x80, 0xbf],
  [0x80, 0xbf],
  [0x80, 0xbf],
  [0xa0, 0xbf],
  [0x80, 0x9f],
  [0x90, 0xbf],
  [0x80, 0x8f]
]
// the state after the first continuation byte of each
const AFTER: ReadonlyArray<number> = [CLEAR, CLEAR, 1, 2, 1, 1, 2, 2]

/** The decoder's state after `byte` in `state`, or INVALID. */
export const stepUtf8 = (state: number, byte: number): number => {
  if (state === CLEAR) {
    if (byte < 0x80) return CLEAR
    if (byte >= 0xc2 && byte <= 0xdf) return 1
    if (byte === 0xe0) return 4
    if (byte === 0xed) return 5
    if (byte >= 0xe1 && byte <= 0xef) return 2
    if (byte === 0xf0) return 6
    if (byte === 0xf4) return 7
    if (byte >= 0xf1 && byte <= 0xf3) return 3
    return INVALID
  }
  const [lo, hi] = FIRST[state]!
  return byte < lo || byte > hi ? INVALID : AFTER[state]!
}

const run = (state: number, bytes: Uint8Array): number => {
  let s = state
  for (const byte of bytes) {
    s = stepUtf8(s, byte)
    if (s === INVALID) return INVALID
  }
  return s
}

/** Each token's bytes, and per state the tokens banned there (see above). */
export interface Utf8Table {
  readonly pieces: ReadonlyArray<Uint8Array>
  readonly banned: ReadonlyArray<ReadonlyArray<Token>>
}

export const utf8Table = (pieces: ReadonlyArray<Uint8Array>): Utf8Table => {
  const banned: Array<Array<Token>> = Array.from({ length: STATES }, () => [])
  for (let id = 0; id < pieces.length; id++) {
    const bytes = pieces[id]!
    // what is well-formed between characters is, where a continuation is owed, for the grammar to
    // refuse (a token that starts with a continuation byte is never well-formed between characters)
    if (run(CLEAR, bytes) !== INVALID) continue
    banned[CLEAR]!.push(id as Token)
    for (let state = 1; state < STATES; state++) {
      if (run(state, bytes) === INVALID) banned[state]!.push(id as Token)
    }
  }
  return { pieces, banned }
}

/** The decoder's state after `token`'s bytes from `state`. */
export const after = (table: Utf8Table, state: number, token: Token): number => {
  const end = run(state, table.pieces[token] ?? new Uint8Array())
  // a token the guard did not ban can still be ill-formed where the grammar let it through:
  // the decoder starts over at the next character
  return end === INVALID ? CLEAR : end
}

interface ModelGuard {
  readonly table: Utf8Table
  /** each state's bias, made when first needed */
  readonly biases: Array<TokenBias | undefined>
}

// built on a model's first constrained generation: reading Qwen's 151,936 pieces takes about 0.1 s
const guards = new WeakMap<LlamaModel, ModelGuard | null>()

const guardOf = (model: LlamaModel): ModelGuard | undefined => {
  let guard = guards.get(model)
  if (guard === undefined) {
    const pieces = vocabularyBytes(model)
    guard = pieces === undefined ? null : { table: utf8Table(pieces), biases: [] }
    guards.set(model, guard)
  }
  return guard ?? undefined
}

/** The decoder's state over `generated` as it grows, read up to where it was read last. */
const tracking = (table: Utf8Table, generated: ReadonlyArray<Token>) => {
  let state = CLEAR
  let seen = 0
  return () => {
    for (; seen < generated.length; seen++) state = after(table, state, generated[seen]!)
    return state
  }
}

/**
 * The decoder's state over one generation's output: asked before each token is sampled, it reads
 * the tokens generated since it was last asked (`generated` grows as they come). Undefined where
 * the vocabulary's bytes are unknown.
 */
export const utf8Tracker = (model: LlamaModel, generated: ReadonlyArray<Token>): (() => number) | undefined => {
  const guard = guardOf(model)
  return guard === undefined ? undefined : tracking(guard.table, generated)
}

/** The tokens that would make the output ill-formed in `state` (see above). */
export const bannedIn = (model: LlamaModel, state: number): ReadonlyArray<Token> =>
  guardOf(model)?.table.banned[state] ?? []

/** node-llama-cpp's `tokenBias` for one grammar-constrained generation: bans what would be ill-formed next. */
export const utf8Guard = (model: LlamaModel, generated: ReadonlyArray<Token>): (() => TokenBias) | undefined => {
  const guard = guardOf(model)
  if (guard === undefined) return undefined
  const { biases, table } = guard
  const tracker = tracking(table, generated)
  return () => {
    const state = tracker()
    return biases[state] ??= new (loadedNodeLlamaCpp().TokenBias)(model.tokenizer).set(
      [...table.banned[state]!],
      "never"
    )
  }
}
