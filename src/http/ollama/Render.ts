import { Chunk, Duration, Stream } from "effect"
import type { Answer, DoneEvent, GenerationEvent, ToolCall } from "../../domain/Generation.js"
import type { ModelInfo } from "../../domain/Model.js"
import {
  type ChatChunk,
  type ChatResponse,
  ErrorBody,
  type GenerateChunk,
  type GenerateResponse,
  type ListedModel,
  type ModelDetails,
  type OutToolCall,
  type RunningModel
} from "../../domain/Ollama.js"
import type { Expiry } from "../../services/KeepAlive.js"
import type { ResidentModel } from "../../services/LlamaEngine.js"
import type { Dialect } from "../Dialect.js"
import type { ErrorReply } from "../Reply.js"

/**
 * Ollama's renderings: chat and generate answers (one JSON object, or NDJSON chunks ending in one
 * with `done: true` and the metrics), models, and the error shape `{"error": "message"}` that
 * ollama-js raises as `ResponseError` with the status.
 */

export const dialect: Dialect = {
  name: "ollama",
  prefixes: ["/ollama"],
  errorSchema: ErrorBody,
  errorBody: (reply: ErrorReply): ErrorBody => ({
    error: reply.code === "model_not_found" && reply.model !== undefined
      ? `model '${reply.model}' not found`
      : reply.details
  })
}

/** The Ollama name of a model: `name:tag`, with `latest` where the file has no tag. */
export const ollamaName = (name: string) => (name.includes(":") ? name : `${name}:latest`)

const nowText = () => new Date().toISOString()

// --- timings ---------------------------------------------------------------------------------

/** When a request's phases happened (process.hrtime, ns), for the durations of the last object. */
export interface Timing {
  readonly start: bigint
  /** time spent loading the model for this request */
  loadNs: number
  /** when the prompt's evaluation began (after any load) */
  evalStart: bigint
  first: bigint | undefined
  done: bigint | undefined
}

export const startTiming = (): Timing => {
  const now = process.hrtime.bigint()
  return { start: now, loadNs: 0, evalStart: now, first: undefined, done: undefined }
}

// events arrived now: the first time is the first event's, the last `Done`'s
const mark = (timing: Timing, done: boolean) => {
  if (timing.first !== undefined && !done) return
  const now = process.hrtime.bigint()
  if (timing.first === undefined) timing.first = now
  if (done) timing.done = now
}

/** The events with the times of the first one and of `Done` recorded (once per chunk, not per token). */
export const timed = <E>(events: Stream.Stream<GenerationEvent, E>, timing: Timing) =>
  Stream.mapChunks(events, (chunk) => {
    mark(timing, Chunk.some(chunk, (e) => e._tag === "Done"))
    return chunk
  })

/**
 * A streamed reply's frames with the same times recorded as each event is rendered, which is when
 * it arrives (the stream is then read as a feed, which a stage like `timed` would hide).
 */
export const timedFrames =
  <C>(frames: (event: GenerationEvent) => ReadonlyArray<C>, timing: Timing) =>
  (event: GenerationEvent): ReadonlyArray<C> => {
    mark(timing, event._tag === "Done")
    return frames(event)
  }

const ns = (from: bigint, to: bigint | undefined) => Math.max(0, Number((to ?? process.hrtime.bigint()) - from))

const metrics = (done: DoneEvent, timing: Timing) => {
  const first = timing.first ?? timing.evalStart
  return {
    // Ollama has no reason of its own for tool calls: a turn that called ends with "stop"
    done_reason: done.finishReason === "length" ? "length" : "stop",
    total_duration: ns(timing.start, undefined),
    load_duration: Math.round(timing.loadNs),
    prompt_eval_count: done.usage.prompt_tokens,
    prompt_eval_duration: ns(timing.evalStart, first),
    eval_count: done.usage.completion_tokens,
    eval_duration: ns(first, timing.done)
  }
}

const parsedArguments = (text: string): Record<string, unknown> => {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : { value }
  } catch {
    return { arguments: text }
  }
}

const toolCallOut = (index: number, call: ToolCall): OutToolCall => ({
  id: call.id,
  function: { index, name: call.name, arguments: parsedArguments(call.arguments) }
})

// --- chat ------------------------------------------------------------------------------------

export const chatResponse = (model: string, answer: Answer, timing: Timing): ChatResponse => ({
  model,
  created_at: nowText(),
  message: {
    role: "assistant",
    content: answer.text,
    ...(answer.reasoning.length > 0 ? { thinking: answer.reasoning } : {}),
    ...(answer.toolCalls.length > 0 ? { tool_calls: answer.toolCalls.map((c, i) => toolCallOut(i, c)) } : {})
  },
  done: true,
  ...metrics(answer.done, timing)
})

