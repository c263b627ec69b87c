import { Effect } from "effect"
import { InvalidRequest } from "../../domain/Errors.js"
import {
  type ChatMessage,
  type GenerationRequest,
  type ResponseFormat as DomainFormat,
  type Sampling,
  samplingFrom,
  type Thinking,
  type ToolCall,
  type Tools
} from "../../domain/Generation.js"
import {
  ChatCompletionRequest,
  CompletionRequest,
  EmbeddingRequest,
  type MessageToolCall,
  type ResponseFormat,
  strict
} from "../../domain/OpenAi.js"
import { requestBody } from "../Body.js"
import { toolsFrom } from "../ToolChoice.js"

/** OpenAI's `/v1/*` requests to the engine's, with OpenAI's own words for what is wrong. */

const chat = requestBody("ChatCompletionRequest", ChatCompletionRequest, strict)
const completion = requestBody("CompletionRequest", CompletionRequest, strict)
const embedding = requestBody("EmbeddingRequest", EmbeddingRequest, strict)
export const chatRequest = chat.decoded
export const completionRequest = completion.decoded
export const embeddingRequest = embedding.decoded
/** The bodies as the API description shows them. */
export const bodies = { chat: chat.api, completion: completion.api, embedding: embedding.api }

const invalid = (param: string, reason: string) => new InvalidRequest({ param, reason })

/** OpenAI's defaults: temperature 1, and no token limit but the context. */
const samplingOf = (request: ChatCompletionRequest | CompletionRequest): Sampling =>
  samplingFrom(
    request,
    ("max_completion_tokens" in request ? request.max_completion_tokens : undefined) ?? request.max_tokens ??
      Number.MAX_SAFE_INTEGER,
    request.temperature ?? 1
  )

const formatOf = (format: ResponseFormat | undefined): DomainFormat | undefined =>
  format === undefined
    ? undefined
    : format.type === "text"
    ? { _tag: "Text" }
    : format.type === "json_object"
    ? { _tag: "JsonObject" }
    : { _tag: "JsonSchema", schema: format.json_schema.schema }

const callOf = (call: MessageToolCall): ToolCall => ({
  id: call.id,
  name: call.function.name,
  arguments: typeof call.function.arguments === "string"
    ? call.function.arguments
    : JSON.stringify(call.function.arguments)
})

/** The conversation the engine renders with the model's chat template. */
const messagesOf = (request: ChatCompletionRequest): Effect.Effect<ReadonlyArray<ChatMessage>, InvalidRequest> =>
  Effect.gen(function*() {
    // a tool message names its function only through the call it answers
    const callNames = new Map<string, string>()
    const messages: Array<ChatMessage> = []
    for (const [i, message] of request.messages.entries()) {
      const content = message.content === undefined
        ? undefined
        : typeof message.content === "string"
        ? message.content
        : message.content.map((part) => part.text).join("")
      switch (message.role) {
        case "assistant": {
          const toolCalls = (message.tool_calls ?? []).map(callOf)
          for (const call of toolCalls) callNames.set(call.id, call.name)
          messages.push({ role: "assistant", content: content ?? "", ...(toolCalls.length > 0 ? { toolCalls } : {}) })
          break
        }
        case "tool": {
          if (message.tool_call_id === undefined) {
            return yield* Effect.fail(
              invalid(`messages.${i}.tool_call_id`, `'messages.${i}.tool_call_id' is required for a tool message`)
            )
          }
          const name = callNames.get(message.tool_call_id) ?? message.name
          messages.push({ role: "tool", content: content ?? "", toolCallId: message.tool_call_id, name })
          break
        }
        default: {
          if (content === undefined) {
            return yield* Effect.fail(invalid(`messages.${i}.content`, `'messages.${i}.content' is required`))
          }
          messages.push({ role: message.role === "developer" ? "system" : message.role, content })
        }
      }
    }
    return messages
  })

/** `tools` and `tool_choice`, checked as every OpenAI-shaped dialect checks them. */
const toolsOf = (request: ChatCompletionRequest): Effect.Effect<Tools | undefined, InvalidRequest> =>
  toolsFrom({
    tools: (request.tools ?? []).map((tool) => tool.function),
    choice: typeof request.tool_choice === "object" ? { name: request.tool_choice.function.name } : request.tool_choice,
    parallel: request.parallel_tool_calls,
    namePath: (i) => `tools.${i}.function.name`
  })

const thinkingOf = (request: ChatCompletionRequest): Thinking | undefined => {
  switch (request.reasoning_effort) {
    case undefined:
      return undefined
    case "none":
      return { enabled: false }
    case "minimal":
    case "low":
      return { enabled: true, effort: "low" }
    default:
      return { enabled: true, effort: request.reasoning_effort }
  }
}

export const chatGeneration = (request: ChatCompletionRequest): Effect.Effect<GenerationRequest, InvalidRequest> =>
  Effect.gen(function*() {
    const messages = yield* messagesOf(request)
    return {
      model: request.model,
      prompt: { _tag: "Chat", messages },
      sampling: samplingOf(request),
      responseFormat: formatOf(request.response_format),
      tools: yield* toolsOf(request),
      thinking: thinkingOf(request)
    }
  })

export const completionGeneration = (request: CompletionRequest): GenerationRequest => ({
  model: request.model,
  prompt: typeof request.prompt === "string" ? request.prompt : request.prompt[0],
  sampling: samplingOf(request),
  responseFormat: formatOf(request.response_format)
})
