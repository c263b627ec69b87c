import { Effect } from "effect"
import type * as NodeLlamaCpp from "node-llama-cpp"
import type {
  ChatHistoryItem,
  ChatModelFunctionCall,
  ChatModelFunctions,
  LlamaModel,
  LlamaText,
  Token
} from "node-llama-cpp"
import { GenerationFailed, InvalidRequest } from "../domain/Errors.js"
import type { ChatMessage, Thinking } from "../domain/Generation.js"
import { type ChatFormat, resolveFormat, type Template, templateToolsOf } from "./ChatFormat.js"
import { unsupportedCharacters, type VocabularyGuard } from "./Gguf.js"
import { loadNodeLlamaCpp } from "./LlamaRuntime.js"
import type { ThoughtSyntax } from "./ToolCallParser.js"

/** A conversation rendered for one model: the prompt tokens and where its template ends a turn. */
export interface RenderedChat {
  readonly tokens: ReadonlyArray<Token>
  /** the template's textual end-of-turn markers */
  readonly stops: ReadonlyArray<string>
  /** end-of-turn control tokens that are not end-of-generation tokens (those end it anyway) */
  readonly stopTokens: ReadonlyArray<Token>
  /** the chat wrapper used, for logs and diagnostics */
  readonly template: string
  /** the prompt as text, control tokens included (tests and diagnostics) */
  readonly text: string
  readonly format: ChatFormat
  /** the prompt ends inside an open thought: the output starts with reasoning */
  readonly thinking: boolean
}

const roleTitle = { system: "System", user: "User", model: "Assistant" } as const

/**
 * For models whose GGUF has no `tokenizer.chat_template`: one "Role: text" line per message, then
 * "Assistant:" to complete. Every character it adds is one that even the guarded TinyStories
 * vocabularies can tokenize, so the template never makes a model unusable for chat (node-llama-cpp's
 * GeneralChatWrapper writes "### Human", and '#' is not in those vocabularies). The prompt ends
 * without a space because SPM tokens carry their leading space.
 */
export const genericTemplate = ({ LlamaText, SpecialToken }: typeof NodeLlamaCpp): Template => ({
  wrapperName: "Generic",
  generateContextState: ({ chatHistory }) => {
    const last = chatHistory.at(-1)
    const open = last?.type === "model" ? last : undefined
    const lines = (open === undefined ? chatHistory : chatHistory.slice(0, -1)).map((item) => {
      const text = item.type === "model"
        ? item.response.filter((r) => typeof r === "string").join("")
        : LlamaText.fromJSON(item.text).toString()
      return `${roleTitle[item.type]}: ${text}\n`
    })
    const continued = open?.response.filter((r) => typeof r === "string").join("") ?? ""
    return {
      contextText: LlamaText([...lines, continued.length > 0 ? `Assistant: ${continued}` : "Assistant:"]),
      stopGenerationTriggers: [
        LlamaText(new SpecialToken("EOS")),
        ...["User:", "System:", "Assistant:"].map((t) => LlamaText(`\n${t}`))
      ]
    }
  }
})

// resolving parses the GGUF's Jinja template: once per loaded model
const formats = new WeakMap<LlamaModel, ChatFormat>()

/** End-of-turn texts of a template, from a minimal rendering. */
export const endsOf = (llamaCpp: typeof NodeLlamaCpp) => (wrapper: Template): ReadonlyArray<string> => {
  try {
    const state = wrapper.generateContextState({
      chatHistory: [{ type: "user", text: "x" }, { type: "model", response: [] }]
    })
    return state.stopGenerationTriggers.map((t) => textOf(llamaCpp, t).trim()).filter((t) => t.length > 0)
  } catch {
    return []
  }
}

/** The model's own template (Jinja, or a known family node-llama-cpp recognises), else the generic one. */
export const chatFormatFor = (llamaCpp: typeof NodeLlamaCpp, model: LlamaModel): ChatFormat => {
  const cached = formats.get(model)
  if (cached !== undefined) return cached
  const template = model.fileInfo.metadata.tokenizer?.chat_template
  const format: ChatFormat = typeof template === "string"
    ? resolveFormat(llamaCpp, model, template, endsOf(llamaCpp))
    : (() => {
      const generic = genericTemplate(llamaCpp)
      return {
        wrapper: generic,
        withoutThinking: generic,
        tools: undefined,
        thought: undefined,
        thoughtOpenedOnStart: false
      }
    })()
  formats.set(model, format)
  return format
}

/** A tool message's content as the template's result: JSON where it is JSON, else the text. */
const resultOf = (content: string): unknown => {
  try {
    return JSON.parse(content)
  } catch {
    return content
  }
}

const paramsOf = (args: string): unknown => {
  try {
    return JSON.parse(args)
  } catch {
    return args
  }
}

/**
 * Maps messages onto node-llama-cpp's chat history. An assistant turn's calls become function
 * calls whose results are the tool messages right after it (by `tool_call_id`, else in order);
 * those tool messages are consumed. A tool message that answers no call is rendered as a user turn.
 */
