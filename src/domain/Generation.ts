import { type Duration, Effect, Schema, Stream } from "effect"
import { GenerationFailed } from "./Errors.js"

/**
 * What every dialect asks the engine for, and what the engine answers with: one request type in,
 * one stream of events out. Dialects (the seed API, OpenAI, Ollama, Anthropic) decode their wire
 * requests into a `GenerationRequest` and render the `GenerationEvent`s in their own format.
 */

/** What the engine needs to sample; dialects map their own fields onto it. */
export interface Sampling {
  readonly maxTokens: number
  readonly temperature: number
  readonly topP?: number | undefined
  readonly topK?: number | undefined
  readonly minP?: number | undefined
  readonly seed?: number | undefined
  readonly stop: ReadonlyArray<string>
  readonly repeatPenalty?: number | undefined
  readonly presencePenalty?: number | undefined
  readonly frequencyPenalty?: number | undefined
}

/** Stop strings as every dialect sends them: none, one, or a list. */
export const stopList = (stop: string | ReadonlyArray<string> | undefined): ReadonlyArray<string> =>
  stop === undefined ? [] : typeof stop === "string" ? [stop] : stop

/** The snake_case sampling fields dialects share (the seed API, OpenAI; Ollama's options too). */
export interface SamplingFields {
  readonly top_p?: number | undefined
  readonly top_k?: number | undefined
  readonly min_p?: number | undefined
  readonly seed?: number | undefined
  readonly stop?: string | ReadonlyArray<string> | undefined
  readonly repeat_penalty?: number | undefined
  readonly presence_penalty?: number | undefined
  readonly frequency_penalty?: number | undefined
}

/** The sampling of a request's shared fields, with the token limit and temperature it resolved. */
export const samplingFrom = (fields: SamplingFields, maxTokens: number, temperature: number): Sampling => ({
  maxTokens,
  temperature,
  topP: fields.top_p,
  topK: fields.top_k,
  minP: fields.min_p,
  seed: fields.seed,
  stop: stopList(fields.stop),
  repeatPenalty: fields.repeat_penalty,
  presencePenalty: fields.presence_penalty,
  frequencyPenalty: fields.frequency_penalty
})

/** A call the model made: `arguments` is JSON text (an object that validates against the tool's parameters). */
export interface ToolCall {
  readonly id: string
  readonly name: string
  readonly arguments: string
}

/** One turn of a conversation, as the engine renders it with the model's chat template. */
export const ChatRole = Schema.Literal("system", "user", "assistant", "tool")
export type ChatRole = typeof ChatRole.Type

export interface ChatMessage {
  readonly role: ChatRole
  readonly content: string
  /** an assistant turn's calls (history of an agent loop) */
  readonly toolCalls?: ReadonlyArray<ToolCall> | undefined
  /** a tool turn: the call it answers */
  readonly toolCallId?: string | undefined
  /** a tool turn: the function that produced it */
  readonly name?: string | undefined
}

/** Messages to render with the model's chat template (its own, or a generic one). */
export interface ChatPrompt {
  readonly _tag: "Chat"
  readonly messages: ReadonlyArray<ChatMessage>
}

/**
 * Fill in the middle: the model writes what goes between `prefix` and `suffix`, prompted with its
 * own FIM tokens (code models); a model without them cannot be asked.
 */
export interface InfillPrompt {
  readonly _tag: "Infill"
  readonly prefix: string
  readonly suffix: string
}

/** A constraint on the output's shape, enforced by a grammar. */
export type ResponseFormat =
  | { readonly _tag: "Text" }
  | { readonly _tag: "JsonObject" }
  | { readonly _tag: "JsonSchema"; readonly schema: unknown }

/** A function the model may call; `parameters` is a JSON Schema of its arguments object. */
export interface ToolDefinition {
  readonly name: string
  readonly description?: string | undefined
  readonly parameters: Readonly<Record<string, unknown>>
}

/** `Auto`: the model decides; `None`: never call; `Required`: at least one call; `Named`: that function. */
export type ToolChoice =
  | { readonly _tag: "Auto" }
  | { readonly _tag: "None" }
  | { readonly _tag: "Required" }
  | { readonly _tag: "Named"; readonly name: string }

export interface Tools {
  readonly definitions: ReadonlyArray<ToolDefinition>
  readonly choice: ToolChoice
  /** whether the model may make more than one call in a turn */
  readonly parallel: boolean
}

