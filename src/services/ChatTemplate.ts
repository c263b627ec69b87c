import { Effect } from "effect"
import type * as NodeLlamaCpp from "node-llama-cpp"
import type { ChatHistoryItem, ChatWrapper, LlamaModel, LlamaText, Token } from "node-llama-cpp"
import { GenerationFailed, InvalidRequest } from "../domain/Errors.js"
import type { ChatMessage } from "../domain/Generation.js"
import { unsupportedCharacters, type VocabularyGuard } from "./Gguf.js"
import { loadNodeLlamaCpp } from "./LlamaRuntime.js"

/** A conversation rendered for one model: the prompt tokens and where its template ends a turn. */
export interface RenderedChat {
  readonly tokens: ReadonlyArray<Token>
  /** the template's textual end-of-turn markers */
  readonly stops: ReadonlyArray<string>
  /** end-of-turn control tokens that are not end-of-generation tokens (those end it anyway) */
  readonly stopTokens: ReadonlyArray<Token>
  /** the chat wrapper used, for logs and diagnostics */
  readonly template: string
}

type Template = Pick<ChatWrapper, "wrapperName" | "generateContextState">

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
      const text = item.type === "model" ? item.response.filter((r) => typeof r === "string").join("") : LlamaText.fromJSON(item.text).toString()
      return `${roleTitle[item.type]}: ${text}\n`
    })
    const continued = open?.response.filter((r) => typeof r === "string").join("") ?? ""
    return {
      contextText: LlamaText([...lines, continued.length > 0 ? `Assistant: ${continued}` : "Assistant:"]),
      stopGenerationTriggers: [LlamaText(new SpecialToken("EOS")), ...["User:", "System:", "Assistant:"].map((t) => LlamaText(`\n${t}`))]
    }
  }
})

// resolving parses the GGUF's Jinja template: once per loaded model
const wrappers = new WeakMap<LlamaModel, Template>()

/** The model's own template (Jinja, or a known family node-llama-cpp recognises), else the generic one. */
export const chatWrapperFor = (llamaCpp: typeof NodeLlamaCpp, model: LlamaModel): Template => {
  const cached = wrappers.get(model)
  if (cached !== undefined) return cached
  const wrapper = typeof model.fileInfo.metadata.tokenizer?.chat_template === "string"
    ? llamaCpp.resolveChatWrapper(model, { warningLogs: false })
    : genericTemplate(llamaCpp)
  wrappers.set(model, wrapper)
  return wrapper
}

const historyOf = (messages: ReadonlyArray<ChatMessage>): Array<ChatHistoryItem> => {
  const history = messages.map((m): ChatHistoryItem => {
    switch (m.role) {
      case "system":
        return { type: "system", text: m.content }
      case "user":
        return { type: "user", text: m.content }
      case "assistant":
        return { type: "model", response: [m.content] }
      case "tool":
        // rendered properly once tool calls reach the template
        return { type: "user", text: m.content }
    }
  })
  // the open assistant turn to complete; a trailing assistant message is continued instead
  if (messages.at(-1)?.role !== "assistant") history.push({ type: "model", response: [] })
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

/**
 * Renders messages with the model's chat template and tokenizes the result with special tokens,
 * so the template's control tokens become real tokens. A guarded vocabulary is checked against
 * the whole rendered text first: llama.cpp aborts the process on a character it has no token for.
 */
export const renderChat = Effect.fn("ChatTemplate.render")(function*(
  target: ChatTarget,
  messages: ReadonlyArray<ChatMessage>
) {
  if (messages.length === 0) {
    return yield* Effect.fail(new InvalidRequest({ param: "messages", reason: "messages must not be empty" }))
  }
  const llamaCpp = yield* loadNodeLlamaCpp
  const wrapper = chatWrapperFor(llamaCpp, target.model)
  const state = yield* Effect.try({
    try: () => wrapper.generateContextState({ chatHistory: historyOf(messages) }),
    catch: (cause) =>
      new InvalidRequest({ param: "messages", reason: `the chat template of '${target.name}' rejected the messages: ${describe(cause)}` })
  })
  const bad = unsupportedCharacters(target.vocabulary, textOf(llamaCpp, state.contextText))
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
    try: () => state.contextText.tokenize(tokenizer),
    catch: (cause) => new GenerationFailed({ model: target.name, reason: `tokenization failed: ${describe(cause)}` })
  })
  const bos = target.model.tokens.bos
  const tokens = target.model.tokens.shouldPrependBosToken && bos !== null && rendered[0] !== bos ? [bos, ...rendered] : rendered

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
    template: wrapper.wrapperName
  } satisfies RenderedChat
})
