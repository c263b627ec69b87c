import { Schema } from "effect"
import { JsonSchemaObject } from "./OpenAi.js"
import { Effort, Summary } from "./Responses.js"

/**
 * What `POST /v1/responses` answers: the `response` object (as JSON, or as the payload of the
 * stream's lifecycle events) and the stream events, as the `openai` SDK's types declare them
 * (node_modules/openai/resources/responses/responses.d.ts); the SDK computes `output_text` itself.
 */

export const OutputText = Schema.Struct({
  type: Schema.Literal("output_text"),
  text: Schema.String,
  annotations: Schema.Tuple(),
  logprobs: Schema.Tuple()
})
export type OutputText = typeof OutputText.Type

export const ReasoningText = Schema.Struct({ type: Schema.Literal("reasoning_text"), text: Schema.String })
export type ReasoningText = typeof ReasoningText.Type

export const ItemStatus = Schema.Literal("in_progress", "completed", "incomplete")
export type ItemStatus = typeof ItemStatus.Type

export const MessageOut = Schema.Struct({
  type: Schema.Literal("message"),
  id: Schema.String,
  status: ItemStatus,
  role: Schema.Literal("assistant"),
  content: Schema.Array(OutputText)
})
export type MessageOut = typeof MessageOut.Type

/** The model's thought, in full (`content`); Shimmy writes no summaries. */
export const ReasoningOut = Schema.Struct({
  type: Schema.Literal("reasoning"),
  id: Schema.String,
  status: ItemStatus,
  summary: Schema.Tuple(),
  content: Schema.Array(ReasoningText)
})
export type ReasoningOut = typeof ReasoningOut.Type

export const FunctionCallOut = Schema.Struct({
  type: Schema.Literal("function_call"),
  id: Schema.String,
  call_id: Schema.String,
  name: Schema.String,
  arguments: Schema.String,
  status: ItemStatus
})
export type FunctionCallOut = typeof FunctionCallOut.Type

export const OutputItem = Schema.Union(MessageOut, ReasoningOut, FunctionCallOut)
export type OutputItem = typeof OutputItem.Type

export const ResponseUsage = Schema.Struct({
  input_tokens: Schema.Number,
  input_tokens_details: Schema.Struct({ cached_tokens: Schema.Number, cache_write_tokens: Schema.Number }),
  output_tokens: Schema.Number,
  output_tokens_details: Schema.Struct({ reasoning_tokens: Schema.Number }),
  total_tokens: Schema.Number
})
export type ResponseUsage = typeof ResponseUsage.Type

/** A function tool as the response echoes it, with OpenAI's defaults filled in. */
export const ToolOut = Schema.Struct({
  type: Schema.Literal("function"),
  name: Schema.String,
  description: Schema.NullOr(Schema.String),
  parameters: Schema.NullOr(JsonSchemaObject),
  strict: Schema.Boolean
})
export type ToolOut = typeof ToolOut.Type

export const ToolChoiceOut = Schema.Union(
  Schema.Literal("auto", "none", "required"),
  Schema.Struct({ type: Schema.Literal("function"), name: Schema.String })
)

/** `text.format` as echoed: a json_schema format always has its name and strictness. */
export const FormatOut = Schema.Union(
  Schema.Struct({ type: Schema.Literal("text") }),
  Schema.Struct({ type: Schema.Literal("json_object") }),
  Schema.Struct({
    type: Schema.Literal("json_schema"),
    name: Schema.String,
    description: Schema.optionalWith(Schema.String, { exact: true }),
    schema: JsonSchemaObject,
    strict: Schema.Boolean
  })
)
export type FormatOut = typeof FormatOut.Type

export const ResponseStatus = Schema.Literal("in_progress", "completed", "incomplete", "failed")
export type ResponseStatus = typeof ResponseStatus.Type

