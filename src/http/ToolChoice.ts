import { Effect } from "effect"
import { InvalidRequest } from "../domain/Errors.js"
import type { Tools } from "../domain/Generation.js"

/**
 * OpenAI's function tools and `tool_choice` (chat completions and Responses spell them apart but
 * mean the same) to the domain's `Tools`: "auto" when tools are given, names unique, a named
 * choice one of them, a choice that asks for a call only with tools.
 */

export interface FunctionTool {
  readonly name: string
  readonly description?: string | undefined
  readonly parameters?: Readonly<Record<string, unknown>> | undefined
}

export interface ToolsInput {
  readonly tools: ReadonlyArray<FunctionTool>
  readonly choice: "auto" | "none" | "required" | { readonly name: string } | undefined
  readonly parallel: boolean | undefined
  /** where a tool's name is in the request, for errors */
  readonly namePath: (index: number) => string
}

const EMPTY_PARAMETERS = { type: "object", properties: {} } as const

const invalid = (param: string, reason: string) => new InvalidRequest({ param, reason })

export const toolsFrom = ({ choice, namePath, parallel, tools }: ToolsInput): Effect.Effect<
  Tools | undefined,
  InvalidRequest
> =>
  Effect.gen(function*() {
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
      if (names.has(tool.name)) return yield* Effect.fail(invalid(namePath(i), `two tools are named '${tool.name}'`))
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
      choice: choice === undefined || choice === "auto"
        ? { _tag: "Auto" }
        : choice === "none"
        ? { _tag: "None" }
        : choice === "required"
        ? { _tag: "Required" }
        : { _tag: "Named", name: choice.name },
      parallel: parallel ?? true
    }
  })
