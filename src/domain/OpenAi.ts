import { Schema } from "effect"
import { Usage } from "./Generation.js"
import { MaxTokens, RepeatPenalty, Seed, StopStrings, Temperature, TopK } from "./SeedApi.js"

/**
 * The wire types of the OpenAI-compatible `/v1/*` endpoints, requests and responses. `null` is
 * accepted wherever a request field is optional (SDKs send it) and means "left out". A request
 * field OpenAI defines that Shimmy does not implement is declared, so a client hears that it is
 * not implemented (unless it has its neutral value) rather than that it is unknown; a field no one
 * defines is refused as unrecognized, as OpenAI does.
 */

const Probability = Schema.Number.pipe(Schema.finite(), Schema.between(0, 1))
const Penalty = Schema.Number.pipe(Schema.finite(), Schema.between(-2, 2))

const optional = <A, I, R>(schema: Schema.Schema<A, I, R>) => Schema.optionalWith(schema, { nullable: true })

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Values that ask for nothing, so sending them is harmless even where the field is not implemented. */
const isNeutral = (value: unknown): boolean =>
  value === undefined ||
  value === null ||
  value === false ||
  (Array.isArray(value) && value.length === 0) ||
  (isRecord(value) && Object.keys(value).length === 0)

/** A field Shimmy knows and refuses, unless `neutral`; the message names it and says why. */
const NotImplemented = (field: string, why: string, neutral: (value: unknown) => boolean = isNeutral) =>
  Schema.optional(
    Schema.Unknown.pipe(Schema.filter((value) => neutral(value) || `'${field}' is not supported: ${why}`))
  )

/** A field that does not change the output (an end-user id, metadata): accepted and ignored. */
const Ignored = Schema.optional(Schema.Unknown)

/**
 * A request's own fields are decoded strictly (`onExcessProperty: "error"`, see `strict`), so an
 * unknown one is refused by name; nested objects take the extra fields SDKs add.
 */
const lenient = { parseOptions: { onExcessProperty: "ignore" } } as const

/** The parse options a request body is decoded with. */
export const strict = { onExcessProperty: "error" } as const

// --- requests --------------------------------------------------------------------------------

/** A literal whose mismatch says what is supported instead of echoing the expected value. */
const only = <L extends string>(literal: L, what: string) =>
  Schema.Literal(literal).annotations({
    message: (issue) =>
      `${what} of type ${JSON.stringify(issue.actual)} are not supported; only "${literal}" ${what} are`
  })

export const TextPart = Schema.Struct({ type: only("text", "content parts"), text: Schema.String }).annotations(lenient)

export const MessageContent = Schema.Union(Schema.String, Schema.Array(TextPart))

export const FunctionCall = Schema.Struct({
  name: Schema.String.pipe(Schema.minLength(1)),
  // a JSON object as text; SDKs always send text, some clients an object
  arguments: Schema.Union(Schema.String, Schema.Record({ key: Schema.String, value: Schema.Unknown }))
}).annotations(lenient)

export const MessageToolCall = Schema.Struct({
  id: Schema.String,
  type: Schema.optionalWith(Schema.Literal("function"), { default: () => "function" as const }),
  function: FunctionCall
}).annotations(lenient)
export type MessageToolCall = typeof MessageToolCall.Type

export const ChatCompletionMessage = Schema.Struct({
  // "developer" is what newer OpenAI models call the system role
  role: Schema.Literal("system", "developer", "user", "assistant", "tool"),
  content: optional(MessageContent),
  name: optional(Schema.String),
  tool_calls: optional(Schema.Array(MessageToolCall)),
  tool_call_id: optional(Schema.String),
  reasoning_content: optional(Schema.String),
  refusal: Ignored
}).annotations(lenient)
export type ChatCompletionMessage = typeof ChatCompletionMessage.Type

export const JsonSchemaObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

export const ResponseFormat = Schema.Union(
  Schema.Struct({ type: Schema.Literal("text") }),
  Schema.Struct({ type: Schema.Literal("json_object") }),
  Schema.Struct({
    type: Schema.Literal("json_schema"),
    json_schema: Schema.Struct({
      name: optional(Schema.String),
      description: optional(Schema.String),
      schema: JsonSchemaObject,
      // the grammar always enforces the schema; strict adds nothing
      strict: optional(Schema.Boolean)
    }).annotations(lenient)
  })
)
export type ResponseFormat = typeof ResponseFormat.Type