export const historyOf = (messages: ReadonlyArray<ChatMessage>): Array<ChatHistoryItem> => {
  const history: Array<ChatHistoryItem> = []
  const consumed = new Set<number>()
  messages.forEach((m, index) => {
    if (consumed.has(index)) return
    switch (m.role) {
      case "system":
        history.push({ type: "system", text: m.content })
        return
      case "user":
        history.push({ type: "user", text: m.content })
        return
      case "tool":
        history.push({ type: "user", text: m.content })
        return
      case "assistant": {
        const calls = m.toolCalls ?? []
        if (calls.length === 0) {
          history.push({ type: "model", response: [m.content] })
          return
        }
        // the tool messages right after this turn answer its calls
        const answers: Array<number> = []
        for (let j = index + 1; j < messages.length && messages[j]!.role === "tool"; j++) answers.push(j)
        const response: Array<ChatModelFunctionCall | string> = m.content.length > 0 ? [m.content] : []
        const ids = new Set(calls.map((c) => c.id))
        calls.forEach((call, i) => {
          const free = answers.filter((j) => !consumed.has(j))
          // by id, else the first result whose id names no call of this turn
          const answer = free.find((j) => messages[j]!.toolCallId === call.id) ??
            free.find((j) => !ids.has(messages[j]!.toolCallId ?? ""))
          if (answer !== undefined) consumed.add(answer)
          response.push({
            type: "functionCall",
            name: call.name,
            params: paramsOf(call.arguments),
            result: answer === undefined ? "" : resultOf(messages[answer]!.content),
            startsNewChunk: i === 0
          })
        })
        history.push({ type: "model", response })
        return
      }
    }
  })
  // the open assistant turn to complete; a trailing assistant message is continued instead
  const last = messages.at(-1)
  if (last?.role !== "assistant" || (last.toolCalls?.length ?? 0) > 0) history.push({ type: "model", response: [] })
  return history
}

/** Every character the tokenizer will see as text, control-token text included. */
const textOf = ({ SpecialTokensText }: typeof NodeLlamaCpp, text: LlamaText): string =>
  text.values.map((v) => (typeof v === "string" ? v : v instanceof SpecialTokensText ? v.value : "")).join("")

const quoted = (chars: ReadonlyArray<string>) => chars.slice(0, 16).map((c) => JSON.stringify(c)).join(", ")

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

export interface ChatTarget {
  readonly name: string
  readonly model: LlamaModel
  readonly vocabulary: VocabularyGuard
}

