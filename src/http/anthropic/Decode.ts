import { Effect } from "effect"
import {
  type ContentBlockParam,
  CountTokensRequest,
  type MessageParam,
  MessagesRequest,
  type TextBlockParam,
  type Tool,
  type ToolResultBlockParam
} from "../../domain/Anthropic.js"
import { InvalidRequest } from "../../domain/Errors.js"
import type {
  ChatMessage,
  GenerationRequest,
  ResponseFormat,
  Sampling,
  Thinking,
  ToolCall,
  Tools
} from "../../domain/Generation.js"
import { requestBody } from "../Body.js"
import { relaxSchema } from "./ToolSchemas.js"

/**
 * Anthropic's Messages requests to the engine's. Unknown top-level fields are ignored (the
 * schemas' default), so what Claude Code sends beyond the API Shimmy implements passes.
 */

const messages = requestBody("MessagesRequest", MessagesRequest)
const countTokens = requestBody("CountTokensRequest", CountTokensRequest)
export const messagesRequest = messages.decoded
export const countTokensRequest = countTokens.decoded
/** The bodies as the API description shows them. */
export const bodies = { messages: messages.api, countTokens: countTokens.api }

const invalid = (param: string, reason: string) => new InvalidRequest({ param, reason: `'${param}': ${reason}` })

/**
 * Claude Code's first system block (`x-anthropic-billing-header: ...; cch=...`) changes with every
 * request; kept, it would make every prompt differ from the last at its start, so no sequence could
 * reuse what it evaluated. It says nothing to the model.
 */
const isBillingHeader = (text: string) => text.startsWith("x-anthropic-billing-header:")

const textOf = (blocks: ReadonlyArray<TextBlockParam>): string =>
  blocks.filter((b) => !isBillingHeader(b.text)).map((b) => b.text).join("\n\n")

const systemOf = (system: MessagesRequest["system"]): string | undefined => {
  if (system === undefined) return undefined
  const text = typeof system === "string" ? system : textOf(system)
  return text.length > 0 ? text : undefined
}

const resultText = (block: ToolResultBlockParam): string => {
  const content = block.content === undefined
    ? ""
    : typeof block.content === "string"
    ? block.content
    : block.content.flatMap((b) => (b.type === "text" ? [b.text] : [])).join("\n")
  // templates have no field for a failed call: the model reads it in the text
  return block.is_error === true ? `Error: ${content}` : content
}

/** The engine's turns of one Anthropic message: a user turn's tool results become tool turns. */
const turnsOf = (
  message: MessageParam,
  at: string,
  callNames: Map<string, string>
): Effect.Effect<ReadonlyArray<ChatMessage>, InvalidRequest> =>
  Effect.gen(function*() {
    const blocks: ReadonlyArray<ContentBlockParam> = typeof message.content === "string"
      ? [{ type: "text", text: message.content }]
      : message.content
    if (message.role === "system") {
      return [{ role: "system", content: textOf(blocks.filter((b): b is TextBlockParam => b.type === "text")) }]
    }
    if (message.role === "assistant") {
      let text = ""
      const toolCalls: Array<ToolCall> = []
      for (const [j, block] of blocks.entries()) {
        switch (block.type) {
          case "text":
            text += block.text
            break
          case "tool_use":
            callNames.set(block.id, block.name)
            toolCalls.push({ id: block.id, name: block.name, arguments: JSON.stringify(block.input) })
            break
          case "tool_result":
            return yield* Effect.fail(
              invalid(`${at}.content.${j}`, "tool_result blocks belong in user messages")
            )
          // the domain's turns carry no thought: earlier thinking is not shown to the template again
          default:
            break
        }
      }
      return [{ role: "assistant", content: text, ...(toolCalls.length > 0 ? { toolCalls } : {}) }]
    }
    const turns: Array<ChatMessage> = []
    let text: Array<string> = []
    const flush = () => {
      if (text.length > 0) turns.push({ role: "user", content: text.join("\n\n") })
      text = []
    }
    for (const [j, block] of blocks.entries()) {
      switch (block.type) {
        case "text":
          text.push(block.text)
          break
        case "tool_result":
          flush()
          turns.push({
            role: "tool",
            content: resultText(block),
            toolCallId: block.tool_use_id,
            name: callNames.get(block.tool_use_id)
          })
          break
        case "tool_use":
          return yield* Effect.fail(invalid(`${at}.content.${j}`, "tool_use blocks belong in assistant messages"))
        default:
          break
      }
    }
    flush()
    // a user message of no text at all is still a turn
    return turns.length > 0 ? turns : [{ role: "user", content: "" }]
  })

const conversationOf = (request: CountTokensRequest) =>
  Effect.gen(function*() {
    const callNames = new Map<string, string>()
    const system = systemOf(request.system)
    const messages: Array<ChatMessage> = system === undefined ? [] : [{ role: "system", content: system }]
    for (const [i, message] of request.messages.entries()) {
      for (const turn of yield* turnsOf(message, `messages.${i}`, callNames)) messages.push(turn)
    }
    return messages
  })

/** A custom tool: no `type`, or "custom". Any other type is one of Anthropic's server tools. */
const isCustom = (tool: Tool) => tool.type === undefined || tool.type === "custom"