/** A streamed chat: a chunk per piece of text, thought or call, then the last object with the metrics. */
export const chatChunks = (model: string, timing: Timing) =>
(
  event: GenerationEvent
): ReadonlyArray<ChatChunk | ChatResponse> => {
  const chunk = (message: ChatChunk["message"]): ChatChunk => ({
    model,
    created_at: nowText(),
    message,
    done: false
  })
  switch (event._tag) {
    case "Token":
      return [chunk({ role: "assistant", content: event.text })]
    case "Reasoning":
      return [chunk({ role: "assistant", content: "", thinking: event.text })]
    case "ToolCall":
      return [chunk({ role: "assistant", content: "", tool_calls: [toolCallOut(event.index, event.call)] })]
    case "Done":
      return [{
        model,
        created_at: nowText(),
        message: { role: "assistant", content: "" },
        done: true,
        ...metrics(event, timing)
      }]
  }
}

// --- generate --------------------------------------------------------------------------------

export const generateResponse = (model: string, answer: Answer, timing: Timing): GenerateResponse => ({
  model,
  created_at: nowText(),
  response: answer.text,
  ...(answer.reasoning.length > 0 ? { thinking: answer.reasoning } : {}),
  done: true,
  ...metrics(answer.done, timing)
})

export const generateChunks = (model: string, timing: Timing) =>
(
  event: GenerationEvent
): ReadonlyArray<GenerateChunk | GenerateResponse> => {
  const chunk = (response: string, thinking?: string): GenerateChunk => ({
    model,
    created_at: nowText(),
    response,
    ...(thinking !== undefined ? { thinking } : {}),
    done: false
  })
  switch (event._tag) {
    case "Token":
      return [chunk(event.text)]
    case "Reasoning":
      return [chunk("", event.text)]
    case "ToolCall":
      return []
    case "Done":
      return [{ model, created_at: nowText(), response: "", done: true, ...metrics(event, timing) }]
  }
}

/** The answer to a request that only loads or unloads the model. */
export const loadChat = (model: string, reason: "load" | "unload") => ({
  model,
  created_at: nowText(),
  message: { role: "assistant" as const, content: "" },
  done: true as const,
  done_reason: reason
})

export const loadGenerate = (model: string, reason: "load" | "unload") => ({
  model,
  created_at: nowText(),
  response: "" as const,
  done: true as const,
  done_reason: reason
})

// --- models ----------------------------------------------------------------------------------

/** Parameters as Ollama prints them: "7.2B", "494.03M", "260.22K". */
export const parameterSize = (n: number | undefined): string =>
  n === undefined
    ? "unknown"
    : n >= 1e9
    ? `${(n / 1e9).toFixed(1)}B`
    : n >= 1e6
    ? `${(n / 1e6).toFixed(2)}M`
    : n >= 1e3
    ? `${(n / 1e3).toFixed(2)}K`
    : String(n)

export const details = (m: ModelInfo): ModelDetails => ({
  parent_model: "",
  format: "gguf",
  family: m.architecture ?? "unknown",
  families: m.architecture === undefined ? null : [m.architecture],
  parameter_size: parameterSize(m.parameters),
  quantization_level: m.quantization ?? "unknown"
})

export const listed = (m: ModelInfo, digest: string, modified: Date): ListedModel => ({
  name: ollamaName(m.name),
  model: ollamaName(m.name),
  modified_at: modified.toISOString(),
  size: m.sizeBytes,
  digest,
  details: details(m)
})

// Go's longest duration (about 292 years): what Ollama reports for a model kept loaded for good
const FOREVER_MILLIS = 292 * 365.25 * 24 * 3600 * 1000

const expiresAt = (expiry: Expiry, now: number): number =>
  expiry._tag === "At"
    ? expiry.millis
    : expiry._tag === "InUse" && Duration.isFinite(expiry.keepAlive)
    ? now + Duration.toMillis(expiry.keepAlive)
    : now + FOREVER_MILLIS

export const running = (m: ModelInfo, r: ResidentModel, digest: string, now: number): RunningModel => ({
  name: ollamaName(m.name),
  model: ollamaName(m.name),
  size: r.sizeBytes,
  digest,
  details: details(m),
  expires_at: new Date(expiresAt(r.expiry, now)).toISOString(),
  size_vram: r.vramBytes,
  context_length: r.contextSize
})