/** What a chat's rendering adds to the messages: the functions offered, the thinking wanted. */
export interface RenderOptions {
  /** the functions the model may call, their schemas already checked; left out: no tools */
  readonly functions?: ChatModelFunctions | undefined
  /** a call is forced by grammar: the answer must start with it, so no thought is opened */
  readonly forceCall?: boolean | undefined
  readonly thinking?: Thinking | undefined
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** `text` less its last `count` characters (as `textOf` counts them). */
const dropTail = (
  { LlamaText: Text, SpecialTokensText }: typeof NodeLlamaCpp,
  text: LlamaText,
  count: number
): LlamaText => {
  const values = [...text.values]
  let left = count
  while (left > 0 && values.length > 0) {
    const last = values.pop()!
    const value = typeof last === "string" ? last : last instanceof SpecialTokensText ? last.value : ""
    if (value.length > left) {
      const kept = value.slice(0, value.length - left)
      values.push(typeof last === "string" ? kept : new SpecialTokensText(kept))
      left = 0
    } else {
      left -= value.length
    }
  }
  return Text(values)
}

/**
 * Ends the prompt inside an open thought, or after a closed one. node-llama-cpp renders the
 * answer to complete as an (empty) assistant message, for which thinking templates such as Qwen3's
 * write an empty, closed thought; a model asked to think must find the thought open instead.
 */
const placeThought = (
  llamaCpp: typeof NodeLlamaCpp,
  text: LlamaText,
  thought: ThoughtSyntax,
  open: boolean,
  switchedOff: boolean
): { readonly text: LlamaText; readonly open: boolean } => {
  const { LlamaText: Text, SpecialTokensText } = llamaCpp
  const full = textOf(llamaCpp, text)
  const start = escape(thought.prefix.trim())
  const end = escape(thought.suffix.trim())
  const openAtEnd = new RegExp(`${start}\\s*$`).test(full)
  const emptyClosed = new RegExp(`${start}\\s*${end}\\s*$`).exec(full)
  if (open) {
    if (openAtEnd) return { text, open: true }
    const kept = emptyClosed === null ? text : dropTail(llamaCpp, text, full.length - emptyClosed.index)
    return { text: Text([kept, new SpecialTokensText(thought.prefix)]), open: true }
  }
  if (openAtEnd) return { text: Text([text, new SpecialTokensText(thought.suffix)]), open: false }
  if (switchedOff && emptyClosed === null) {
    return { text: Text([text, new SpecialTokensText(thought.prefix + thought.suffix)]), open: false }
  }
  return { text, open: false }
}

/**
 * Renders messages with the model's chat template and tokenizes the result with special tokens,
 * so the template's control tokens become real tokens. A guarded vocabulary is checked against
 * the whole rendered text first: llama.cpp aborts the process on a character it has no token for.
 */
export const renderChat = Effect.fn("ChatTemplate.render")(function*(
  target: ChatTarget,
  messages: ReadonlyArray<ChatMessage>,
  options: RenderOptions = {}
) {
  if (messages.length === 0) {
    return yield* Effect.fail(new InvalidRequest({ param: "messages", reason: "messages must not be empty" }))
  }
  const llamaCpp = yield* loadNodeLlamaCpp
  const format = chatFormatFor(llamaCpp, target.model)
  if (options.functions !== undefined && format.tools === undefined) {
    return yield* Effect.fail(
      new InvalidRequest({
        param: "tools",
        reason:
          `model '${target.name}' cannot call tools: its chat template (${format.wrapper.wrapperName}) has no tool support`
      })
    )
  }
  const thinking = options.thinking
  if (thinking?.enabled === true && format.thought === undefined) {
    return yield* Effect.fail(
      new InvalidRequest({
        param: "reasoning_effort",
        reason:
          `model '${target.name}' cannot think: its chat template (${format.wrapper.wrapperName}) has no reasoning`
      })
    )
  }
  const switchedOff = thinking?.enabled === false
  // an effort is the template's where it takes one; elsewhere it only asks for thinking
  const wrapper = switchedOff
    ? format.withoutThinking
    : thinking?.effort !== undefined && format.withEffort !== undefined
    ? format.withEffort(thinking.effort)
    : format.wrapper
  const functions = options.functions
  const inTemplate = format.templateTools
  const state = yield* Effect.try({
    try: () => {
      const chatHistory = historyOf(messages)
      if (functions === undefined) return wrapper.generateContextState({ chatHistory })
      if (inTemplate === undefined) return wrapper.generateContextState({ chatHistory, availableFunctions: functions })
      // the template lists the tools itself; rendering is synchronous, so no other render sees them
      inTemplate.tools = templateToolsOf(functions)
      try {
        return wrapper.generateContextState({ chatHistory })
      } catch {
        // its macros need what some schemas leave out (a property's `type`): node-llama-cpp
        // documents the functions in the system prompt instead
        inTemplate.tools = []
        return wrapper.generateContextState({ chatHistory, availableFunctions: functions })
      } finally {
        inTemplate.tools = []
      }
    },
    catch: (cause) =>
      new InvalidRequest({
        param: "messages",
        reason: `the chat template of '${target.name}' rejected the messages: ${describe(cause)}`
      })
  })
  // the template's default is to think (Qwen3, DeepSeek-R1); a forced call begins the answer
  const wantsThought = !switchedOff && options.forceCall !== true
  const placed = format.thought === undefined
    ? { text: state.contextText, open: false }
    : format.thoughtOpenedOnStart
    ? { text: state.contextText, open: wantsThought }
    : placeThought(llamaCpp, state.contextText, format.thought, wantsThought, switchedOff)
  const contextText = placed.text
  const promptText = textOf(llamaCpp, contextText)
  const bad = unsupportedCharacters(target.vocabulary, promptText)
  if (bad.length > 0) {
    const fromMessages = unsupportedCharacters(target.vocabulary, messages.map((m) => m.content).join(""))
    return yield* Effect.fail(
      new InvalidRequest({
        param: "messages",
        reason: fromMessages.length > 0
          ? `model '${target.name}' has no tokens for these characters: ${quoted(fromMessages)}`
          : `the chat template of model '${target.name}' uses characters its vocabulary has no tokens for (${
            quoted(bad)
          }); use /v1/completions with a plain prompt`
      })
    )
  }
  const tokenizer = target.model.tokenizer
  const rendered = yield* Effect.try({
    try: () => contextText.tokenize(tokenizer),
    catch: (cause) => new GenerationFailed({ model: target.name, reason: `tokenization failed: ${describe(cause)}` })
  })
  const bos = target.model.tokens.bos
  const tokens = target.model.tokens.shouldPrependBosToken && bos !== null && rendered[0] !== bos
    ? [bos, ...rendered]
    : rendered

  const stops: Array<string> = []
  const stopTokens: Array<Token> = []
  for (const trigger of state.stopGenerationTriggers) {
    const text = textOf(llamaCpp, trigger)
    const special = trigger.values.some((v) => typeof v !== "string")
    if (!special) {
      if (text.length > 0) stops.push(text)
      continue
    }
    // a control token (e.g. "<|im_end|>") is detokenized to nothing, so it is matched as a token
    if (unsupportedCharacters(target.vocabulary, text).length > 0) continue
    const ids = llamaCpp.LlamaText(trigger).tokenize(tokenizer)
    if (ids.length === 1) {
      const id = ids[0]!
      if (!target.model.isSpecialToken(id)) stops.push(text)
      else if (!target.model.isEogToken(id)) stopTokens.push(id)
    } else if (text.length > 0) {
      stops.push(text)
    }
  }
  return {
    tokens,
    stops: [...new Set(stops)],
    stopTokens: [...new Set(stopTokens)],
    template: wrapper.wrapperName,
    text: promptText,
    format,
    thinking: placed.open
  } satisfies RenderedChat
})
