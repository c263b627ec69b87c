import { Effect } from "effect"
import { InvalidRequest } from "../../domain/Errors.js"
import type {
  ChatMessage,
  GenerationRequest,
  ResponseFormat,
  Thinking,
  ToolChoice as DomainChoice,
  Tools
} from "../../domain/Generation.js"
import { samplingFrom } from "../../domain/Generation.js"
import {
  type Content,
  type InputItem,
  ResponseRequest,
  strict,
  type TextFormat,
  type ToolChoice
} from "../../domain/Responses.js"
import { bodyAs } from "../Body.js"

/** OpenAI's Responses requests to the engine's, with the Responses API's field names in every error. */

export const responseRequest = bodyAs(ResponseRequest, strict)

const invalid = (param: string, reason: string) => new InvalidRequest({ param, reason })

const textOf = (content: Content): string =>
  typeof content === "string" ? content : content.map((part) => part.text).join("")

/**
 * The conversation: `instructions` first (as the system turn), then the items in order. A
 * `function_call` joins the assistant turn before it (a turn may make several calls); a
 * `function_call_output` is a tool turn, named by the call it answers. Reasoning items are dropped:
 * the domain's messages carry no thought, and templates that think drop earlier thoughts anyway.
 */
export const messagesOf = (
  instructions: string | undefined,
  input: string | ReadonlyArray<InputItem>
): Effect.Effect<ReadonlyArray<ChatMessage>, InvalidRequest> =>
  Effect.gen(function*() {
    const messages: Array<ChatMessage> = instructions === undefined ? [] : [{ role: "system", content: instructions }]
    if (typeof input === "string") return [...messages, { role: "user", content: input }]
    const callNames = new Map<string, string>()
    for (const [i, item] of input.entries()) {
      switch (item.type) {
        case "reasoning":
          break
        case "function_call": {
          if (callNames.has(item.call_id)) {
            return yield* Effect.fail(
              invalid(`input.${i}.call_id`, `two function calls have the call_id '${item.call_id}'`)
            )
          }
          callNames.set(item.call_id, item.name)
          const call = { id: item.call_id, name: item.name, arguments: item.arguments }
          const last = messages.at(-1)
          if (last?.role === "assistant") {
            messages[messages.length - 1] = { ...last, toolCalls: [...(last.toolCalls ?? []), call] }
          } else messages.push({ role: "assistant", content: "", toolCalls: [call] })
          break
        }
        case "function_call_output": {
          const name = callNames.get(item.call_id)
          if (name === undefined) {
            return yield* Effect.fail(
              invalid(
                `input.${i}.call_id`,
                `'input.${i}.call_id' is '${item.call_id}', which no earlier function_call item has; send the call before its output`
              )
            )
          }
          messages.push({ role: "tool", content: textOf(item.output), toolCallId: item.call_id, name })
          break
        }
        default: {
          const role = item.role === "developer" ? "system" : item.role
          messages.push({ role, content: textOf(item.content) })
        }
      }
    }
    return messages
  })

const EMPTY_PARAMETERS = { type: "object", properties: {} } as const

const choiceOf = (choice: ToolChoice | undefined): DomainChoice =>
  choice === undefined || choice === "auto"
    ? { _tag: "Auto" }
    : choice === "none"
    ? { _tag: "None" }
    : choice === "required"
    ? { _tag: "Required" }
    : { _tag: "Named", name: choice.name }

/** `tools` and `tool_choice`: "auto" when tools are given; a named function must be one of them. */
const toolsOf = (request: ResponseRequest): Effect.Effect<Tools | undefined, InvalidRequest> =>
  Effect.gen(function*() {
    const tools = request.tools ?? []
    const choice = request.tool_choice
    if (tools.length === 0) {
      if (choice !== undefined && choice !== "none" && choice !== "auto") {
        return yield* Effect.fail(
          invalid("tool_choice", "'tool_choice' asks for a tool call, but no 'tools' are given")
        )
      }
      return undefined
    }
    const names = new Set<string>()
    for (const [i, tool] of tools.entries()) {
      if (names.has(tool.name)) {
        return yield* Effect.fail(invalid(`tools.${i}.name`, `two tools are named '${tool.name}'`))
      }
      names.add(tool.name)
    }
    if (typeof choice === "object" && !names.has(choice.name)) {
      return yield* Effect.fail(
        invalid(
          "tool_choice",
          `'tool_choice' names '${choice.name}', which is not among the tools: ${[...names].join(", ")}`
        )
      )
    }
    return {
      definitions: tools.map((tool) => ({
        name: tool.name,
        description: tool.description,
        parameters: tool.parameters ?? EMPTY_PARAMETERS
      })),
      choice: choiceOf(choice),
      parallel: request.parallel_tool_calls ?? true
    }
  })

export const formatOf = (format: TextFormat | undefined): ResponseFormat | undefined =>
  format === undefined
    ? undefined
    : format.type === "text"
    ? { _tag: "Text" }
    : format.type === "json_object"
    ? { _tag: "JsonObject" }
    : { _tag: "JsonSchema", schema: format.schema }

/** `reasoning.effort`: left out, the template's default; "none" switches thinking off. */
const thinkingOf = (request: ResponseRequest): Thinking | undefined => {
  const effort = request.reasoning?.effort
  switch (effort) {
    case undefined:
      return undefined
    case "none":
      return { enabled: false }
    case "minimal":
    case "low":
      return { enabled: true, effort: "low" }
    case "xhigh":
    case "max":
      return { enabled: true, effort: "high" }
    default:
      return { enabled: true, effort }
  }
}

export const generationOf = (request: ResponseRequest): Effect.Effect<GenerationRequest, InvalidRequest> =>
  Effect.gen(function*() {
    const messages = yield* messagesOf(request.instructions, request.input)
    return {
      model: request.model,
      prompt: { _tag: "Chat", messages },
      // OpenAI's defaults: temperature 1, top_p 1, and no token limit but the context
      sampling: samplingFrom(
        { top_p: request.top_p },
        request.max_output_tokens ?? Number.MAX_SAFE_INTEGER,
        request.temperature ?? 1
      ),
      responseFormat: formatOf(request.text?.format),
      tools: yield* toolsOf(request),
      thinking: thinkingOf(request)
    }
  })

/** The engine names chat's fields in its errors; a Responses client hears its own. */
export const paramOf = (param: string): string =>
  param === "messages" || param === "prompt"
    ? "input"
    : param === "reasoning_effort"
    ? "reasoning.effort"
    : param === "response_format"
    ? "text.format"
    : param.replace(/^tools\.(\d+)\.function\./, "tools.$1.")