const EMPTY_SCHEMA = { type: "object", properties: {} } as const

/**
 * `tools` and `tool_choice`. Server tools (`web_search_20250305`, `bash_20250124`, ...) are set
 * aside: Shimmy cannot run them, and Claude Code sends them on its own (its WebSearch tool asks
 * with one), so refusing them would break it; a `tool_choice` naming one is refused.
 */
const toolsOf = (request: CountTokensRequest): Effect.Effect<Tools | undefined, InvalidRequest> =>
  Effect.gen(function*() {
    const all = request.tools ?? []
    const custom = all.flatMap((tool, i) => (isCustom(tool) ? [{ tool, i }] : []))
    const choice = request.tool_choice
    const names = new Set<string>()
    for (const { i, tool } of custom) {
      if (tool.input_schema === undefined) return yield* Effect.fail(invalid(`tools.${i}.input_schema`, "is required"))
      if (names.has(tool.name)) {
        return yield* Effect.fail(invalid(`tools.${i}.name`, `two tools are named '${tool.name}'`))
      }
      names.add(tool.name)
    }
    if (choice?.type === "tool" && !names.has(choice.name)) {
      const served = all.some((t) => t.name === choice.name)
      return yield* Effect.fail(
        invalid(
          "tool_choice.name",
          served
            ? `'${choice.name}' is a server tool, which Shimmy cannot run`
            : `'${choice.name}' is not among the tools${names.size > 0 ? `: ${[...names].join(", ")}` : ""}`
        )
      )
    }
    if (custom.length === 0) {
      if (choice?.type === "any") {
        return yield* Effect.fail(invalid("tool_choice", "'any' asks for a tool call, but no custom tools are given"))
      }
      return undefined
    }
    return {
      definitions: custom.map(({ tool }) => ({
        name: tool.name,
        description: tool.description,
        parameters: relaxSchema(tool.input_schema ?? EMPTY_SCHEMA)
      })),
      choice: choice === undefined || choice.type === "auto"
        ? { _tag: "Auto" }
        : choice.type === "none"
        ? { _tag: "None" }
        : choice.type === "any"
        ? { _tag: "Required" }
        : { _tag: "Named", name: choice.name },
      parallel: choice === undefined || choice.type === "none" || choice.disable_parallel_tool_use !== true
    }
  })

/** A thinking budget as an effort, for templates that take one (gpt-oss); an explicit effort wins. */
const effortOf = (request: CountTokensRequest, budget: number | undefined): Thinking["effort"] => {
  const effort = request.output_config?.effort
  if (effort !== undefined) return effort === "xhigh" || effort === "max" ? "high" : effort
  if (budget === undefined) return undefined
  return budget < 4096 ? "low" : budget < 16384 ? "medium" : "high"
}

/** `thinking`; left out, the template's default (Qwen3 thinks unless told not to). */
const thinkingOf = (request: CountTokensRequest): Thinking | undefined => {
  const thinking = request.thinking
  if (thinking === undefined) {
    const effort = effortOf(request, undefined)
    return effort === undefined ? undefined : { enabled: true, effort }
  }
  if (thinking.type === "disabled") return { enabled: false }
  return { enabled: true, effort: effortOf(request, thinking.type === "enabled" ? thinking.budget_tokens : undefined) }
}

const formatOf = (request: CountTokensRequest): ResponseFormat | undefined => {
  const format = request.output_config?.format
  return format === undefined ? undefined : { _tag: "JsonSchema", schema: format.schema }
}

/** Anthropic's default temperature is 1; stop sequences are the request's alone. */
const samplingOf = (request: MessagesRequest): Sampling => ({
  maxTokens: request.max_tokens,
  temperature: request.temperature ?? 1,
  topP: request.top_p,
  topK: request.top_k,
  stop: request.stop_sequences ?? []
})

/** The prompt of a request, for counting: no sampling to speak of. */
export const promptGeneration = (
  request: CountTokensRequest,
  model: string
): Effect.Effect<GenerationRequest, InvalidRequest> =>
  Effect.gen(function*() {
    return {
      model,
      prompt: { _tag: "Chat", messages: yield* conversationOf(request) },
      sampling: { maxTokens: 1, temperature: 1, stop: [] },
      responseFormat: formatOf(request),
      tools: yield* toolsOf(request),
      thinking: thinkingOf(request)
    }
  })

/** The generation a Messages request asks for, on the model that serves it. */
export const messagesGeneration = (
  request: MessagesRequest,
  model: string
): Effect.Effect<GenerationRequest, InvalidRequest> =>
  Effect.flatMap(promptGeneration(request, model), (prompt) => {
    const forced = prompt.tools?.choice._tag === "Required" || prompt.tools?.choice._tag === "Named"
    // as Anthropic: a forced call leaves no room for a thought before it
    return forced && request.thinking !== undefined && request.thinking.type !== "disabled"
      ? Effect.fail(
        invalid("thinking", "thinking may not be enabled when tool_choice forces tool use (type 'any' or 'tool')")
      )
      : Effect.succeed({ ...prompt, sampling: samplingOf(request) })
  })
