import { Schema } from "effect"

/**
 * The wire types of llama-server's tokenizer endpoints (tools/server/README.md): `/tokenize`,
 * `/detokenize`, `/apply-template`. llama-server serves one model and has no `model` field;
 * Shimmy serves several and takes an optional one (left out: the only model loaded, or available).
 */

/** A request asks for at most this many tokens to be turned back into text. */
export const MAX_TOKENS_IN = 131_072

const ModelField = Schema.optional(Schema.String.pipe(Schema.minLength(1)))

export class TokenizeRequest extends Schema.Class<TokenizeRequest>("TokenizeRequest")({
  model: ModelField,
  content: Schema.String,
  /** BOS (and EOS where the vocabulary adds one) around the text */
  add_special: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** text like `<s>` becomes its special token; off: plain text */
  parse_special: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  with_pieces: Schema.optionalWith(Schema.Boolean, { default: () => false })
}) {}

/** A token's text: a string where it is valid UTF-8 on its own, else its bytes. */
export const TokenPiece = Schema.Struct({
  id: Schema.Number,
  piece: Schema.Union(Schema.String, Schema.Array(Schema.Number))
})
export type TokenPiece = typeof TokenPiece.Type

/** The ids, or (`with_pieces`) each id with its text. */
export const TokenizeResponse = Schema.Struct({
  tokens: Schema.Union(Schema.Array(Schema.Number), Schema.Array(TokenPiece))
})
export type TokenizeResponse = typeof TokenizeResponse.Type

export const TokenId = Schema.Int.pipe(Schema.nonNegative())

export class DetokenizeRequest extends Schema.Class<DetokenizeRequest>("DetokenizeRequest")({
  model: ModelField,
  tokens: Schema.Array(TokenId).pipe(Schema.maxItems(MAX_TOKENS_IN))
}) {}

export const DetokenizeResponse = Schema.Struct({ content: Schema.String })
export type DetokenizeResponse = typeof DetokenizeResponse.Type

export const ApplyTemplateResponse = Schema.Struct({ prompt: Schema.String })
export type ApplyTemplateResponse = typeof ApplyTemplateResponse.Type