export const FunctionTool = Schema.Struct({
  type: only("function", "tools"),
  function: Schema.Struct({
    name: Schema.String.pipe(Schema.pattern(/^[a-zA-Z0-9_.-]{1,64}$/, {
      message: () => "a function name is 1-64 letters, digits, '_', '.' or '-'"
    })),
    description: optional(Schema.String),
    parameters: optional(JsonSchemaObject),
    // the grammar enforces the schema whenever it constrains a call; strict adds nothing
    strict: optional(Schema.Boolean)
  }).annotations(lenient)
}).annotations(lenient)

export const Tool = FunctionTool
export type Tool = typeof FunctionTool.Type

export const ToolChoice = Schema.Union(
  Schema.Literal("auto", "none", "required"),
  Schema.Struct({ type: Schema.Literal("function"), function: Schema.Struct({ name: Schema.String }) })
)
export type ToolChoice = typeof ToolChoice.Type

export const ReasoningEffort = Schema.Literal("none", "minimal", "low", "medium", "high")

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
  n: optional(
    Schema.Literal(1).annotations({ message: () => "'n' must be 1: only one choice is generated per request" })
  ),
  stream: Schema.optionalWith(Schema.Boolean, { nullable: true, default: () => false }),
  stream_options: optional(StreamOptions),
  response_format: optional(ResponseFormat),
  logprobs: NotImplemented("logprobs", "log probabilities are not implemented"),
  logit_bias: NotImplemented("logit_bias", "logit_bias is not implemented"),
  user: Ignored,
  metadata: Ignored,
  store: Ignored,
  service_tier: Ignored
}

export class ChatCompletionRequest extends Schema.Class<ChatCompletionRequest>("ChatCompletionRequest")({
  ...samplingFields,
  messages: Schema.Array(ChatCompletionMessage).pipe(Schema.minItems(1)),
  max_completion_tokens: optional(MaxTokens),
  tools: optional(Schema.Array(Tool)),
  tool_choice: optional(ToolChoice),
  parallel_tool_calls: optional(Schema.Boolean),
  reasoning_effort: optional(ReasoningEffort),
  top_logprobs: NotImplemented("top_logprobs", "log probabilities are not implemented"),
  functions: NotImplemented("functions", "the deprecated 'functions' are not implemented; use 'tools'"),
  function_call: NotImplemented(
    "function_call",
    "the deprecated 'function_call' is not implemented; use 'tool_choice'",
    (v) => isNeutral(v) || v === "none"
  ),
  audio: NotImplemented("audio", "audio output is not implemented"),
  modalities: NotImplemented(
    "modalities",
    "only text output is implemented",
    (v) => isNeutral(v) || (Array.isArray(v) && v.length === 1 && v[0] === "text")
  ),
  prediction: NotImplemented("prediction", "predicted outputs are not implemented"),
  verbosity: NotImplemented("verbosity", "verbosity is not implemented"),
  web_search_options: NotImplemented("web_search_options", "web search is not implemented")
}) {}

export class CompletionRequest extends Schema.Class<CompletionRequest>("CompletionRequest")({
  ...samplingFields,
  // a list of one prompt is what SDKs send for batch-shaped calls; token arrays are not supported
  prompt: Schema.Union(Schema.String, Schema.Tuple(Schema.String)),
  echo: NotImplemented("echo", "echo is not implemented"),
  suffix: NotImplemented("suffix", "suffix (insertion) is not implemented", (v) => isNeutral(v) || v === ""),
  best_of: NotImplemented(
    "best_of",
    "best_of is not implemented; only one completion is generated",
    (v) => isNeutral(v) || v === 1
  )
}) {}

