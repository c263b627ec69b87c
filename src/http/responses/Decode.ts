import { Effect } from "effect"
import { InvalidRequest } from "../../domain/Errors.js"
import type { ChatMessage, GenerationRequest, ResponseFormat, Thinking, Tools } from "../../domain/Generation.js"
import { samplingFrom } from "../../domain/Generation.js"
import { type Content, type InputItem, ResponseRequest, strict, type TextFormat } from "../../domain/Responses.js"
import { requestBody } from "../Body.js"
import { toolsFrom } from "../ToolChoice.js"

/** OpenAI's Responses requests to the engine's, with the Responses API's field names in every error. */

const response = requestBody("ResponseRequest", ResponseRequest, strict)
export const responseRequest = response.decoded
/** The body as the API description shows it. */
export const responseBody = response.api

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

/** `tools` and `tool_choice`, checked as chat completions checks them. */
const toolsOf = (request: ResponseRequest): Effect.Effect<Tools | undefined, InvalidRequest> =>
  toolsFrom({
    tools: request.tools ?? [],
    choice: request.tool_choice,
    parallel: request.parallel_tool_calls,
    namePath: (i) => `tools.${i}.name`
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
