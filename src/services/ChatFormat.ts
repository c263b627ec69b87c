import type * as NodeLlamaCpp from "node-llama-cpp"
import type { ChatModelFunctions, ChatWrapper, ChatWrapperSettings, LlamaModel, LlamaText } from "node-llama-cpp"
import type { ThoughtSyntax, ToolSyntax } from "./ToolCallParser.js"

/**
 * What a model's chat template can do beyond plain chat, and in which syntax: its tool calls and
 * its thoughts, derived from the chat wrapper node-llama-cpp resolves for it (`settings.functions`,
 * `settings.segments.thought`), with explicit handling where a family's template defeats that.
 */

export type Template = Pick<ChatWrapper, "wrapperName" | "generateContextState"> & {
  readonly settings?: ChatWrapperSettings
}

export interface ChatFormat {
  /** renders with the template's defaults */
  readonly wrapper: Template
  /** renders with the template's thinking switched off (Jinja templates with `enable_thinking`) */
  readonly withoutThinking: Template
  /** the call syntax; undefined: the template has no tool support */
  readonly tools: ToolSyntax | undefined
  readonly thought: ThoughtSyntax | undefined
  /** the template opens the thought itself at the start of every answer */
  readonly thoughtOpenedOnStart: boolean
  /**
   * Render parameters of a template that lists the tools itself (Hermes-2-Pro), shared with its
   * wrappers, which copy them at each render: the tools are set for one synchronous render.
   */
  readonly templateTools?: { tools: ReadonlyArray<unknown> } | undefined
  /** renders with a reasoning effort, for templates that take one (gpt-oss's harmony format) */
  readonly withEffort?: ((effort: Effort) => Template) | undefined
}

export type Effort = "low" | "medium" | "high"

/** Capabilities a dialect checks before it asks for tools or thinking. */
export interface ChatCapabilities {
  /** the template the model's chat uses */
  readonly template: string
  readonly tools: boolean
  /** whether more than one call fits in one turn */
  readonly parallelToolCalls: boolean
  readonly thinking: boolean
  /** whether a reasoning effort changes the prompt (otherwise it only switches thinking on) */
  readonly reasoningEffort: boolean
}

type Marker = string | LlamaText | undefined

/** A marker's text, control-token text included, up to the first special token (EOS ends a section). */
export const markerText = ({ SpecialTokensText }: typeof NodeLlamaCpp, marker: Marker): string => {
  if (marker === undefined) return ""
  if (typeof marker === "string") return marker
  let out = ""
  for (const v of marker.values) {
    if (typeof v === "string") out += v
    else if (v instanceof SpecialTokensText) out += v.value
    else break
  }
  return out
}

/** `text` cut at the first end-of-turn marker: the turn's end is the model's to write, not a call's. */
const beforeEnd = (text: string, ends: ReadonlyArray<string>) => {
  let cut = text.length
  for (const end of ends) {
    const at = end.length > 0 ? text.indexOf(end) : -1
    if (at !== -1 && at < cut) cut = at
  }
  return text.slice(0, cut)
}

/** The call syntax of a wrapper's settings; `ends` are the template's end-of-turn texts. */
export const toolSyntaxOf = (
  llamaCpp: typeof NodeLlamaCpp,
  settings: ChatWrapperSettings,
  ends: ReadonlyArray<string>
): ToolSyntax => {
  const { call, parallelism, result } = settings.functions
  let callSuffix = markerText(llamaCpp, call.suffix)
  // Llama 3.1/3.2's wrapper closes the call's object in the result's prefix ('}<|eot_id|>...'): the
  // call `{"name": ..., "parameters": {...}}` ends with that brace
  if (callSuffix.trim() === "" && markerText(llamaCpp, result.prefix).startsWith("}")) callSuffix = "}"
  return {
    sectionPrefix: beforeEnd(markerText(llamaCpp, parallelism?.call.sectionPrefix), ends),
    callPrefix: markerText(llamaCpp, call.prefix),
    paramsPrefix: markerText(llamaCpp, call.paramsPrefix),
    callSuffix,
    betweenCalls: beforeEnd(markerText(llamaCpp, parallelism?.call.betweenCalls), ends),
    sectionSuffix: beforeEnd(markerText(llamaCpp, parallelism?.call.sectionSuffix), ends),
    parallel: parallelism !== undefined
  }
}

/** Hermes-2-Pro's syntax, which node-llama-cpp cannot extract from its template. */
export const HERMES: ToolSyntax = {
  sectionPrefix: "",
  callPrefix: "<tool_call>\n{\"name\": \"",
  paramsPrefix: "\", \"arguments\": ",
  callSuffix: "}\n</tool_call>",
  betweenCalls: "\n",
  sectionSuffix: "",
  parallel: true
}

const HARMONY_ANSWER = "<|start|>assistant<|channel|>final<|message|>"

const HERMES_CALLS = {
  call: "<tool_call>\n{\"name\": \"{{functionName}}\", \"arguments\": {{functionParams}}}\n</tool_call>",
  result: "\n<tool_response>\n{{functionCallResult}}\n</tool_response>\n"
} as const

export const thoughtOf = (
  llamaCpp: typeof NodeLlamaCpp,
  settings: ChatWrapperSettings | undefined
): { readonly thought: ThoughtSyntax | undefined; readonly openedOnStart: boolean } => {
  const thought = settings?.segments?.thought
  if (thought === undefined) return { thought: undefined, openedOnStart: false }
  const suffix = markerText(llamaCpp, thought.suffix)
  if (suffix.trim() === "") return { thought: undefined, openedOnStart: false }
  const prefix = thought.prefix
  if (typeof prefix === "object" && !llamaCpp.isLlamaText(prefix)) {
    return { thought: { prefix: "", suffix }, openedOnStart: true }
  }
  return {
    thought: { prefix: markerText(llamaCpp, prefix), suffix },
    openedOnStart: thought.openOnResponseStart === true
  }
}

