import { ParseResult, Schema } from "effect"
import { JsonSchemaObject, strict } from "./OpenAi.js"
import { MaxTokens, Temperature } from "./SeedApi.js"

/**
 * The requests of OpenAI's Responses API (`POST /v1/responses`). Shimmy is stateless: nothing is
 * stored, so what refers to a stored response or conversation is refused by name, and a request
 * carries its whole conversation in `input`. As in OpenAi.ts, `null` means "left out", a request's
 * own fields are strict (an unknown one is refused by name) and nested objects take extra fields.
 * The response object and the stream events are in ResponseObject.ts.
 */

export { strict }

const optional = <A, I, R>(schema: Schema.Schema<A, I, R>) => Schema.optionalWith(schema, { nullable: true })

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const lenient = { parseOptions: { onExcessProperty: "ignore" } } as const

/** A field that does not change the output (an end-user id, a cache key): accepted and ignored. */
const Ignored = Schema.optional(Schema.Unknown)

/** A field Shimmy knows and refuses unless it asks for nothing; the message names it and says why. */
const Refused = (field: string, why: string, neutral: (value: unknown) => boolean = (v) => v === null) =>
  Schema.optional(
    Schema.Unknown.pipe(Schema.filter((value) => neutral(value) || `'${field}' is not supported: ${why}`))
  )

const STATELESS = "Shimmy is stateless and keeps no responses or conversations; send the whole conversation in 'input'"

const quote = (u: unknown) => JSON.stringify(u) ?? String(u)

// --- content -----------------------------------------------------------------------------------

const partTypeMessage = (actual: unknown) =>
  actual === "input_image" || actual === "input_file" || actual === "input_audio"
    ? `${quote(actual)} parts are not supported: Shimmy's models read text only (no images, files or audio)`
    : `content parts of type ${quote(actual)} are not supported; only "input_text" and "output_text" parts are`

/** Text of a message: `input_text` (what users send), `output_text` (an assistant turn sent back). */
export const TextPart = Schema.Struct({
  type: Schema.Literal("input_text", "output_text").annotations({
    // on the union of both literals, not on each one's mismatch
    message: (issue) => ({ message: partTypeMessage(issue.actual), override: true })
  }),
  text: Schema.String
}).annotations(lenient)

/**
 * A string or a list, told apart by shape before decoding, so a wrong list reports its own first
 * wrong element rather than "Expected string".
 */
const stringOr = <A, I>(list: Schema.Schema<ReadonlyArray<A>, I>, what: string) =>
  Schema.transformOrFail(Schema.Unknown, Schema.typeSchema(Schema.Union(Schema.String, list)), {
    strict: true,
    decode: (u, options, ast) =>
      typeof u === "string"
        ? ParseResult.succeed(u)
        : Array.isArray(u)
        ? ParseResult.decodeUnknown(list)(u, options)
        : ParseResult.fail(new ParseResult.Type(ast, u, `expected a string or a list of ${what}, got ${quote(u)}`)),
    encode: ParseResult.succeed
  })

export const Content = stringOr(Schema.Array(TextPart), "text parts")
export type Content = typeof Content.Type

// --- input items ---------------------------------------------------------------------------------

export const MessageItem = Schema.Struct({
  type: Schema.optional(Schema.Literal("message")),
  // "developer" is what newer OpenAI models call the system role
  role: Schema.Literal("user", "assistant", "system", "developer"),
  content: Content
}).annotations(lenient)
export type MessageItem = typeof MessageItem.Type

export const FunctionCallItem = Schema.Struct({
  type: Schema.Literal("function_call"),
  call_id: Schema.String.pipe(Schema.minLength(1)),
  name: Schema.String.pipe(Schema.minLength(1)),
  arguments: Schema.String
}).annotations(lenient)
export type FunctionCallItem = typeof FunctionCallItem.Type

export const FunctionCallOutputItem = Schema.Struct({
  type: Schema.Literal("function_call_output"),
  call_id: Schema.String.pipe(Schema.minLength(1)),
  output: Content
}).annotations(lenient)
export type FunctionCallOutputItem = typeof FunctionCallOutputItem.Type

const ReasoningText = Schema.Struct({ type: Schema.String, text: Schema.String }).annotations(lenient)

/** An earlier turn's reasoning, sent back by agent loops; its text is kept, encrypted content ignored. */
export const ReasoningItem = Schema.Struct({
  type: Schema.Literal("reasoning"),
  summary: optional(Schema.Array(ReasoningText)),
  content: optional(Schema.Array(ReasoningText))
}).annotations(lenient)
export type ReasoningItem = typeof ReasoningItem.Type

export type InputItem = MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem

const items = {
  message: MessageItem,
  function_call: FunctionCallItem,
  function_call_output: FunctionCallOutputItem,
  reasoning: ReasoningItem
} as const

const itemTypeMessage = (type: unknown) =>
  type === "item_reference"
    ? `input items of type "item_reference" are not supported: ${STATELESS}`
    : `input items of type ${
      quote(type)
    } are not supported; Shimmy takes "message", "function_call", "function_call_output" and "reasoning" items`

/**
 * One input item, told apart by its `type` (a message may leave it out), so a wrong item is
 * reported against its own schema rather than as a mismatch with every kind of item.
 */
