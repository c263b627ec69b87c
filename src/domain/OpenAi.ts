import { Schema } from "effect"
import { MaxTokens, RepeatPenalty, Seed, StopStrings, Temperature, TopK } from "./Generate.js"

/**
 * Request bodies of the OpenAI-compatible `/v1/*` endpoints. `null` is accepted wherever a field
 * is optional (SDKs send it) and means "left out". Fields that OpenAI defines but Shimmy does not
 * implement are declared as `Unsupported` so they are known (an unknown field is refused as
 * unrecognized) and refused with a message saying they are not implemented.
 */

const Probability = Schema.Number.pipe(Schema.finite(), Schema.between(0, 1))
const Penalty = Schema.Number.pipe(Schema.finite(), Schema.between(-2, 2))

const optional = <A, I, R>(schema: Schema.Schema<A, I, R>) => Schema.optionalWith(schema, { nullable: true })

/** A field OpenAI defines that Shimmy refuses (unless it has its neutral value); checked by the handler. */
const Unsupported = Schema.optional(Schema.Unknown)
/** A field that does not change the output (an end-user id, metadata): accepted and ignored. */
const Ignored = Schema.optional(Schema.Unknown)

export const TextPart = Schema.Struct({ type: Schema.Literal("text"), text: Schema.String })

export const MessageContent = Schema.Union(Schema.String, Schema.Array(TextPart))

export const ChatCompletionMessage = Schema.Struct({
  // "developer" is what newer OpenAI models call the system role
  role: Schema.Literal("system", "developer", "user", "assistant"),
  content: optional(MessageContent),
  name: optional(Schema.String),
  refusal: Ignored
})
export type ChatCompletionMessage = typeof ChatCompletionMessage.Type

export const ResponseFormat = Schema.Union(
  Schema.Struct({ type: Schema.Literal("text") }),
  Schema.Struct({ type: Schema.Literal("json_object") }),
  Schema.Struct({
    type: Schema.Literal("json_schema"),
    json_schema: Schema.Struct({
      name: optional(Schema.String),
      description: optional(Schema.String),
      schema: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
      // the grammar always enforces the schema; strict adds nothing
      strict: optional(Schema.Boolean)
    })
  })
)
export type ResponseFormat = typeof ResponseFormat.Type

export const StreamOptions = Schema.Struct({
  include_usage: optional(Schema.Boolean),
  include_obfuscation: Ignored
})

/** Sampling fields shared by `/v1/chat/completions` and `/v1/completions`. */
const samplingFields = {
  model: Schema.String.pipe(Schema.minLength(1)),
  max_tokens: optional(MaxTokens),
  temperature: optional(Temperature),
  top_p: optional(Probability),
  top_k: optional(TopK),
  min_p: optional(Probability),
  seed: optional(Seed),
  stop: optional(StopStrings),
  presence_penalty: optional(Penalty),
  frequency_penalty: optional(Penalty),
  repeat_penalty: optional(RepeatPenalty),
  n: optional(Schema.Int),
  stream: Schema.optionalWith(Schema.Boolean, { nullable: true, default: () => false }),
  stream_options: optional(StreamOptions),
  response_format: optional(ResponseFormat),
  logprobs: Unsupported,
  logit_bias: Unsupported,
  user: Ignored,
  metadata: Ignored,
  store: Ignored,
  service_tier: Ignored
}

export class ChatCompletionRequest extends Schema.Class<ChatCompletionRequest>("ChatCompletionRequest")({
  ...samplingFields,
  messages: Schema.Array(ChatCompletionMessage).pipe(Schema.minItems(1)),
  max_completion_tokens: optional(MaxTokens),
  top_logprobs: Unsupported,
  tools: Unsupported,
  tool_choice: Unsupported,
  functions: Unsupported,
  function_call: Unsupported,
  parallel_tool_calls: Ignored,
  audio: Unsupported,
  modalities: Unsupported,
  prediction: Unsupported,
  reasoning_effort: Unsupported,
  verbosity: Unsupported,
  web_search_options: Unsupported
}) {}

export class CompletionRequest extends Schema.Class<CompletionRequest>("CompletionRequest")({
  ...samplingFields,
  // a list of one prompt is what SDKs send for batch-shaped calls; token arrays are not supported
  prompt: Schema.Union(Schema.String, Schema.Tuple(Schema.String)),
  echo: Unsupported,
  suffix: Unsupported,
  best_of: Unsupported
}) {}

export class EmbeddingRequest extends Schema.Class<EmbeddingRequest>("EmbeddingRequest")({
  model: Schema.String.pipe(Schema.minLength(1)),
  input: Schema.Union(Schema.String, Schema.Array(Schema.String).pipe(Schema.minItems(1), Schema.maxItems(2048))),
  encoding_format: Schema.optionalWith(Schema.Literal("float", "base64"), { nullable: true, default: () => "float" as const }),
  dimensions: Unsupported,
  user: Ignored
}) {}
