import { Effect, Either } from "effect"
import type { ChatModelFunctions, GbnfJsonSchema, Llama, LlamaGrammar } from "node-llama-cpp"
import { InvalidRequest } from "../domain/Errors.js"
import type { ToolChoice, Tools } from "../domain/Generation.js"
import { toGbnfSchema } from "./Grammar.js"
import { validateJson } from "./SchemaValidator.js"
import type { ToolSyntax } from "./ToolCallParser.js"

/** A tool whose schema the grammar can enforce, with its JSON-schema grammar. */
export interface PreparedTool {
  readonly name: string
  readonly description?: string | undefined
  readonly schema: GbnfJsonSchema
  /** the GBNF of its arguments (node-llama-cpp's JSON-schema grammar) */
  readonly gbnf: string
}

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

// an agent sends the same tools with every turn: their grammars' text is kept, the oldest dropped first
const compiled = new Map<string, string>()
const COMPILED_LIMIT = 256
const remember = (key: string, gbnf: string) => {
  compiled.set(key, gbnf)
  if (compiled.size > COMPILED_LIMIT) compiled.delete(compiled.keys().next().value!)
}

/**
 * Checks every tool's parameters with the same rules as `response_format` (a keyword the grammar
 * cannot enforce is refused, naming the tool), then compiles one JSON-schema grammar per tool: its
 * GBNF is what forced calls are built from.
 */
export const prepareTools = Effect.fn("ToolGrammar.prepare")(function*(llama: Llama, tools: Tools) {
  const names = new Set<string>()
  const prepared: Array<PreparedTool> = []
  for (const [i, tool] of tools.definitions.entries()) {
    const param = `tools.${i}.function.parameters`
    if (names.has(tool.name)) {
      return yield* Effect.fail(
        new InvalidRequest({ param: `tools.${i}.function.name`, reason: `tool '${tool.name}' is defined twice` })
      )
    }
    names.add(tool.name)
    const checked = toGbnfSchema(tool.parameters)
    if (Either.isLeft(checked)) {
      return yield* Effect.fail(new InvalidRequest({ param, reason: `tool '${tool.name}': ${checked.left.reason}` }))
    }
    const schema = checked.right
    const key = JSON.stringify(schema)
    const known = compiled.get(key)
    const gbnf = known ?? (yield* Effect.tryPromise({
      try: () => llama.createGrammarForJsonSchema<GbnfJsonSchema>(schema),
      catch: (cause) =>
        new InvalidRequest({
          param,
          reason: `tool '${tool.name}': the schema cannot be compiled to a grammar: ${describe(cause)}`
        })
    })).grammar
    if (known === undefined) remember(key, gbnf)
    prepared.push({ name: tool.name, description: tool.description, schema, gbnf })
  }
  if (tools.choice._tag === "Named") {
    const named = tools.choice.name
    if (!names.has(named)) {
      return yield* Effect.fail(
        new InvalidRequest({
          param: "tool_choice",
          reason: `tool_choice names '${named}', which is not among the tools`
        })
      )
    }
  }
  return prepared
})

/** The functions as the chat template documents them. */
export const functionsOf = (tools: ReadonlyArray<PreparedTool>): ChatModelFunctions =>
  Object.fromEntries(
    tools.map((
      t
    ) => [t.name, { ...(t.description !== undefined ? { description: t.description } : {}), params: t.schema }])
  )

/** Arguments as compact JSON text when they validate against the named tool's schema. */
export const validatorOf = (tools: ReadonlyArray<PreparedTool>) => {
  const byName = new Map(tools.map((t) => [t.name, t]))
  return (name: string, args: unknown): string | undefined => {
    const tool = byName.get(name)
    return tool !== undefined && validateJson(tool.schema, args) ? JSON.stringify(args) : undefined
  }
}

/** A GBNF string literal. */
export const gbnfLiteral = (text: string): string =>
  `"${
    text.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t")
  }"`

