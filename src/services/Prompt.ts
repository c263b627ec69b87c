import { Effect } from "effect"
import type { Llama, LlamaGrammar, Token } from "node-llama-cpp"
import { ContextLengthExceeded, GenerationFailed, InvalidRequest, type RuntimeUnavailable } from "../domain/Errors.js"
import type { GenerationRequest, InfillPrompt, ResponseFormat } from "../domain/Generation.js"
import { renderChat } from "./ChatTemplate.js"
import { unsupportedCharacters } from "./Gguf.js"
import type { Grammar } from "./Grammar.js"
import type { LoadedModel } from "./LoadedModel.js"
import type { ParserOptions } from "./ToolCallParser.js"
import { forcedCall, functionsOf, prepareTools, validatorOf } from "./ToolGrammar.js"

/**
 * What a generation sends to the model, prepared from its request: the prompt's tokens (a raw
 * prompt tokenized, or a conversation rendered by the model's chat template with its tools and
 * thinking), the stops, the grammar (a response format's, or a forced tool call's), and how to
 * read the output (calls and thoughts in the template's syntax).
 */

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

const quoted = (chars: ReadonlyArray<string>) => chars.map((c) => JSON.stringify(c)).join(", ")

/** The tools a request offers (none for `tool_choice` "none"), checked and compiled. */
const toolsOf = Effect.fn("Prompt.tools")(function*(llama: Llama, request: GenerationRequest) {
  const tools = request.tools
  if (tools === undefined || tools.choice._tag === "None") return undefined
  if (tools.definitions.length === 0) {
    if (tools.choice._tag === "Auto") return undefined
    return yield* Effect.fail(new InvalidRequest({ param: "tool_choice", reason: "tool_choice requires tools" }))
  }
  const forced = tools.choice._tag === "Required" || tools.choice._tag === "Named"
  if (forced && request.responseFormat !== undefined && request.responseFormat._tag !== "Text") {
    return yield* Effect.fail(
      new InvalidRequest({
        param: "response_format",
        reason: "a response format cannot be combined with a forced tool call"
      })
    )
  }
  const prepared = yield* prepareTools(llama, tools)
  return { tools, prepared, forced }
})

/**
 * A chat request rendered with the model's template, its tools and its thinking; a raw prompt is
 * not rendered (`chat` undefined) and cannot have tools or thinking.
 */
export const render = Effect.fn("Prompt.render")(
  function*(llama: Llama, loaded: LoadedModel, request: GenerationRequest) {
    const offered = yield* toolsOf(llama, request)
    const prompt = request.prompt
    if (typeof prompt === "string" || prompt._tag === "Infill") {
      if (offered !== undefined || request.thinking !== undefined) {
        return yield* Effect.fail(
          new InvalidRequest({
            param: offered !== undefined ? "tools" : "reasoning_effort",
            reason: "tools and thinking need a chat prompt (messages), which the model's chat template renders"
          })
        )
      }
      return { chat: undefined, offered }
    }
    const chat = yield* renderChat(
      { name: loaded.registered.info.name, model: loaded.model, vocabulary: loaded.registered.vocabulary },
      prompt.messages,
      {
        functions: offered === undefined ? undefined : functionsOf(offered.prepared),
        forceCall: offered?.forced,
        thinking: request.thinking
      }
    )
    return { chat, offered }
  }
)

/** Fails with `param` named when `text` has characters a guarded vocabulary has no tokens for. */
export const refuseUnsupported = (
  loaded: LoadedModel,
  text: string,
  param: string
): Effect.Effect<void, InvalidRequest> => {
  const bad = unsupportedCharacters(loaded.registered.vocabulary, text)
  return bad.length === 0 ? Effect.void : Effect.fail(
    new InvalidRequest({
      param,
      reason: `model '${loaded.registered.info.name}' has no tokens for these characters: ${quoted(bad.slice(0, 16))}`
    })
  )
}

/** A raw prompt as tokens: its characters checked against a guarded vocabulary, BOS as the model wants. */
export const tokenize = (loaded: LoadedModel, text: string) =>
  Effect.gen(function*() {
    const name = loaded.registered.info.name
    yield* refuseUnsupported(loaded, text, "prompt")
    const tokens = yield* Effect.try({
      try: () => {
        const body = loaded.model.tokenize(text, false)
        const bos = loaded.model.tokens.bos
        return loaded.model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...body] : body
      },
      catch: (cause) => new GenerationFailed({ model: name, reason: `tokenization failed: ${describe(cause)}` })
    })
    if (tokens.length === 0) {
      return yield* Effect.fail(new InvalidRequest({ param: "prompt", reason: "prompt is empty" }))
    }
    return yield* fits(loaded, tokens)
  })

