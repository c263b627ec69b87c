import type { LlamaContextSequence, LlamaGrammar, LlamaModel, SequenceEvaluateOptions, Token } from "node-llama-cpp"
import { randomBytes } from "node:crypto"
import {
  doneEvent,
  type FinishReason,
  type GenerationEvent,
  reasoningEvent,
  type Sampling,
  tokenEvent,
  toolCallEvent,
  Usage
} from "../domain/Generation.js"
import { loadedNodeLlamaCpp } from "./LlamaRuntime.js"
import { NO_TOKEN_MESSAGE } from "./SamplerGuard.js"
import { StopMatcher } from "./StopMatcher.js"
import { type ParsedEvent, type ParserOptions, ToolCallParser } from "./ToolCallParser.js"
import { utf8Guard } from "./Utf8Guard.js"

export interface GenerationInput {
  readonly model: LlamaModel
  readonly sequence: LlamaContextSequence
  readonly promptTokens: ReadonlyArray<Token>
  readonly sampling: Sampling
  /** tokens one sequence holds */
  readonly contextSize: number
  readonly grammar?: LlamaGrammar | undefined
  /** control tokens that end the turn without being end-of-generation tokens (a chat template's) */
  readonly stopTokens?: ReadonlyArray<Token> | undefined
  /** split the output into answer, thought and tool calls (chat templates with tools or thoughts) */
  readonly parse?: ParserOptions | undefined
}

/** An OpenAI-style call id. */
export const callId = () => `call_${randomBytes(12).toString("hex")}`

/**
 * The parser's events as generation events. The tokens the text came from count once, on the
 * first text or thought; text held back (a marker that may be starting, a stop string) owes its
 * tokens to the next event that has some, so the counts add up to the tokens generated.
 */
function* parsed(
  events: ReadonlyArray<ParsedEvent>,
  owed: { tokens: number },
  calls: { index: number }
): Generator<GenerationEvent> {
  for (const e of events) {
    if (e._tag === "Call") {
      yield toolCallEvent(calls.index++, { id: callId(), name: e.name, arguments: e.arguments })
      continue
    }
    yield e._tag === "Text" ? tokenEvent(e.text, owed.tokens) : reasoningEvent(e.text, owed.tokens)
    owed.tokens = 0
  }
}

// a character is at most 4 UTF-8 bytes, so at most 4 byte tokens are ever held back
const MAX_PENDING = 4
const DETOKENIZE_CONTEXT = 4

/**
 * The grammar accepts none of the model's tokens at this point of the output (see SamplerGuard):
 * the model cannot write the requested format. `after` is the output up to there.
 */
export class GrammarDeadEnd extends Error {
  constructor(readonly after: string) {
    super(
      after.length === 0
        ? "no token of the model can begin the required format"
        : `no token of the model continues the required format after ${JSON.stringify(after)}`
    )
  }
}

/** llama.cpp server's defaults, used when a request leaves them out. */
const TOP_K = 40
const TOP_P = 0.95
const MIN_P = 0.05

const evaluateOptions = (input: GenerationInput, generated: ReadonlyArray<Token>): SequenceEvaluateOptions => {
  const s = input.sampling
  const penalize = s.repeatPenalty !== undefined || s.presencePenalty !== undefined || s.frequencyPenalty !== undefined
  return {
    temperature: s.temperature,
    topK: s.topK ?? TOP_K,
    topP: s.topP ?? TOP_P,
    minP: s.minP ?? MIN_P,
    ...(s.seed !== undefined ? { seed: s.seed } : {}),
    ...(penalize
      ? {
        repeatPenalty: {
          punishTokens: () => generated.slice(-64) as Array<Token>,
          penalty: s.repeatPenalty ?? 1,
          presencePenalty: s.presencePenalty ?? 0,
          frequencyPenalty: s.frequencyPenalty ?? 0
        }
      }
      : {}),
    ...(input.grammar !== undefined ? constrained(input.model, input.grammar, generated) : {})
  }
}

/** A grammar's state, and the guard that keeps what it lets through well-formed UTF-8 (see Utf8Guard). */
const constrained = (model: LlamaModel, grammar: LlamaGrammar, generated: ReadonlyArray<Token>) => {
  const guard = utf8Guard(model, generated)
  return {
    grammarEvaluationState: new (loadedNodeLlamaCpp().LlamaGrammarEvaluationState)({ model, grammar }),
    ...(guard !== undefined ? { tokenBias: guard } : {})
  }
}

