import { Schema } from "effect"

/**
 * The wire types of Anthropic's Messages API (`/v1/messages`, `/v1/messages/count_tokens`), requests
 * and responses. Unlike the OpenAI dialect's strict mode, a request's unknown fields are ignored:
 * Claude Code and the SDK send many (`metadata`, `service_tier`, `context_management`, betas) that
 * change nothing here. The fields Shimmy reads are decoded strictly by type. `null` is accepted
 * where a field is optional, as the SDK's types allow it.
 */

const optional = <A, I, R>(schema: Schema.Schema<A, I, R>) => Schema.optionalWith(schema, { nullable: true })

/** A field that does not change the output (cache breakpoints, citations, callers): accepted and ignored. */
const Ignored = Schema.optional(Schema.Unknown)

const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

// --- request content blocks --------------------------------------------------------------------

export const TextBlockParam = Schema.Struct({
  type: Schema.Literal("text"),
  text: Schema.String,
  cache_control: Ignored,
  citations: Ignored
})
export type TextBlockParam = typeof TextBlockParam.Type

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const VISION = new Set(["image", "document"])

/** Why a block of this type is refused: images and documents need vision, the rest are Anthropic's own. */
const refusal = (type: string) =>
  VISION.has(type)
    ? `content blocks of type '${type}' are not supported: Shimmy's models read text only`
    : `content blocks of type '${type}' are not supported here`

/**
 * Blocks of the types `known` decoded by `union`; any other type is refused by name first (a
 * union would only say which types it expected).
 */
const blocksOf = <A, I>(known: ReadonlyArray<string>, union: Schema.Schema<A, I>) =>
  Schema.compose(
    Schema.Unknown.pipe(Schema.filter((block) =>
      !isRecord(block) || typeof block["type"] !== "string" || known.includes(block["type"]) ||
      refusal(block["type"])
    )),
    union,
    { strict: false }
  )

/** What a tool's result may hold: text (images and documents are refused: no vision). */
export const ToolResultContent = blocksOf(["text"], TextBlockParam)

export const ToolUseBlockParam = Schema.Struct({
  type: Schema.Literal("tool_use"),
  id: Schema.String,
  name: Schema.String.pipe(Schema.minLength(1)),
  input: JsonObject,
  cache_control: Ignored,
  caller: Ignored
})
export type ToolUseBlockParam = typeof ToolUseBlockParam.Type

export const ToolResultBlockParam = Schema.Struct({
  type: Schema.Literal("tool_result"),
  tool_use_id: Schema.String,
  content: optional(Schema.Union(Schema.Array(ToolResultContent), Schema.String)),
  is_error: optional(Schema.Boolean),
  cache_control: Ignored
})
export type ToolResultBlockParam = typeof ToolResultBlockParam.Type

export const ThinkingBlockParam = Schema.Struct({
  type: Schema.Literal("thinking"),
  thinking: Schema.String,
  signature: optional(Schema.String)
})

export const RedactedThinkingBlockParam = Schema.Struct({
  type: Schema.Literal("redacted_thinking"),
  data: Schema.String
})

export const ContentBlockParam = blocksOf(
  ["text", "tool_use", "tool_result", "thinking", "redacted_thinking"],
  Schema.Union(TextBlockParam, ToolUseBlockParam, ToolResultBlockParam, ThinkingBlockParam, RedactedThinkingBlockParam)
)
export type ContentBlockParam = typeof ContentBlockParam.Type

export const MessageParam = Schema.Struct({
  // Claude Code sends `system` turns in the conversation too (reminders after a user turn)
  role: Schema.Literal("user", "assistant", "system"),
  // the list first: a wrong block is then reported as such, not as "expected string"
  content: Schema.Union(Schema.Array(ContentBlockParam), Schema.String)
})
export type MessageParam = typeof MessageParam.Type

// --- tools, thinking, the request ----------------------------------------------------------------

/**
 * A tool: a custom one (no `type`, or "custom") has a name and an input schema; one with another
 * `type` (`web_search_20250305`, `bash_20250124`, `text_editor_...`) is one of Anthropic's, which
 * the decoder sets aside.
 */
export const Tool = Schema.Struct({
  type: optional(Schema.String),
  name: Schema.String.pipe(Schema.minLength(1)),
  description: optional(Schema.String),
  input_schema: optional(JsonObject),
  cache_control: Ignored
})
export type Tool = typeof Tool.Type

const Parallel = { disable_parallel_tool_use: optional(Schema.Boolean) }

export const ToolChoice = Schema.Union(
  Schema.Struct({ type: Schema.Literal("auto"), ...Parallel }),
  Schema.Struct({ type: Schema.Literal("any"), ...Parallel }),
  Schema.Struct({ type: Schema.Literal("tool"), name: Schema.String, ...Parallel }),
  Schema.Struct({ type: Schema.Literal("none") })
)
export type ToolChoice = typeof ToolChoice.Type

export const ThinkingConfig = Schema.Union(
  Schema.Struct({
    type: Schema.Literal("enabled"),
    budget_tokens: Schema.Int.pipe(Schema.positive()),
    display: Ignored
  }),
  Schema.Struct({ type: Schema.Literal("disabled") }),
  Schema.Struct({ type: Schema.Literal("adaptive"), display: Ignored }),
  Schema.Struct({ type: Schema.Literal("between_tools") })
)
export type ThinkingConfig = typeof ThinkingConfig.Type

export const OutputConfig = Schema.Struct({
  effort: optional(Schema.Literal("low", "medium", "high", "xhigh", "max")),
  format: optional(Schema.Struct({ type: Schema.Literal("json_schema"), schema: JsonObject }))
})

