import { Schema } from "effect"
import { type Sampling, Usage } from "./Generation.js"

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

export class Choice extends Schema.Class<Choice>("Choice")({
  text: Schema.String,
  index: Schema.Number,
  finish_reason: Schema.Literal("stop", "length")
}) {}

/** Body of a non-streaming `POST /api/generate` answer. */
export class GenerateResponse extends Schema.Class<GenerateResponse>("GenerateResponse")({
  choices: Schema.Array(Choice),
  usage: Usage
}) {}