/**
 * Keeps what a sequence already evaluated of the prompt and erases the rest; returns how many
 * prompt tokens it keeps. At least one token is left to evaluate anew, so there are logits to
 * sample from.
 */
export const reusePrefix = async (
  sequence: LlamaContextSequence,
  promptTokens: ReadonlyArray<Token>
): Promise<number> => {
  const history = sequence.contextTokens
  const reusable = Math.min(history.length, promptTokens.length - 1)
  let common = 0
  while (common < reusable && history[common] === promptTokens[common]) common++
  if (common < sequence.nextTokenIndex) {
    await sequence.eraseContextTokenRanges([{ start: common, end: sequence.nextTokenIndex }])
  }
  return common
}

/**
 * Evaluates the prompt on a sequence and yields text as it is generated, then one `Done`.
 * Text is yielded only in whole characters, with stop strings removed. Returning early (the
 * consumer stops) ends the underlying evaluation after the token in progress.
 */
export async function* generate(input: GenerationInput): AsyncGenerator<GenerationEvent, void, undefined> {
  const { model, promptTokens, sequence } = input
  const common = await reusePrefix(sequence, promptTokens)

  // the last token of a sequence is generated but never evaluated, so contextSize - prompt fit
  const limit = Math.min(input.sampling.maxTokens, input.contextSize - promptTokens.length)
  const generated: Array<Token> = []
  const stop = new StopMatcher(input.sampling.stop)
  let pending: Array<Token> = []
  let context = promptTokens.slice(-DETOKENIZE_CONTEXT)
  let finish: FinishReason = "length"
  let stoppedByString = false
  // the stop string that ended it, if one did (a request's, a template's or a grammar's)
  let stopString: string | undefined
  // the plain path stays as it was: a parser only where the template has tools or thoughts
  const parser = input.parse === undefined ? undefined : new ToolCallParser(input.parse)
  const calls = { index: 0 }
  // tokens whose text has not been given out yet (held back by the stop matcher or the parser)
  const owed = { tokens: 0 }

  const tokens = sequence.evaluate(promptTokens.slice(common) as Array<Token>, evaluateOptions(input, generated))
  try {
    for await (const token of tokens) {
      generated.push(token)
      if (input.stopTokens?.includes(token) === true) {
        finish = "stop"
        break
      }
      pending.push(token)
      // a template's markers may be control tokens (Qwen's <tool_call>), which only show with special tokens
      const text = model.detokenize(pending, parser !== undefined, context)
      const whole = !text.endsWith("\uFFFD") || pending.length >= MAX_PENDING
      if (whole) {
        owed.tokens += pending.length
        context = [...context, ...pending].slice(-DETOKENIZE_CONTEXT)
        pending = []
        const { emit, stop: matched, stopped } = stop.push(text)
        if (parser !== undefined) {
          if (emit.length > 0) yield* parsed(parser.push(emit), owed, calls)
          if (parser.done) {
            finish = "tool_calls"
            break
          }
        } else if (emit.length > 0) {
          yield tokenEvent(emit, owed.tokens)
          owed.tokens = 0
        }
        if (stopped) {
          finish = "stop"
          stoppedByString = true
          stopString = matched
          break
        }
      }
      if (generated.length >= limit) break
    }
  } catch (error) {
    if (input.grammar !== undefined && error instanceof Error && error.message === NO_TOKEN_MESSAGE) {
      throw new GrammarDeadEnd(model.detokenize(generated.slice(-32)))
    }
    throw error
  }
  // the loop ended without break: an end-of-generation token
  if (generated.length < limit && finish === "length") finish = "stop"
  if (!stoppedByString) {
    // bytes of an unfinished character, then whatever could still have become a stop string
    const rest = pending.length > 0
      ? stop.push(model.detokenize(pending, parser !== undefined, context))
      : { emit: "", stopped: false }
    const tail = rest.emit + (rest.stopped ? "" : stop.flush())
    if (rest.stopped) {
      finish = "stop"
      stopString = rest.stop
    }
    owed.tokens += pending.length
    if (parser !== undefined) {
      if (tail.length > 0) yield* parsed(parser.push(tail), owed, calls)
    } else if (tail.length > 0) {
      yield tokenEvent(tail, owed.tokens)
      owed.tokens = 0
    }
  }
  if (parser !== undefined) {
    yield* parsed(parser.end(), owed, calls)
    // a turn that made calls ends for them, whatever cut it off after the last
    if (calls.index > 0) finish = "tool_calls"
  }
  yield doneEvent(finish, Usage.of(promptTokens.length, generated.length), stopString)
}
