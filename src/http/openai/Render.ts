import * as crypto from "node:crypto"
import type { Answer, FinishReason, GenerationEvent, ToolCall } from "../../domain/Generation.js"
import type { ModelInfo } from "../../domain/Model.js"
import {
  type ChatCompletion,
  type ChatCompletionChunk,
  type Completion,
  type EmbeddingList,
  ErrorBody,
  type Model,
  type ModelList,
  type ToolCallDelta,
  type ToolCallOut
} from "../../domain/OpenAi.js"
import type { Dialect } from "../Dialect.js"
import type { ErrorReply } from "../Reply.js"

/**
 * OpenAI's renderings: `chat.completion` and `text_completion` objects, their SSE chunks, models,
 * embeddings, and the error shape `{"error":{"message","type","param","code"}}` (rendered from the
 * one table in Reply.ts, so statuses and codes are the seed API's and SDKs raise their typed errors).
 */

const typeOf = (status: number): string =>
  status === 401
    ? "authentication_error"
    : status === 403
    ? "permission_error"
    : status >= 500
    ? "server_error"
    : "invalid_request_error"

export const dialect: Dialect = {
  name: "openai",
  prefixes: ["/v1"],
  errorSchema: ErrorBody,
  errorBody: (reply: ErrorReply): ErrorBody => ({
    error: { message: reply.details, type: typeOf(reply.status), param: reply.param ?? null, code: reply.code }
  })
}

export const newId = (prefix: string) => `${prefix}-${crypto.randomUUID().replace(/-/g, "").slice(0, 24)}`

const now = () => Math.floor(Date.now() / 1000)

/** Plain completions have no tools: a finish reason is one of two. */
const textFinish = (reason: FinishReason) => (reason === "length" ? "length" : "stop")

const toolCallOut = (call: ToolCall): ToolCallOut => ({
  id: call.id,
  type: "function",
  function: { name: call.name, arguments: call.arguments }
})

export const chatCompletion = (model: string, answer: Answer): ChatCompletion => ({
  id: newId("chatcmpl"),
  object: "chat.completion",
  created: now(),
  model,
  system_fingerprint: null,
  choices: [{
    index: 0,
    message: {
      role: "assistant",
      // the text before a call, or null when the model only called
      content: answer.text.length === 0 && answer.toolCalls.length > 0 ? null : answer.text,
      ...(answer.reasoning.length > 0 ? { reasoning_content: answer.reasoning } : {}),
      ...(answer.toolCalls.length > 0 ? { tool_calls: answer.toolCalls.map(toolCallOut) } : {}),
      refusal: null
    },
    logprobs: null,
    finish_reason: answer.done.finishReason
  }],
  usage: answer.done.usage
})

export const completion = (model: string, answer: Answer): Completion => ({
  id: newId("cmpl"),
  object: "text_completion",
  created: now(),
  model,
  system_fingerprint: null,
  choices: [{ index: 0, text: answer.text, logprobs: null, finish_reason: textFinish(answer.done.finishReason) }],
  usage: answer.done.usage
})

/** A tool call as OpenAI streams one: id, type and name first, then its arguments. */
const toolCallDeltas = (index: number, call: ToolCall): ReadonlyArray<ToolCallDelta> => [
  { index, id: call.id, type: "function", function: { name: call.name, arguments: "" } },
  { index, function: { arguments: call.arguments } }
]

/** The chunks of one streamed chat completion: one id, and usage last when asked for. */
export const chatChunks = (model: string, includeUsage: boolean) => {
  const id = newId("chatcmpl")
  const created = now()
  const chunk = (
    delta: ChatCompletionChunk["choices"][number]["delta"],
    finish: FinishReason | null = null
  ): ChatCompletionChunk => ({
    id,
    object: "chat.completion.chunk",
    created,
    model,
    system_fingerprint: null,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(includeUsage ? { usage: null } : {})
  })
  return {
    opening: chunk({ role: "assistant", content: "" }),
    frames: (event: GenerationEvent): ReadonlyArray<ChatCompletionChunk> => {
      switch (event._tag) {
        case "Token":
          return [chunk({ content: event.text })]
        case "Reasoning":
          return [chunk({ reasoning_content: event.text })]
        case "ToolCall":
          return toolCallDeltas(event.index, event.call).map((delta) => chunk({ tool_calls: [delta] }))
        case "Done":
          return [
            chunk({}, event.finishReason),
            ...(includeUsage
              ? [
                {
                  id,
                  object: "chat.completion.chunk",
                  created,
                  model,
                  system_fingerprint: null,
                  choices: [],
                  usage: event.usage
                } as const
              ]
              : [])
          ]
      }
    }
  }
}

/** The chunks of one streamed text completion. */
export const completionChunks = (model: string, includeUsage: boolean) => {
  const id = newId("cmpl")
  const created = now()
  const chunk = (choices: Completion["choices"], usage?: Completion["usage"]): Completion => ({
    id,
    object: "text_completion",
    created,
    model,
    system_fingerprint: null,
    choices,
    ...(includeUsage ? { usage: usage ?? null } : {})
  })
  return (event: GenerationEvent): ReadonlyArray<Completion> =>
    event._tag === "Token"
      ? [chunk([{ index: 0, text: event.text, logprobs: null, finish_reason: null }])]
      : event._tag === "Done"
      ? [
        chunk([{ index: 0, text: "", logprobs: null, finish_reason: textFinish(event.finishReason) }]),
        ...(includeUsage ? [chunk([], event.usage)] : [])
      ]
      : []
}

// a GGUF has no creation date; 0 says "unknown" in the field's type
export const model = (m: ModelInfo): Model => ({ id: m.name, object: "model", created: 0, owned_by: "shimmy" })

export const modelList = (models: ReadonlyArray<ModelInfo>): ModelList => ({ object: "list", data: models.map(model) })

const base64 = (vector: ReadonlyArray<number>): string => {
  const floats = Float32Array.from(vector)
  return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength).toString("base64")
}

/** One vector per input, as floats or as base64 of little-endian float32. */
export const embeddings = (
  model: string,
  vectors: ReadonlyArray<ReadonlyArray<number>>,
  promptTokens: number,
  encoding: "float" | "base64"
): EmbeddingList => ({
  object: "list",
  data: vectors.map((vector, index) => ({
    object: "embedding",
    index,
    embedding: encoding === "base64" ? base64(vector) : vector
  })),
  model,
  usage: { prompt_tokens: promptTokens, total_tokens: promptTokens }
})
