import * as crypto from "node:crypto"
import {
  type ContentBlock,
  ErrorBody,
  type ErrorType,
  type Message,
  type MessageTokensCount,
  type ModelList,
  type StopReason,
  type StreamEvent,
  type Usage
} from "../../domain/Anthropic.js"
import type { Answer, DoneEvent, GenerationEvent, ToolCall } from "../../domain/Generation.js"
import type { ModelInfo } from "../../domain/Model.js"
import type { Dialect } from "../Dialect.js"
import type { ErrorReply } from "../Reply.js"

/**
 * Anthropic's renderings: the `message` object, its stream of named events (message_start, blocks
 * opened, filled and stopped by index, message_delta, message_stop), token counts, and the error
 * shape `{"type":"error","error":{"type","message"}}` (from the one table in Reply.ts, so the SDK
 * raises its typed errors by status).
 */

const errorTypeOf = (status: number): ErrorType => {
  switch (status) {
    case 401:
      return "authentication_error"
    case 403:
      return "permission_error"
    case 404:
      return "not_found_error"
    case 408:
      return "timeout_error"
    case 413:
      return "request_too_large"
    case 429:
      return "rate_limit_error"
    case 503:
      return "overloaded_error"
    default:
      return status >= 500 ? "api_error" : "invalid_request_error"
  }
}

/** The engine names OpenAI's fields in its errors; Anthropic's requests call them otherwise. */
const paramOf = (param: string): string =>
  param
    .replace(/^tools\.(\d+)\.function\.parameters/, "tools.$1.input_schema")
    .replace(/^tools\.(\d+)\.function\.name/, "tools.$1.name")
    .replace(/^reasoning_effort$/, "thinking")
    .replace(/^response_format$/, "output_config.format")

const messageOf = (reply: ErrorReply): string => {
  const param = reply.param === undefined ? undefined : paramOf(reply.param)
  // the decoder's messages already start with the field; the engine's say what, not where
  return param === undefined || reply.details.includes(`'${param}'`) || reply.details.startsWith(param)
    ? reply.details
    : `${param}: ${reply.details}`
}

// the one table words it "The prompt is N tokens, which does not fit in the context of M tokens ..."
const TOO_LONG = /^The prompt is (\d+) tokens, which does not fit in the context of (\d+) tokens/

/**
 * Anthropic's own words for a prompt past the context, "prompt is too long: N tokens > M maximum":
 * clients read them (Claude Code compacts the conversation and retries).
 */
const tooLong = (reply: ErrorReply): string | undefined => {
  const match = reply.code === "context_length_exceeded" ? TOO_LONG.exec(reply.details) : null
  // one token must be left to generate: the longest prompt is the context less one
  return match === null ? undefined : `prompt is too long: ${match[1]} tokens > ${Number(match[2]) - 1} maximum`
}

export const errorBody = (reply: ErrorReply): ErrorBody => ({
  type: "error",
  error: { type: errorTypeOf(reply.status), message: tooLong(reply) ?? messageOf(reply) }
})

export const dialect: Dialect = {
  name: "anthropic",
  prefixes: ["/v1/messages"],
  errorSchema: ErrorBody,
  errorBody
}

const randomId = (prefix: string) => `${prefix}_${crypto.randomBytes(12).toString("base64url")}`

/** Anthropic's tool ids start with `toolu_`; the engine's `call_` ids keep their random part. */
const toolUseId = (id: string) => `toolu_${id.replace(/^call_/, "")}`

/**
 * A thinking block's signature: opaque to clients, who pass it back unchanged. Shimmy verifies
 * nothing with it (it keeps no thoughts between requests), so a digest of the thought does.
 */
const signatureOf = (thinking: string) => crypto.createHash("sha256").update(thinking).digest("base64")

/** A call's arguments are a JSON object the engine validated; `input` is that object. */
const inputOf = (call: ToolCall): Record<string, unknown> => {
  const parsed: unknown = JSON.parse(call.arguments)
  return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
    ? parsed as Record<string, unknown>
    : { value: parsed }
}

/** What of a request decides how its stop is told: its stop sequences and its token limit. */
export interface Ending {
  readonly stops: ReadonlyArray<string>
  readonly maxTokens: number
}

/** Why a generation ended, and which of the request's stop sequences ended it. */
const stopOf = (done: DoneEvent, { maxTokens, stops }: Ending): { reason: StopReason; sequence: string | null } => {
  switch (done.finishReason) {
    case "length":
      // short of max_tokens, the context was full (the engine stops there too)
      return {
        reason: done.usage.completion_tokens < maxTokens ? "model_context_window_exceeded" : "max_tokens",
        sequence: null
      }
    case "tool_calls":
      return { reason: "tool_use", sequence: null }
    case "stop":
      // a template's end-of-turn marker ends a turn; only the request's own stops are named
      return done.stopSequence !== undefined && stops.includes(done.stopSequence)
        ? { reason: "stop_sequence", sequence: done.stopSequence }
        : { reason: "end_turn", sequence: null }
  }
}