/** `code` is one of the SDK's `ResponseError` codes: `server_error`, `rate_limit_exceeded`, `invalid_prompt`. */
export const ResponseError = Schema.Struct({
  code: Schema.Literal("server_error", "rate_limit_exceeded", "invalid_prompt"),
  message: Schema.String
})

export const ResponseObject = Schema.Struct({
  id: Schema.String,
  object: Schema.Literal("response"),
  created_at: Schema.Number,
  completed_at: Schema.NullOr(Schema.Number),
  status: ResponseStatus,
  error: Schema.NullOr(ResponseError),
  incomplete_details: Schema.NullOr(Schema.Struct({ reason: Schema.Literal("max_output_tokens") })),
  model: Schema.String,
  output: Schema.Array(OutputItem),
  usage: Schema.NullOr(ResponseUsage),
  instructions: Schema.NullOr(Schema.String),
  tools: Schema.Array(ToolOut),
  tool_choice: ToolChoiceOut,
  parallel_tool_calls: Schema.Boolean,
  temperature: Schema.Number,
  top_p: Schema.Number,
  max_output_tokens: Schema.NullOr(Schema.Number),
  text: Schema.Struct({ format: FormatOut, verbosity: Schema.Literal("low", "medium", "high") }),
  reasoning: Schema.Struct({ effort: Schema.NullOr(Effort), summary: Schema.NullOr(Summary) }),
  truncation: Schema.Literal("auto", "disabled"),
  // nothing is stored, whatever the request asked
  store: Schema.Literal(false),
  background: Schema.Literal(false),
  previous_response_id: Schema.Null,
  service_tier: Schema.Literal("default"),
  top_logprobs: Schema.Literal(0),
  metadata: Schema.Record({ key: Schema.String, value: Schema.String })
})
export type ResponseObject = typeof ResponseObject.Type

// --- stream events ---------------------------------------------------------------------------------

const lifecycle = <T extends string>(type: T) =>
  Schema.Struct({ type: Schema.Literal(type), sequence_number: Schema.Number, response: ResponseObject })

const itemEvent = <T extends string>(type: T) =>
  Schema.Struct({
    type: Schema.Literal(type),
    sequence_number: Schema.Number,
    output_index: Schema.Number,
    item: OutputItem
  })

const inItem = { sequence_number: Schema.Number, item_id: Schema.String, output_index: Schema.Number }
const inPart = { ...inItem, content_index: Schema.Number }

const partEvent = <T extends string>(type: T) =>
  Schema.Struct({ type: Schema.Literal(type), ...inPart, part: Schema.Union(OutputText, ReasoningText) })

export const StreamEvent = Schema.Union(
  lifecycle("response.created"),
  lifecycle("response.in_progress"),
  lifecycle("response.completed"),
  lifecycle("response.incomplete"),
  lifecycle("response.failed"),
  itemEvent("response.output_item.added"),
  itemEvent("response.output_item.done"),
  partEvent("response.content_part.added"),
  partEvent("response.content_part.done"),
  Schema.Struct({
    type: Schema.Literal("response.output_text.delta"),
    ...inPart,
    delta: Schema.String,
    logprobs: Schema.Tuple()
  }),
  Schema.Struct({
    type: Schema.Literal("response.output_text.done"),
    ...inPart,
    text: Schema.String,
    logprobs: Schema.Tuple()
  }),
  Schema.Struct({ type: Schema.Literal("response.reasoning_text.delta"), ...inPart, delta: Schema.String }),
  Schema.Struct({ type: Schema.Literal("response.reasoning_text.done"), ...inPart, text: Schema.String }),
  Schema.Struct({ type: Schema.Literal("response.function_call_arguments.delta"), ...inItem, delta: Schema.String }),
  Schema.Struct({
    type: Schema.Literal("response.function_call_arguments.done"),
    ...inItem,
    name: Schema.String,
    arguments: Schema.String
  })
)
export type StreamEvent = typeof StreamEvent.Type