export class EmbeddingRequest extends Schema.Class<EmbeddingRequest>("EmbeddingRequest")({
  model: Schema.String.pipe(Schema.minLength(1)),
  input: Schema.Union(Schema.String, Schema.Array(Schema.String).pipe(Schema.minItems(1), Schema.maxItems(2048))),
  encoding_format: Schema.optionalWith(Schema.Literal("float", "base64"), {
    nullable: true,
    default: () => "float" as const
  }),
  dimensions: NotImplemented("dimensions", "dimensions is not implemented; vectors have the model's own size"),
  user: Ignored
}) {}

// --- responses -------------------------------------------------------------------------------

export const FinishReason = Schema.Literal("stop", "length", "tool_calls")

/** What every completion object and chunk starts with. */
const objectFields = <O extends string>(object: O) => ({
  id: Schema.String,
  object: Schema.Literal(object),
  created: Schema.Number,
  model: Schema.String,
  system_fingerprint: Schema.Null
})

export const ToolCallOut = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("function"),
  function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
})
export type ToolCallOut = typeof ToolCallOut.Type

export const ChatCompletion = Schema.Struct({
  ...objectFields("chat.completion"),
  choices: Schema.Tuple(Schema.Struct({
    index: Schema.Number,
    message: Schema.Struct({
      role: Schema.Literal("assistant"),
      content: Schema.NullOr(Schema.String),
      reasoning_content: Schema.optional(Schema.String),
      tool_calls: Schema.optional(Schema.Array(ToolCallOut)),
      refusal: Schema.Null
    }),
    logprobs: Schema.Null,
    finish_reason: FinishReason
  })),
  usage: Usage
})
export type ChatCompletion = typeof ChatCompletion.Type

/** A streamed tool call fragment: the first carries id, type and name; later ones more arguments. */
export const ToolCallDelta = Schema.Struct({
  index: Schema.Number,
  id: Schema.optional(Schema.String),
  type: Schema.optional(Schema.Literal("function")),
  function: Schema.Struct({ name: Schema.optional(Schema.String), arguments: Schema.String })
})
export type ToolCallDelta = typeof ToolCallDelta.Type

export const ChatCompletionChunk = Schema.Struct({
  ...objectFields("chat.completion.chunk"),
  choices: Schema.Array(Schema.Struct({
    index: Schema.Number,
    delta: Schema.Struct({
      role: Schema.optional(Schema.Literal("assistant")),
      content: Schema.optional(Schema.String),
      reasoning_content: Schema.optional(Schema.String),
      tool_calls: Schema.optional(Schema.Array(ToolCallDelta))
    }),
    logprobs: Schema.Null,
    finish_reason: Schema.NullOr(FinishReason)
  })),
  usage: Schema.optional(Schema.NullOr(Usage))
})
export type ChatCompletionChunk = typeof ChatCompletionChunk.Type

const CompletionChoice = Schema.Struct({
  index: Schema.Number,
  text: Schema.String,
  logprobs: Schema.Null,
  finish_reason: Schema.NullOr(Schema.Literal("stop", "length"))
})

export const Completion = Schema.Struct({
  ...objectFields("text_completion"),
  choices: Schema.Array(CompletionChoice),
  usage: Schema.optional(Schema.NullOr(Usage))
})
export type Completion = typeof Completion.Type

export const Model = Schema.Struct({
  id: Schema.String,
  object: Schema.Literal("model"),
  created: Schema.Number,
  owned_by: Schema.String
})
export type Model = typeof Model.Type

export const ModelList = Schema.Struct({ object: Schema.Literal("list"), data: Schema.Array(Model) })
export type ModelList = typeof ModelList.Type

export const EmbeddingList = Schema.Struct({
  object: Schema.Literal("list"),
  data: Schema.Array(Schema.Struct({
    object: Schema.Literal("embedding"),
    index: Schema.Number,
    embedding: Schema.Union(Schema.Array(Schema.Number), Schema.String)
  })),
  model: Schema.String,
  usage: Schema.Struct({ prompt_tokens: Schema.Number, total_tokens: Schema.Number })
})
export type EmbeddingList = typeof EmbeddingList.Type

export const ErrorBody = Schema.Struct({
  error: Schema.Struct({
    message: Schema.String,
    type: Schema.String,
    param: Schema.NullOr(Schema.String),
    code: Schema.String
  })
})
export type ErrorBody = typeof ErrorBody.Type