export const InputItem: Schema.Schema<InputItem, unknown> = Schema.transformOrFail(
  Schema.Unknown,
  Schema.typeSchema(Schema.Union(MessageItem, FunctionCallItem, FunctionCallOutputItem, ReasoningItem)),
  {
    strict: true,
    decode: (u, options, ast) => {
      if (!isRecord(u)) return ParseResult.fail(new ParseResult.Type(ast, u, "an input item must be an object"))
      const type = u["type"] ?? ("role" in u ? "message" : undefined)
      if (type === undefined) {
        return ParseResult.fail(
          new ParseResult.Type(ast, u, "an input item needs a 'type' (or a 'role', for a message)")
        )
      }
      const schema = typeof type === "string" && Object.hasOwn(items, type)
        ? items[type as keyof typeof items]
        : undefined
      if (schema === undefined) {
        return ParseResult.fail(
          new ParseResult.Pointer("type", u, new ParseResult.Type(ast, type, itemTypeMessage(type)))
        )
      }
      return ParseResult.decodeUnknown(schema as Schema.Schema<InputItem, unknown>)(u, options)
    },
    encode: ParseResult.succeed
  }
)

export const Input = stringOr(
  Schema.Array(InputItem).pipe(Schema.minItems(1, { message: () => "'input' must not be empty" })),
  "input items"
)

// --- tools and formats -------------------------------------------------------------------------------

const toolTypeMessage = (actual: unknown) =>
  `${
    quote(actual)
  } tools are not supported: Shimmy runs no built-in tools (web_search, file_search, computer_use, code_interpreter, mcp, ...); only "function" tools, which the client runs`

export const FunctionTool = Schema.Struct({
  type: Schema.Literal("function").annotations({ message: (issue) => toolTypeMessage(issue.actual) }),
  name: Schema.String.pipe(Schema.pattern(/^[a-zA-Z0-9_.-]{1,64}$/, {
    message: () => "a function name is 1-64 letters, digits, '_', '.' or '-'"
  })),
  description: optional(Schema.String),
  parameters: optional(JsonSchemaObject),
  // the grammar enforces the schema whenever it constrains a call; strict adds nothing
  strict: optional(Schema.Boolean)
}).annotations(lenient)
export type FunctionTool = typeof FunctionTool.Type

export const ToolChoice = Schema.Union(
  Schema.Literal("auto", "none", "required"),
  Schema.Struct({
    type: Schema.Literal("function").annotations({
      message: (issue) =>
        `${quote(issue.actual)} is not supported; use "auto", "none", "required" or {"type": "function", "name": ...}`
    }),
    name: Schema.String
  }).annotations(lenient)
)
export type ToolChoice = typeof ToolChoice.Type

export const TextFormat = Schema.Union(
  Schema.Struct({ type: Schema.Literal("text") }),
  Schema.Struct({ type: Schema.Literal("json_object") }),
  Schema.Struct({
    type: Schema.Literal("json_schema"),
    name: optional(Schema.String),
    description: optional(Schema.String),
    schema: JsonSchemaObject,
    // the grammar always enforces the schema; strict adds nothing
    strict: optional(Schema.Boolean)
  }).annotations(lenient)
)
export type TextFormat = typeof TextFormat.Type

export const TextConfig = Schema.Struct({
  format: optional(TextFormat),
  verbosity: optional(Schema.Literal("low", "medium", "high"))
}).annotations(lenient)
export type TextConfig = typeof TextConfig.Type

export const Effort = Schema.Literal("none", "minimal", "low", "medium", "high", "xhigh", "max")
export const Summary = Schema.Literal("auto", "concise", "detailed")

export const ReasoningConfig = Schema.Struct({
  effort: optional(Effort),
  summary: optional(Summary),
  generate_summary: optional(Summary)
}).annotations(lenient)
export type ReasoningConfig = typeof ReasoningConfig.Type

const Probability = Schema.Number.pipe(Schema.finite(), Schema.between(0, 1))

export class ResponseRequest extends Schema.Class<ResponseRequest>("ResponseRequest")({
  model: Schema.String.pipe(Schema.minLength(1)),
  input: Input,
  instructions: optional(Schema.String),
  tools: optional(Schema.Array(FunctionTool)),
  tool_choice: optional(ToolChoice),
  parallel_tool_calls: optional(Schema.Boolean),
  text: optional(TextConfig),
  reasoning: optional(ReasoningConfig),
  max_output_tokens: optional(MaxTokens),
  temperature: optional(Temperature),
  top_p: optional(Probability),
  stream: Schema.optionalWith(Schema.Boolean, { nullable: true, default: () => false }),
  stream_options: Ignored,
  // accepted (clients send OpenAI's default, true) and never honoured: answers say `store: false`
  store: optional(Schema.Boolean),
  metadata: optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  truncation: optional(Schema.Literal("auto", "disabled")),
  // what the other values ask for is never produced (encrypted reasoning, built-in tools' results)
  include: optional(
    Schema.Array(Schema.String).pipe(Schema.filter((values) =>
      !values.includes("message.output_text.logprobs") ||
      "'include': \"message.output_text.logprobs\" is not supported: log probabilities are not implemented"
    ))
  ),
  user: Ignored,
  service_tier: Ignored,
  prompt_cache_key: Ignored,
  prompt_cache_retention: Ignored,
  prompt_cache_options: Ignored,
  safety_identifier: Ignored,
  // a cap on built-in tool calls, and Shimmy runs none: it never changes anything
  max_tool_calls: Ignored,
  previous_response_id: Refused("previous_response_id", STATELESS),
  conversation: Refused("conversation", STATELESS),
  background: Refused(
    "background",
    "responses are answered while the request is open (background: false)",
    (v) => v === null || v === false
  ),
  prompt: Refused("prompt", "stored prompt templates are not kept; send 'instructions' and 'input'"),
  top_logprobs: Refused("top_logprobs", "log probabilities are not implemented", (v) => v === null || v === 0),
  context_management: Refused(
    "context_management",
    "context compaction is not implemented",
    (v) => v === null || (Array.isArray(v) && v.length === 0)
  ),
  moderation: Refused("moderation", "moderation is not implemented")
}) {}
