import * as crypto from "node:crypto"
import type { FormatOut, ResponseObject, ResponseStatus, ResponseUsage, ToolOut } from "../../domain/ResponseObject.js"
import type { ResponseRequest, TextFormat } from "../../domain/Responses.js"
import type { Dialect } from "../Dialect.js"
import * as OpenAiRender from "../openai/Render.js"
import type { ErrorReply } from "../Reply.js"

/**
 * OpenAI's Responses renderings: the `response` object, built once per request from what the
 * request asked (echoed as OpenAI echoes it) and what the generation produced (Output.ts), and
 * OpenAI's error shape, shared with the chat endpoints so the SDK raises the same typed errors.
 */

export const dialect: Dialect = {
  name: "responses",
  // the longest prefix wins (Routes.dialectOf): /v1/responses/... is this dialect's, the rest of /v1 chat's
  prefixes: ["/v1/responses"],
  errorBody: OpenAiRender.dialect.errorBody,
  ...(OpenAiRender.dialect.errorSchema !== undefined ? { errorSchema: OpenAiRender.dialect.errorSchema } : {})
}

/** OpenAI's ids: a type prefix and hex (`resp_...`, `msg_...`, `rs_...`, `fc_...`). */
export const newId = (prefix: string) => `${prefix}_${crypto.randomUUID().replace(/-/g, "")}`

const now = () => Math.floor(Date.now() / 1000)

const toolOut = (tool: NonNullable<ResponseRequest["tools"]>[number]): ToolOut => ({
  type: "function",
  name: tool.name,
  description: tool.description ?? null,
  parameters: tool.parameters ?? null,
  // OpenAI's default; the grammar enforces the schema either way
  strict: tool.strict ?? true
})

const formatOut = (format: TextFormat | undefined): FormatOut =>
  format === undefined || format.type === "text"
    ? { type: "text" }
    : format.type === "json_object"
    ? { type: "json_object" }
    : {
      type: "json_schema",
      name: format.name ?? "response",
      ...(format.description !== undefined ? { description: format.description } : {}),
      schema: format.schema,
      strict: format.strict ?? false
    }

/** The fields a response repeats from its request, the same in every event of a stream. */
export type Envelope = Omit<
  ResponseObject,
  "status" | "completed_at" | "error" | "incomplete_details" | "output" | "usage"
>

export const envelopeOf = (request: ResponseRequest): Envelope => ({
  id: newId("resp"),
  object: "response",
  created_at: now(),
  model: request.model,
  instructions: request.instructions ?? null,
  tools: (request.tools ?? []).map(toolOut),
  tool_choice: request.tool_choice ?? "auto",
  parallel_tool_calls: request.parallel_tool_calls ?? true,
  temperature: request.temperature ?? 1,
  top_p: request.top_p ?? 1,
  max_output_tokens: request.max_output_tokens ?? null,
  text: { format: formatOut(request.text?.format), verbosity: request.text?.verbosity ?? "medium" },
  reasoning: {
    effort: request.reasoning?.effort ?? null,
    summary: request.reasoning?.summary ?? request.reasoning?.generate_summary ?? null
  },
  truncation: request.truncation ?? "disabled",
  // Shimmy keeps nothing, whatever `store` asked: saying so lets a client know not to refer back
  store: false,
  background: false,
  previous_response_id: null,
  service_tier: "default",
  top_logprobs: 0,
  metadata: request.metadata ?? {}
})

/** What the generation made of the response so far. */
export interface Outcome {
  readonly status: ResponseStatus
  readonly output: ResponseObject["output"]
  readonly usage: ResponseUsage | null
  readonly error: ResponseObject["error"]
}

export const responseOf = (envelope: Envelope, outcome: Outcome): ResponseObject => ({
  ...envelope,
  status: outcome.status,
  completed_at: outcome.status === "in_progress" ? null : now(),
  error: outcome.error,
  incomplete_details: outcome.status === "incomplete" ? { reason: "max_output_tokens" } : null,
  output: outcome.output,
  usage: outcome.usage
})

/** A failure after the stream began, as the SDK's `ResponseError` codes tell it. */
export const errorOf = (reply: ErrorReply): NonNullable<ResponseObject["error"]> => ({
  code: reply.status === 429 || reply.status === 503
    ? "rate_limit_exceeded"
    : reply.status >= 500
    ? "server_error"
    : "invalid_prompt",
  message: reply.details
})