const SystemPrompt = Schema.Union(Schema.Array(TextBlockParam), Schema.String)

/** What `/v1/messages/count_tokens` reads: everything that makes the prompt. */
const promptFields = {
  model: Schema.String.pipe(Schema.minLength(1)),
  messages: Schema.Array(MessageParam).pipe(Schema.minItems(1)),
  system: optional(SystemPrompt),
  tools: optional(Schema.Array(Tool)),
  tool_choice: optional(ToolChoice),
  thinking: optional(ThinkingConfig),
  output_config: optional(OutputConfig)
}

export class CountTokensRequest extends Schema.Class<CountTokensRequest>("CountTokensRequest")(promptFields) {}

const StopSequence = Schema.String.pipe(Schema.minLength(1, { message: () => "a stop sequence may not be empty" }))

export class MessagesRequest extends Schema.Class<MessagesRequest>("MessagesRequest")({
  ...promptFields,
  // required, as Anthropic has it; the context caps it anyway
  max_tokens: Schema.Int.pipe(Schema.positive()),
  stop_sequences: optional(Schema.Array(StopSequence)),
  temperature: optional(Schema.Number.pipe(Schema.finite(), Schema.between(0, 1))),
  top_p: optional(Schema.Number.pipe(Schema.finite(), Schema.between(0, 1))),
  top_k: optional(Schema.Int.pipe(Schema.nonNegative())),
  stream: Schema.optionalWith(Schema.Boolean, { nullable: true, default: () => false })
}) {}

// --- responses -----------------------------------------------------------------------------------

export const StopReason = Schema.Literal(
  "end_turn",
  "max_tokens",
  "stop_sequence",
  "tool_use",
  "model_context_window_exceeded"
)
export type StopReason = typeof StopReason.Type

export const TextBlock = Schema.Struct({ type: Schema.Literal("text"), text: Schema.String, citations: Schema.Null })
export const ThinkingBlock = Schema.Struct({
  type: Schema.Literal("thinking"),
  thinking: Schema.String,
  signature: Schema.String
})
export const ToolUseBlock = Schema.Struct({
  type: Schema.Literal("tool_use"),
  id: Schema.String,
  name: Schema.String,
  input: JsonObject
})

export const ContentBlock = Schema.Union(ThinkingBlock, TextBlock, ToolUseBlock)
export type ContentBlock = typeof ContentBlock.Type

export const Usage = Schema.Struct({
  input_tokens: Schema.Number,
  output_tokens: Schema.Number,
  cache_creation_input_tokens: Schema.Number,
  cache_read_input_tokens: Schema.Number
})
export type Usage = typeof Usage.Type

export const Message = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("message"),
  role: Schema.Literal("assistant"),
  model: Schema.String,
  content: Schema.Array(ContentBlock),
  stop_reason: Schema.NullOr(StopReason),
  stop_sequence: Schema.NullOr(Schema.String),
  usage: Usage
})
export type Message = typeof Message.Type

export const MessageTokensCount = Schema.Struct({ input_tokens: Schema.Number })
export type MessageTokensCount = typeof MessageTokensCount.Type

/** The streamed events, each named by its `type` on the wire (`event: <type>`). */
export const StreamEvent = Schema.Union(
  Schema.Struct({ type: Schema.Literal("message_start"), message: Message }),
  Schema.Struct({ type: Schema.Literal("ping") }),
  Schema.Struct({
    type: Schema.Literal("content_block_start"),
    index: Schema.Number,
    content_block: ContentBlock
  }),
  Schema.Struct({
    type: Schema.Literal("content_block_delta"),
    index: Schema.Number,
    delta: Schema.Union(
      Schema.Struct({ type: Schema.Literal("text_delta"), text: Schema.String }),
      Schema.Struct({ type: Schema.Literal("thinking_delta"), thinking: Schema.String }),
      Schema.Struct({ type: Schema.Literal("signature_delta"), signature: Schema.String }),
      Schema.Struct({ type: Schema.Literal("input_json_delta"), partial_json: Schema.String })
    )
  }),
  Schema.Struct({ type: Schema.Literal("content_block_stop"), index: Schema.Number }),
  Schema.Struct({
    type: Schema.Literal("message_delta"),
    delta: Schema.Struct({ stop_reason: StopReason, stop_sequence: Schema.NullOr(Schema.String) }),
    // the whole message's totals: the SDK overwrites what message_start said with them
    usage: Usage
  }),
  Schema.Struct({ type: Schema.Literal("message_stop") })
)
export type StreamEvent = typeof StreamEvent.Type

export const ErrorType = Schema.Literal(
  "invalid_request_error",
  "authentication_error",
  "permission_error",
  "not_found_error",
  "request_too_large",
  "rate_limit_error",
  "timeout_error",
  "api_error",
  "overloaded_error"
)
export type ErrorType = typeof ErrorType.Type

export const ErrorBody = Schema.Struct({
  type: Schema.Literal("error"),
  error: Schema.Struct({ type: ErrorType, message: Schema.String })
})
export type ErrorBody = typeof ErrorBody.Type

export const ModelInfo = Schema.Struct({
  type: Schema.Literal("model"),
  id: Schema.String,
  display_name: Schema.String,
  created_at: Schema.String
})

export const ModelList = Schema.Struct({
  data: Schema.Array(ModelInfo),
  has_more: Schema.Boolean,
  first_id: Schema.NullOr(Schema.String),
  last_id: Schema.NullOr(Schema.String)
})
export type ModelList = typeof ModelList.Type
