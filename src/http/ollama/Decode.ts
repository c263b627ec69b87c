import { Effect } from "effect"
import { InvalidRequest } from "../../domain/Errors.js"
import {
  type ChatMessage,
  type GenerationRequest,
  type ResponseFormat,
  type Sampling,
  samplingFrom,
  type Thinking,
  type ToolCall,
  type Tools
} from "../../domain/Generation.js"
import {
  ChatRequest,
  EmbeddingsRequest,
  EmbedRequest,
  GenerateRequest,
  KNOWN_OPTIONS,
  type Message,
  Options,
  ShowRequest,
  type ToolCall as WireToolCall
} from "../../domain/Ollama.js"
import { callId } from "../../services/Generation.js"
import { decode, requestBody } from "../Body.js"
import { keepAliveOf } from "../KeepAliveParam.js"

/** Ollama's requests to the engine's, with Ollama's words for what is wrong. */

const chat = requestBody("ChatRequest", ChatRequest)
const generate = requestBody("GenerateRequest", GenerateRequest)
const embed = requestBody("EmbedRequest", EmbedRequest)
const embeddings = requestBody("EmbeddingsRequest", EmbeddingsRequest)
const show = requestBody("ShowRequest", ShowRequest)
export const chatRequest = chat.decoded
export const generateRequest = generate.decoded
export const embedRequest = embed.decoded
export const embeddingsRequest = embeddings.decoded
export const showRequest = show.decoded
/** The bodies as the API description shows them. */
export const bodies = {
  chat: chat.api,
  generate: generate.api,
  embed: embed.api,
  embeddings: embeddings.api,
  show: show.api
}

const invalid = (param: string, reason: string) => new InvalidRequest({ param, reason })

export { keepAliveOf }

/** Ollama's default temperature. */
const TEMPERATURE = 0.8

/**
 * `options`: the sampling ones mapped (num_predict -1 and -2 leave only the context as the limit);
 * `num_ctx` is a load setting in Shimmy (SHIMMY_CONTEXT_SIZE, per model), so it is accepted and
 * does not change the loaded context; the other options Ollama knows are accepted and ignored,
 * and names it does not know are ignored with a warning in the log, as Ollama does.
 */
export const samplingOf = (options: Readonly<Record<string, unknown>> | undefined) =>
  Effect.gen(function*() {
    const raw = options ?? {}
    const unknown = Object.keys(raw).filter((key) => !KNOWN_OPTIONS.has(key))
    if (unknown.length > 0) yield* Effect.logWarning(`ignoring unknown Ollama options: ${unknown.join(", ")}`)
    const known = yield* decode(Options)(raw).pipe(
      Effect.mapError((e) => invalid(`options.${e.param ?? ""}`, `invalid options: ${e.reason}`))
    )
    const limit = known.num_predict === undefined || known.num_predict < 0 ? Number.MAX_SAFE_INTEGER : known.num_predict
    return samplingFrom(known, limit, known.temperature ?? TEMPERATURE) satisfies Sampling
  })

export const formatOf = (
  format: "json" | "" | Readonly<Record<string, unknown>> | undefined
): ResponseFormat | undefined =>
  format === undefined || format === ""
    ? undefined
    : format === "json"
    ? { _tag: "JsonObject" }
    : { _tag: "JsonSchema", schema: format }

export const thinkingOf = (think: boolean | "low" | "medium" | "high" | undefined): Thinking | undefined =>
  think === undefined
    ? undefined
    : typeof think === "boolean"
    ? { enabled: think }
    : { enabled: true, effort: think }

const noImages = (images: ReadonlyArray<string> | undefined, param: string) =>
  images !== undefined && images.length > 0
    ? Effect.fail(
      invalid(param, "images are not supported: Shimmy serves text-only GGUF models (no vision projector)")
    )
    : Effect.void

const callOf = (call: WireToolCall): ToolCall => ({
  id: call.id ?? callId(),
  name: call.function.name,
  arguments: typeof call.function.arguments === "string"
    ? call.function.arguments
    : JSON.stringify(call.function.arguments ?? {})
})

/**
 * The conversation: an assistant's `tool_calls` carry arguments as objects; a tool message names
 * its function with `tool_name` and answers the earliest unanswered call of that name (Ollama has
 * no call ids; templates that need one get it).
 */