const usageOf = (input: number, output: number): Usage => ({
  input_tokens: input,
  output_tokens: output,
  cache_creation_input_tokens: 0,
  cache_read_input_tokens: 0
})

/** A whole answer: its thought, its text, then its calls (a text block when there is nothing else). */
export const message = (model: string, answer: Answer, ending: Ending): Message => {
  const calls: Array<ContentBlock> = answer.toolCalls.map((call) => ({
    type: "tool_use",
    id: toolUseId(call.id),
    name: call.name,
    input: inputOf(call)
  }))
  const content: Array<ContentBlock> = [
    ...(answer.reasoning.length > 0
      ? [{ type: "thinking", thinking: answer.reasoning, signature: signatureOf(answer.reasoning) } as const]
      : []),
    ...(answer.text.length > 0 || (calls.length === 0 && answer.reasoning.length === 0)
      ? [{ type: "text", text: answer.text, citations: null } as const]
      : []),
    ...calls
  ]
  const stop = stopOf(answer.done, ending)
  return {
    id: randomId("msg"),
    type: "message",
    role: "assistant",
    model,
    content,
    stop_reason: stop.reason,
    stop_sequence: stop.sequence,
    usage: usageOf(answer.done.usage.prompt_tokens, answer.done.usage.completion_tokens)
  }
}

type Open = { readonly kind: "text" } | { readonly kind: "thinking"; thought: string }

/**
 * The events of one streamed message. `inputTokens` is the rendered prompt's length, known
 * before the first token (message_start carries it). Blocks are opened as the kind of output
 * changes (thought, text, a call) and each is stopped before the next starts, so indexes count up.
 */
export const events = (model: string, inputTokens: number, ending: Ending) => {
  let index = -1
  let open: Open | undefined
  const start = (block: ContentBlock, now: Open | undefined): StreamEvent => {
    index++
    open = now
    return { type: "content_block_start", index, content_block: block }
  }
  const close = (): ReadonlyArray<StreamEvent> => {
    if (open === undefined) return []
    const closing: Array<StreamEvent> = open.kind === "thinking"
      ? [{
        type: "content_block_delta",
        index,
        delta: { type: "signature_delta", signature: signatureOf(open.thought) }
      }]
      : []
    open = undefined
    return [...closing, { type: "content_block_stop", index }]
  }
  const opening: ReadonlyArray<StreamEvent> = [
    {
      type: "message_start",
      message: {
        id: randomId("msg"),
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: usageOf(inputTokens, 0)
      }
    },
    { type: "ping" }
  ]
  const frames = (event: GenerationEvent): ReadonlyArray<StreamEvent> => {
    switch (event._tag) {
      case "Reasoning": {
        if (event.text.length === 0) return []
        const before = open?.kind === "thinking"
          ? []
          : [...close(), start({ type: "thinking", thinking: "", signature: "" }, { kind: "thinking", thought: "" })]
        if (open?.kind === "thinking") open.thought += event.text
        return [...before, {
          type: "content_block_delta",
          index,
          delta: { type: "thinking_delta", thinking: event.text }
        }]
      }
      case "Token": {
        if (event.text.length === 0) return []
        const before = open?.kind === "text"
          ? []
          : [...close(), start({ type: "text", text: "", citations: null }, { kind: "text" })]
        return [...before, { type: "content_block_delta", index, delta: { type: "text_delta", text: event.text } }]
      }
      case "ToolCall": {
        // the engine hands over a call whole: its input is one fragment
        const opened = [
          ...close(),
          start({ type: "tool_use", id: toolUseId(event.call.id), name: event.call.name, input: {} }, undefined)
        ]
        return [
          ...opened,
          {
            type: "content_block_delta",
            index,
            delta: { type: "input_json_delta", partial_json: event.call.arguments }
          },
          { type: "content_block_stop", index }
        ]
      }
      case "Done": {
        const stop = stopOf(event, ending)
        // a message has at least one block, as a whole one does
        const empty = index === -1
          ? [start({ type: "text", text: "", citations: null }, { kind: "text" })]
          : []
        return [
          ...empty,
          ...close(),
          {
            type: "message_delta",
            delta: { stop_reason: stop.reason, stop_sequence: stop.sequence },
            usage: usageOf(event.usage.prompt_tokens, event.usage.completion_tokens)
          },
          { type: "message_stop" }
        ]
      }
    }
  }
  return { opening, frames }
}

export const tokensCount = (inputTokens: number): MessageTokensCount => ({ input_tokens: inputTokens })

// a GGUF has no creation date: the epoch says "unknown" in the field's type
const UNKNOWN_DATE = new Date(0).toISOString()

/** The models as Anthropic's `GET /v1/models` lists them (one page: Shimmy has few). */
export const modelList = (models: ReadonlyArray<ModelInfo>): ModelList => ({
  data: models.map((m) => ({
    type: "model",
    id: m.name,
    display_name: m.displayName ?? m.name,
    created_at: UNKNOWN_DATE
  })),
  has_more: false,
  first_id: models[0]?.name ?? null,
  last_id: models.at(-1)?.name ?? null
})