/** The value, or undefined where making it throws (a template node-llama-cpp cannot run). */
const attempt = <A>(make: () => A): A | undefined => {
  try {
    return make()
  } catch {
    return undefined
  }
}

const isJinja = (llamaCpp: typeof NodeLlamaCpp, wrapper: Template): wrapper is NodeLlamaCpp.JinjaTemplateChatWrapper =>
  wrapper instanceof llamaCpp.JinjaTemplateChatWrapper

/**
 * Resolves the model's template. A Jinja template that fails node-llama-cpp's sanity test because
 * it iterates `tools` unguarded (Hermes-2-Pro) is retried with a tool list of its own (set per
 * render, see `templateTools`), and given its `<tool_call>` syntax explicitly, which node-llama-cpp
 * cannot extract from it; otherwise node-llama-cpp's own fallback applies.
 */
export const resolveFormat = (
  llamaCpp: typeof NodeLlamaCpp,
  model: LlamaModel,
  template: string,
  endsOf: (wrapper: Template) => ReadonlyArray<string>
): ChatFormat => {
  const hermesLike = template.includes("<tool_call>")
  const jinja = (options: Partial<NodeLlamaCpp.JinjaTemplateChatWrapperOptions>) =>
    new llamaCpp.JinjaTemplateChatWrapper({ template, tokenizer: model.tokenizer, ...options })
  const templateTools: { tools: ReadonlyArray<unknown> } = { tools: [] }
  const resolved = attempt(() =>
    llamaCpp.resolveChatWrapper(model, { warningLogs: false, fallbackToOtherWrappersOnJinjaError: false })
  )
  const retried = resolved === undefined && hermesLike
    ? attempt(() => jinja({ additionalRenderParameters: templateTools, functionCallMessageTemplate: HERMES_CALLS }))
    : undefined
  const hermes = retried !== undefined
  const wrapper: Template = resolved ?? retried ??
    llamaCpp.resolveChatWrapper(model, { warningLogs: false, noJinja: true })
  const settings = wrapper.settings
  const harmony = wrapper instanceof llamaCpp.HarmonyChatWrapper
  const { openedOnStart, thought: segment } = thoughtOf(llamaCpp, settings)
  // harmony answers in a message of its own after the analysis one
  const thought = segment !== undefined && harmony ? { ...segment, answerPrefix: HARMONY_ANSWER } : segment
  // a Jinja template has tool support when node-llama-cpp found its call syntax in it; a
  // specialized wrapper (Mistral, DeepSeek, Llama 3.1, ...) was matched against a template that
  // must itself speak of tools, or node-llama-cpp's own syntax would be forced on a model never
  // trained with it
  const supportsTools = hermes ||
    (isJinja(llamaCpp, wrapper) ? wrapper.usingJinjaFunctionCallTemplate : /\btools?\b/.test(template))
  const tools = !supportsTools || settings === undefined
    ? undefined
    : hermes
    ? HERMES
    : toolSyntaxOf(llamaCpp, settings, endsOf(wrapper))
  const switchable = thought !== undefined && isJinja(llamaCpp, wrapper) && wrapper.reasoning !== false &&
    /enable_thinking/.test(template)
  const withoutThinking: Template = (switchable
    ? attempt(() =>
      jinja({
        reasoning: false,
        ...(hermes ? { additionalRenderParameters: templateTools, functionCallMessageTemplate: HERMES_CALLS } : {})
      })
    )
    : undefined) ?? wrapper
  return {
    wrapper,
    withoutThinking,
    tools,
    thought,
    thoughtOpenedOnStart: openedOnStart,
    templateTools: hermes ? templateTools : undefined,
    withEffort: harmony ? withEffortOf(llamaCpp) : undefined
  }
}

/** Harmony wrappers per effort, made on first use (the default one says "medium"). */
const withEffortOf = (llamaCpp: typeof NodeLlamaCpp) => {
  const made = new Map<Effort, Template>()
  return (effort: Effort): Template => {
    const cached = made.get(effort)
    if (cached !== undefined) return cached
    const wrapper = new llamaCpp.HarmonyChatWrapper({ reasoningEffort: effort })
    made.set(effort, wrapper)
    return wrapper
  }
}

export const capabilitiesOf = (format: ChatFormat): ChatCapabilities => ({
  template: format.wrapper.wrapperName,
  tools: format.tools !== undefined,
  parallelToolCalls: format.tools?.parallel === true,
  thinking: format.thought !== undefined,
  reasoningEffort: format.withEffort !== undefined
})

/**
 * Tools in the OpenAI shape chat templates iterate. Hermes-2-Pro's template applies `trim` to every
 * description, so a missing one is rendered as empty rather than failing the render.
 */
export const templateToolsOf = (functions: ChatModelFunctions): ReadonlyArray<unknown> =>
  Object.entries(functions).map(([name, f]) => {
    const params: Record<string, unknown> = { ...(f.params ?? { type: "object", properties: {} }) }
    const properties = params.properties
    if (typeof properties === "object" && properties !== null) {
      params.properties = Object.fromEntries(
        Object.entries(properties).map((
          [k, v]
        ) => [k, typeof v === "object" && v !== null ? { description: "", ...v } : v])
      )
    }
    return { type: "function", function: { name, description: f.description ?? "", parameters: params } }
  })