export const messagesOf = (messages: ReadonlyArray<Message>) =>
  Effect.gen(function*() {
    const unanswered: Array<ToolCall> = []
    const out: Array<ChatMessage> = []
    for (const [i, message] of messages.entries()) {
      yield* noImages(message.images, `messages.${i}.images`)
      const content = message.content ?? ""
      switch (message.role) {
        case "assistant": {
          const toolCalls = (message.tool_calls ?? []).map(callOf)
          for (const call of toolCalls) unanswered.push(call)
          out.push({ role: "assistant", content, ...(toolCalls.length > 0 ? { toolCalls } : {}) })
          break
        }
        case "tool": {
          const byId = message.tool_call_id === undefined
            ? -1
            : unanswered.findIndex((c) => c.id === message.tool_call_id)
          const at = byId !== -1
            ? byId
            : unanswered.findIndex((c) => message.tool_name === undefined || c.name === message.tool_name)
          const call = at === -1 ? undefined : unanswered.splice(at, 1)[0]
          out.push({
            role: "tool",
            content,
            toolCallId: message.tool_call_id ?? call?.id ?? callId(),
            name: message.tool_name ?? call?.name
          })
          break
        }
        default:
          out.push({ role: message.role, content })
      }
    }
    return out
  })

const EMPTY_PARAMETERS = { type: "object", properties: {} } as const

/** Ollama has no `tool_choice`: the model decides whether to call. */
export const toolsOf = (tools: ChatRequest["tools"]) =>
  Effect.gen(function*() {
    if (tools === undefined || tools.length === 0) return undefined
    const names = new Set<string>()
    for (const [i, tool] of tools.entries()) {
      if (names.has(tool.function.name)) {
        return yield* Effect.fail(invalid(`tools.${i}.function.name`, `two tools are named '${tool.function.name}'`))
      }
      names.add(tool.function.name)
    }
    return {
      definitions: tools.map((tool) => ({
        name: tool.function.name,
        description: tool.function.description,
        parameters: tool.function.parameters ?? EMPTY_PARAMETERS
      })),
      choice: { _tag: "Auto" },
      parallel: true
    } satisfies Tools
  })

export const chatGeneration = (request: ChatRequest, messages: ReadonlyArray<Message>) =>
  Effect.gen(function*() {
    return {
      model: request.model,
      prompt: { _tag: "Chat", messages: yield* messagesOf(messages) },
      sampling: yield* samplingOf(request.options),
      responseFormat: formatOf(request.format),
      tools: yield* toolsOf(request.tools),
      thinking: thinkingOf(request.think),
      keepAlive: yield* keepAliveOf(request.keep_alive)
    } satisfies GenerationRequest
  })

/**
 * `/api/generate`: the prompt in the model's chat template (with `system`), or as is with `raw`.
 * A `template` override is a Go template of Ollama's Modelfiles, which Shimmy does not run (it
 * renders the GGUF's own Jinja template): refused, with `raw` as the way to send a formatted
 * prompt. A `suffix` asks the model to fill in the middle with its FIM tokens (a model without
 * them: 400). `context` (the deprecated token array) is never returned, so a request that sends one
 * back is refused rather than silently answered without it.
 */
export const generateGeneration = (request: GenerateRequest, prompt: string) =>
  Effect.gen(function*() {
    yield* noImages(request.images, "images")
    if (request.template !== undefined && request.template.length > 0) {
      return yield* Effect.fail(
        invalid(
          "template",
          "template overrides are not supported: Shimmy renders the model's own chat template; send the formatted prompt with \"raw\": true"
        )
      )
    }
    if (request.context !== undefined && request.context.length > 0) {
      return yield* Effect.fail(
        invalid(
          "context",
          "context (the deprecated token array) is not supported; continue a conversation with /api/chat"
        )
      )
    }
    const system = request.system ?? ""
    const raw = request.raw === true
    const suffix = request.suffix ?? ""
    return {
      model: request.model,
      // with a suffix the model fills in between, in its FIM tokens (no template, no system)
      prompt: suffix.length > 0
        ? { _tag: "Infill", prefix: prompt, suffix }
        : raw
        ? prompt
        : {
          _tag: "Chat",
          messages: [
            ...(system.length > 0 ? [{ role: "system" as const, content: system }] : []),
            { role: "user" as const, content: prompt }
          ]
        },
      sampling: yield* samplingOf(request.options),
      responseFormat: formatOf(request.format),
      // thinking needs the chat template, which raw and fill-in-the-middle leave out
      thinking: raw || suffix.length > 0 ? undefined : thinkingOf(request.think),
      keepAlive: yield* keepAliveOf(request.keep_alive)
    } satisfies GenerationRequest
  })