const RULE = /^([A-Za-z0-9_-]+)\s*::=\s*(.*)$/
// node-llama-cpp's JSON-schema grammars end in newlines that mark the end of the output
const TERMINATOR = /\s*"\\n\\n\\n\\n"\s*\[\\n\]\*\s*$/

/** Renames every rule of a GBNF grammar with a prefix, so several grammars compose into one. */
export const prefixRules = (grammar: string, prefix: string): { readonly rules: string; readonly root: string } => {
  const lines = grammar.split("\n").filter((l) => l.trim().length > 0)
  const names = new Set(lines.flatMap((l) => {
    const m = RULE.exec(l)
    return m === null ? [] : [m[1]!]
  }))
  const rename = (body: string) => {
    let out = ""
    for (let i = 0; i < body.length;) {
      const c = body[i]!
      if (c === "\"" || c === "[") {
        // a literal or a character class: copied as it is, escapes included
        const close = c === "\"" ? "\"" : "]"
        let j = i + 1
        while (j < body.length && body[j] !== close) j += body[j] === "\\" ? 2 : 1
        out += body.slice(i, j + 1)
        i = j + 1
      } else if (c === "{") {
        const j = body.indexOf("}", i)
        out += body.slice(i, j + 1)
        i = j + 1
      } else if (/[A-Za-z0-9_-]/.test(c)) {
        let j = i
        while (j < body.length && /[A-Za-z0-9_-]/.test(body[j]!)) j++
        const word = body.slice(i, j)
        out += names.has(word) ? `${prefix}${word}` : word
        i = j
      } else {
        out += c
        i++
      }
    }
    return out
  }
  const rules = lines.map((l) => {
    const m = RULE.exec(l)
    if (m === null) return l
    const body = m[1] === "root" ? m[2]!.replace(TERMINATOR, "") : m[2]!
    return `${prefix}${m[1]} ::= ${rename(body)}`
  })
  return { rules: rules.join("\n"), root: `${prefix}root` }
}

const seq = (...parts: ReadonlyArray<string>) => parts.filter((p) => p.length > 0).join(" ")
const lit = (text: string) => (text.length === 0 ? "" : gbnfLiteral(text))

/**
 * The GBNF of a forced call turn in the template's syntax: the section's prefix, one call (or, in
 * parallel, one or more) to an allowed function with arguments of that function's schema, the
 * section's suffix. No text comes before the call.
 */
export const forcedCallGrammar = (
  syntax: ToolSyntax,
  tools: ReadonlyArray<PreparedTool>,
  choice: ToolChoice,
  parallel: boolean
): string => {
  const allowed = choice._tag === "Named" ? tools.filter((t) => t.name === choice.name) : tools
  const parts = allowed.map((t, i) => prefixRules(t.gbnf, `t${i}-`))
  const alternatives = allowed.map((t, i) => seq(lit(t.name), lit(syntax.paramsPrefix), parts[i]!.root)).join(" | ")
  const several = parallel && syntax.parallel
  return [
    `root ::= ${
      seq(
        lit(syntax.sectionPrefix),
        "call",
        several ? `(${seq(lit(syntax.betweenCalls), "call")})*` : "",
        lit(syntax.sectionSuffix)
      )
    }`,
    `call ::= ${seq(lit(syntax.callPrefix), `(${alternatives})`, lit(syntax.callSuffix))}`,
    ...parts.map((p) => p.rules)
  ].join("\n")
}

/** The grammar object of a forced call turn. */
export const forcedCall = Effect.fn("ToolGrammar.forcedCall")(function*(
  llama: Llama,
  syntax: ToolSyntax,
  tools: ReadonlyArray<PreparedTool>,
  choice: ToolChoice,
  parallel: boolean
) {
  const text = forcedCallGrammar(syntax, tools, choice, parallel)
  return yield* Effect.tryPromise({
    try: (): Promise<LlamaGrammar> => llama.createGrammar({ grammar: text }),
    catch: (cause) =>
      new InvalidRequest({ param: "tools", reason: `the tools cannot be compiled to a grammar: ${describe(cause)}` })
  })
})