/** Text as tokens with no BOS, its characters checked against a guarded vocabulary. */
const tokensOf = (loaded: LoadedModel, text: string, param: string) =>
  Effect.gen(function*() {
    const name = loaded.registered.info.name
    yield* refuseUnsupported(loaded, text, param)
    return yield* Effect.try({
      try: () => loaded.model.tokenize(text, false),
      catch: (cause) => new GenerationFailed({ model: name, reason: `tokenization failed: ${describe(cause)}` })
    })
  })

/**
 * A fill-in-the-middle prompt in the model's FIM tokens, prefix first as llama.cpp's server
 * writes it: `[BOS] <FIM_PRE> prefix <FIM_SUF> suffix <FIM_MID>`.
 */
const infill = (loaded: LoadedModel, prompt: InfillPrompt) =>
  Effect.gen(function*() {
    const tokens = loaded.model.tokens
    const { middle, prefix, suffix } = tokens.infill
    if (prefix === null || suffix === null || middle === null) {
      return yield* Effect.fail(
        new InvalidRequest({
          param: "suffix",
          reason: `model '${loaded.registered.info.name}' cannot fill in the middle: it has no FIM tokens`
        })
      )
    }
    const before = yield* tokensOf(loaded, prompt.prefix, "prompt")
    const after = yield* tokensOf(loaded, prompt.suffix, "suffix")
    const bos = tokens.shouldPrependBosToken && tokens.bos !== null ? [tokens.bos] : []
    return yield* fits(loaded, [...bos, prefix, ...before, suffix, ...after, middle])
  })

const fits = (loaded: LoadedModel, tokens: ReadonlyArray<Token>) =>
  tokens.length >= loaded.contextSize
    ? Effect.fail(
      new ContextLengthExceeded({
        model: loaded.registered.info.name,
        promptTokens: tokens.length,
        contextSize: loaded.contextSize
      })
    )
    : Effect.succeed(tokens)

const promptOf = (llama: Llama, loaded: LoadedModel, request: GenerationRequest) =>
  Effect.gen(function*() {
    const { chat, offered } = yield* render(llama, loaded, request)
    if (chat !== undefined) {
      yield* fits(loaded, chat.tokens)
      return { prompt: chat, chat, offered }
    }
    const tokens = typeof request.prompt === "object" && request.prompt._tag === "Infill"
      ? yield* infill(loaded, request.prompt)
      : yield* tokenize(loaded, typeof request.prompt === "string" ? request.prompt : "")
    return {
      prompt: { tokens, stops: [] as ReadonlyArray<string>, stopTokens: [] as ReadonlyArray<Token> },
      chat,
      offered
    }
  })

/** What a generation sends to the model: the prompt, its stops, its grammar, how to read the output. */
export const prepare = (llama: Llama, grammars: Grammar, loaded: LoadedModel, request: GenerationRequest) =>
  Effect.gen(function*() {
    const { chat, offered, prompt } = yield* promptOf(llama, loaded, request)
    const syntax = chat?.format.tools
    const grammar = offered?.forced === true && syntax !== undefined
      ? yield* forcedCall(
        llama,
        syntax,
        offered.prepared,
        offered.tools.choice,
        offered.tools.parallel
      )
      : yield* grammarFor(grammars, request.responseFormat)
    // the plain path (no tools, a template that never thinks) is not parsed at all
    const parse: ParserOptions | undefined =
      chat === undefined || (offered === undefined && chat.format.thought === undefined)
        ? undefined
        : {
          calls: offered === undefined ? undefined : syntax,
          thought: chat.format.thought,
          thinking: chat.thinking,
          parallel: offered?.tools.parallel ?? false,
          validate: offered === undefined ? () => undefined : validatorOf(offered.prepared)
        }
    return { prompt, grammar, parse, forced: offered?.forced === true }
  })

/** The grammar a response format asks for; none for plain text. */
const grammarFor = (
  grammars: Grammar,
  format: ResponseFormat | undefined
): Effect.Effect<LlamaGrammar | undefined, InvalidRequest | RuntimeUnavailable> =>
  format === undefined || format._tag === "Text"
    ? Effect.succeed(undefined)
    : format._tag === "JsonObject"
    ? grammars.json
    : grammars.forJsonSchema(format.schema)
