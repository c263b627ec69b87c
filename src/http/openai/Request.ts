import { Effect, type Schema } from "effect"
import { InvalidRequest } from "../../domain/Errors.js"
import type { ChatMessage, Sampling } from "../../domain/Generation.js"
import { ChatCompletionRequest, CompletionRequest } from "../../domain/OpenAi.js"
import { decode, jsonBody } from "../Body.js"

/** From a `/v1/*` body to what the engine takes, refusing what Shimmy does not implement by name. */

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Values of a refused field that ask for nothing, so sending them is harmless. */
const neutralValues: Record<string, ReadonlyArray<unknown>> = {
  tool_choice: ["none"],
  function_call: ["none"],
  best_of: [1],
  suffix: [""]
}

const isNeutral = (key: string, value: unknown): boolean =>
  value === undefined ||
  value === null ||
  value === false ||
  (Array.isArray(value) && value.length === 0) ||
  (isRecord(value) && Object.keys(value).length === 0) ||
  (key === "modalities" && Array.isArray(value) && value.length === 1 && value[0] === "text") ||
  (neutralValues[key]?.includes(value) ?? false)

const notImplemented: Record<string, string> = {
  logprobs: "log probabilities are not implemented",
  top_logprobs: "log probabilities are not implemented",
  logit_bias: "logit_bias is not implemented",
  tools: "tool calling is not implemented",
  tool_choice: "tool calling is not implemented",
  functions: "function calling is not implemented",
  function_call: "function calling is not implemented",
  audio: "audio output is not implemented",
  modalities: "only text output is implemented",
  prediction: "predicted outputs are not implemented",
  reasoning_effort: "reasoning_effort is not implemented (the models have no reasoning budget)",
  verbosity: "verbosity is not implemented",
  web_search_options: "web search is not implemented",
  echo: "echo is not implemented",
  suffix: "suffix (insertion) is not implemented",
  best_of: "best_of is not implemented; only one completion is generated",
  dimensions: "dimensions is not implemented; vectors have the model's own size"
}

/**
 * Reads the body and checks it before decoding, so a client hears about a field by name: one
 * Shimmy does not know is "unrecognized", one it knows but does not implement says so.
 */
export const checked = <A, I>(schema: Schema.Schema<A, I> & { readonly fields: Record<string, unknown> }) =>
  Effect.gen(function*() {
    const body = yield* jsonBody
    if (!isRecord(body)) return yield* Effect.fail(new InvalidRequest({ reason: "the request body must be a JSON object" }))
    for (const [key, value] of Object.entries(body)) {
      if (!(key in schema.fields)) {
        return yield* Effect.fail(new InvalidRequest({ param: key, reason: `unrecognized request argument supplied: ${key}` }))
      }
      const why = notImplemented[key]
      if (why !== undefined && !isNeutral(key, value)) {
        return yield* Effect.fail(new InvalidRequest({ param: key, reason: `'${key}' is not supported: ${why}` }))
      }
    }
    if (Array.isArray(body.messages)) yield* checkMessages(body.messages)
    const request = yield* decode(schema)(body)
    const n = (request as { readonly n?: number }).n
    if (n !== undefined && n !== 1) {
      return yield* Effect.fail(new InvalidRequest({ param: "n", reason: `'n' must be 1: only one choice is generated per request` }))
    }
    return request
  })

/** Roles and content parts that need features Shimmy does not have get their own message. */
const checkMessages = (messages: ReadonlyArray<unknown>) =>
  Effect.forEach(messages, (message, i) => {
    if (!isRecord(message)) return Effect.void
    if (message.role === "tool" || message.role === "function") {
      return Effect.fail(
        new InvalidRequest({ param: `messages.${i}.role`, reason: `'${message.role}' messages are not supported: tool calling is not implemented` })
      )
    }
    if ("tool_calls" in message && !isNeutral("tool_calls", message.tool_calls)) {
      return Effect.fail(
        new InvalidRequest({ param: `messages.${i}.tool_calls`, reason: "'tool_calls' is not supported: tool calling is not implemented" })
      )
    }
    if (Array.isArray(message.content)) {
      const j = message.content.findIndex((part) => isRecord(part) && part.type !== "text")
      const part = message.content[j] as Record<string, unknown> | undefined
      if (part !== undefined) {
        return Effect.fail(
          new InvalidRequest({
            param: `messages.${i}.content.${j}.type`,
            reason: `content parts of type ${JSON.stringify(part.type)} are not supported; only "text" parts are`
          })
        )
      }
    }
    return Effect.void
  }, { discard: true })

export const chatRequest = checked(ChatCompletionRequest)
export const completionRequest = checked(CompletionRequest)

/** The conversation the engine renders with the model's chat template. */
export const chatMessagesOf = (request: ChatCompletionRequest): Effect.Effect<ReadonlyArray<ChatMessage>, InvalidRequest> =>
  Effect.forEach(request.messages, (message, i) => {
    const content = message.content === undefined
      ? undefined
      : typeof message.content === "string"
      ? message.content
      : message.content.map((part) => part.text).join("")
    if (content === undefined && message.role !== "assistant") {
      return Effect.fail(new InvalidRequest({ param: `messages.${i}.content`, reason: `'messages.${i}.content' is required` }))
    }
    return Effect.succeed<ChatMessage>({
      role: message.role === "developer" ? "system" : message.role,
      content: content ?? ""
    })
  })

type SamplingRequest = ChatCompletionRequest | CompletionRequest

/** OpenAI's defaults: temperature 1, and no token limit but the context. */
export const samplingOf = (request: SamplingRequest): Sampling => ({
  maxTokens: ("max_completion_tokens" in request ? request.max_completion_tokens : undefined) ?? request.max_tokens ??
    Number.MAX_SAFE_INTEGER,
  temperature: request.temperature ?? 1,
  topP: request.top_p,
  topK: request.top_k,
  minP: request.min_p,
  seed: request.seed,
  stop: request.stop === undefined ? [] : typeof request.stop === "string" ? [request.stop] : request.stop,
  repeatPenalty: request.repeat_penalty,
  presencePenalty: request.presence_penalty,
  frequencyPenalty: request.frequency_penalty
})
