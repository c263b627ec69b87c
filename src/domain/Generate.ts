import { Schema } from "effect"

const Probability = Schema.Number.pipe(Schema.finite(), Schema.between(0, 1))
const Penalty = Schema.Number.pipe(Schema.finite(), Schema.between(-2, 2))

/** Stop strings: one string or up to 16. */
export const StopStrings = Schema.Union(
  Schema.String.pipe(Schema.minLength(1)),
  Schema.Array(Schema.String.pipe(Schema.minLength(1))).pipe(Schema.maxItems(16))
)

export const MaxTokens = Schema.Int.pipe(Schema.between(1, 131072))
export const Temperature = Schema.Number.pipe(Schema.finite(), Schema.between(0, 2))
export const TopK = Schema.Int.pipe(Schema.between(0, 100000))
export const Seed = Schema.Int.pipe(Schema.between(0, 4294967295))
export const RepeatPenalty = Schema.Number.pipe(Schema.finite(), Schema.between(0, 10))

/** Body of `POST /api/generate` (and the WebSocket request): the seed API plus sampling knobs. */
export class GenerateRequest extends Schema.Class<GenerateRequest>("GenerateRequest")({
  model: Schema.String.pipe(Schema.minLength(1)),
  prompt: Schema.String,
  max_tokens: Schema.optionalWith(MaxTokens, { default: () => 100 }),
  temperature: Schema.optionalWith(Temperature, { default: () => 0.7 }),
  stream: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  top_p: Schema.optional(Probability),
  top_k: Schema.optional(TopK),
  min_p: Schema.optional(Probability),
  seed: Schema.optional(Seed),
  stop: Schema.optional(StopStrings),
  repeat_penalty: Schema.optional(RepeatPenalty),
  presence_penalty: Schema.optional(Penalty),
  frequency_penalty: Schema.optional(Penalty)
}) {}

/** One turn of a conversation, as the engine renders it with the model's chat template. */
export const ChatRole = Schema.Literal("system", "user", "assistant")
export type ChatRole = typeof ChatRole.Type

export interface ChatMessage {
  readonly role: ChatRole
  readonly content: string
}

/** What the engine needs to sample; transports map their own fields onto it. */
export interface Sampling {
  readonly maxTokens: number
  readonly temperature: number
  readonly topP?: number | undefined
  readonly topK?: number | undefined
  readonly minP?: number | undefined
  readonly seed?: number | undefined
  readonly stop: ReadonlyArray<string>
  readonly repeatPenalty?: number | undefined
  readonly presencePenalty?: number | undefined
  readonly frequencyPenalty?: number | undefined
}

export const stopStrings = (stop: GenerateRequest["stop"]): ReadonlyArray<string> =>
  stop === undefined ? [] : typeof stop === "string" ? [stop] : stop

/** The sampling a seed API request asks for (HTTP, WebSocket and the CLI alike). */
export const samplingOf = (request: GenerateRequest): Sampling => ({
  maxTokens: request.max_tokens,
  temperature: request.temperature,
  topP: request.top_p,
  topK: request.top_k,
  minP: request.min_p,
  seed: request.seed,
  stop: stopStrings(request.stop),
  repeatPenalty: request.repeat_penalty,
  presencePenalty: request.presence_penalty,
  frequencyPenalty: request.frequency_penalty
})

export const FinishReason = Schema.Literal("stop", "length")
export type FinishReason = typeof FinishReason.Type

export class Usage extends Schema.Class<Usage>("Usage")({
  prompt_tokens: Schema.Number,
  completion_tokens: Schema.Number,
  total_tokens: Schema.Number
}) {
  static of(prompt: number, completion: number): Usage {
    return new Usage({ prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion })
  }
}

/** A piece of generated text: one or more tokens that decode to whole characters. */
export interface TokenEvent {
  readonly _tag: "Token"
  readonly text: string
  readonly tokens: number
}

/** The last event of every generation. */
export interface DoneEvent {
  readonly _tag: "Done"
  readonly finishReason: FinishReason
  readonly usage: Usage
}

export type GenerationEvent = TokenEvent | DoneEvent

export const tokenEvent = (text: string, tokens: number): TokenEvent => ({ _tag: "Token", text, tokens })
export const doneEvent = (finishReason: FinishReason, usage: Usage): DoneEvent => ({
  _tag: "Done",
  finishReason,
  usage
})

export class Choice extends Schema.Class<Choice>("Choice")({
  text: Schema.String,
  index: Schema.Number,
  finish_reason: FinishReason
}) {}

/** Body of a non-streaming `POST /api/generate` answer. */
export class GenerateResponse extends Schema.Class<GenerateResponse>("GenerateResponse")({
  choices: Schema.Array(Choice),
  usage: Usage
}) {}