/**
 * Thinking for templates that think: `enabled: false` asks the template not to (Qwen3's
 * `enable_thinking`); an effort is passed where the template takes one (gpt-oss).
 */
export interface Thinking {
  readonly enabled: boolean
  readonly effort?: "low" | "medium" | "high" | undefined
}

/** One generation: a model, a prompt (raw text or a conversation), how to sample. */
export interface GenerationRequest {
  readonly model: string
  readonly prompt: string | ChatPrompt | InfillPrompt
  readonly sampling: Sampling
  readonly responseFormat?: ResponseFormat | undefined
  /** chat prompts only */
  readonly tools?: Tools | undefined
  /** chat prompts only; left out: the template's default */
  readonly thinking?: Thinking | undefined
  /** how long the model stays loaded once this generation (and any other on it) ends; left out: the default */
  readonly keepAlive?: Duration.Duration | undefined
  /**
   * false: the caller collects the whole answer (a reply that is not streamed), so the events may
   * come in chunks instead of one by one as they are made; left out: streamed
   */
  readonly streamed?: boolean | undefined
}

export const FinishReason = Schema.Literal("stop", "length", "tool_calls")
export type FinishReason = typeof FinishReason.Type

export class Usage extends Schema.Class<Usage>("Usage")({
  prompt_tokens: Schema.Number,
  completion_tokens: Schema.Number,
  total_tokens: Schema.Number
}) {
  static of(prompt: number, completion: number): Usage {
    // our own counts: nothing to validate
    return new Usage(
      { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
      { disableValidation: true }
    )
  }
}

/** A piece of the answer: one or more tokens that decode to whole characters. */
export interface TokenEvent {
  readonly _tag: "Token"
  readonly text: string
  readonly tokens: number
}

/** A piece of the model's thought (templates that think), kept apart from the answer. */
export interface ReasoningEvent {
  readonly _tag: "Reasoning"
  readonly text: string
  readonly tokens: number
}

/** A complete, validated tool call; `index` counts the calls of this generation from 0. */
export interface ToolCallEvent {
  readonly _tag: "ToolCall"
  readonly index: number
  readonly call: ToolCall
}

/** The last event of every generation. */
export interface DoneEvent {
  readonly _tag: "Done"
  readonly finishReason: FinishReason
  readonly usage: Usage
  /** the stop string that ended the generation, when one did (a request's, or a template's own) */
  readonly stopSequence?: string | undefined
}

export type GenerationEvent = TokenEvent | ReasoningEvent | ToolCallEvent | DoneEvent

export const tokenEvent = (text: string, tokens: number): TokenEvent => ({ _tag: "Token", text, tokens })
export const reasoningEvent = (text: string, tokens: number): ReasoningEvent => ({ _tag: "Reasoning", text, tokens })
export const toolCallEvent = (index: number, call: ToolCall): ToolCallEvent => ({ _tag: "ToolCall", index, call })
export const doneEvent = (finishReason: FinishReason, usage: Usage, stopSequence?: string): DoneEvent => ({
  _tag: "Done",
  finishReason,
  usage,
  ...(stopSequence !== undefined ? { stopSequence } : {})
})

/** A whole generation, as the JSON renderings answer it. */
export interface Answer {
  readonly text: string
  readonly reasoning: string
  readonly toolCalls: ReadonlyArray<ToolCall>
  readonly done: DoneEvent
}

interface Folding {
  readonly text: string
  readonly reasoning: string
  readonly toolCalls: ReadonlyArray<ToolCall>
  readonly done: DoneEvent | undefined
}

const nothing: Folding = { text: "", reasoning: "", toolCalls: [], done: undefined }

/** Collects a generation's events into its answer (the same stream every rendering runs). */
export const collect = <E>(
  model: string,
  events: Stream.Stream<GenerationEvent, E>
): Effect.Effect<Answer, E | GenerationFailed> =>
  Stream.runFold(events, nothing, (acc, event): Folding => {
    switch (event._tag) {
      case "Token":
        return { ...acc, text: acc.text + event.text }
      case "Reasoning":
        return { ...acc, reasoning: acc.reasoning + event.text }
      case "ToolCall":
        return { ...acc, toolCalls: [...acc.toolCalls, event.call] }
      case "Done":
        return { ...acc, done: event }
    }
  }).pipe(
    Effect.flatMap(({ done, ...rest }) =>
      done === undefined
        ? Effect.fail(new GenerationFailed({ model, reason: "the generation ended without a finish reason" }))
        : Effect.succeed<Answer>({ ...rest, done })
    )
  )
