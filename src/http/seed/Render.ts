import { Option } from "effect"
import type { Answer, FinishReason, GenerationEvent } from "../../domain/Generation.js"
import type { ModelInfo } from "../../domain/Model.js"
import {
  ErrorBody,
  type GenerateChunk,
  type GenerateResponse,
  type HealthResponse,
  type ModelsResponse,
  type PublicHealth,
  type SocketFrame
} from "../../domain/SeedApi.js"
import { formatBytes } from "../../Format.js"
import type { LoadingModel, SchedulerStats } from "../../services/LlamaEngine.js"
import type { Backend } from "../../services/LlamaRuntime.js"
import type { SlotStats } from "../../services/ModelSlots.js"
import type { Dialect } from "../Dialect.js"
import type { ErrorReply } from "../Reply.js"

/** The seed API's renderings (spec/API.md): JSON, SSE chunks, WebSocket frames, the error body. */

export const dialect: Dialect = {
  name: "seed",
  prefixes: ["/"],
  errorSchema: ErrorBody,
  errorBody: (reply: ErrorReply): ErrorBody => ({
    error: { code: reply.code, message: reply.message, details: reply.details }
  })
}

// the seed API has no tools: a finish reason is one of the spec's two
const finish = (reason: FinishReason) => (reason === "length" ? "length" : "stop")

export const json = (answer: Answer): GenerateResponse => ({
  choices: [{ text: answer.text, index: 0, finish_reason: finish(answer.done.finishReason) }],
  usage: answer.done.usage
})

/** One data event per piece of text, a last chunk with finish_reason and usage. */
export const chunks = (event: GenerationEvent): ReadonlyArray<GenerateChunk> =>
  event._tag === "Token"
    ? [{ choices: [{ text: event.text, index: 0 }] }]
    : event._tag === "Done"
    ? [{ choices: [{ text: "", index: 0, finish_reason: finish(event.finishReason) }], usage: event.usage }]
    : []

/** `{"token"}` per piece of text, then `{"done":true}` with the finish reason and usage. */
export const frames = (event: GenerationEvent): ReadonlyArray<SocketFrame> =>
  event._tag === "Token"
    ? [{ token: event.text }]
    : event._tag === "Done"
    ? [{ done: true, finish_reason: finish(event.finishReason), usage: event.usage }]
    : []

const describeModel = (m: ModelInfo): string => {
  const kind = [m.architecture, m.quantization].filter((s) => s !== undefined).join(" ")
  const what = `${kind.length > 0 ? `${kind} ` : ""}GGUF model, ${formatBytes(m.sizeBytes)}`
  return m.status === "ok" ? what : `${what} (${m.status}${m.reason !== undefined ? `: ${m.reason}` : ""})`
}

export const models = (
  list: ReadonlyArray<ModelInfo>,
  loaded: ReadonlySet<string>,
  loading: ReadonlySet<string> = new Set()
): ModelsResponse => ({
  models: list.map((m) => ({
    id: m.name,
    name: m.displayName ?? m.name,
    description: describeModel(m),
    size_bytes: m.sizeBytes,
    size: formatBytes(m.sizeBytes),
    architecture: m.architecture ?? null,
    parameters: m.parameters ?? null,
    quantization: m.quantization ?? null,
    context_length: m.contextLength ?? null,
    status: m.status,
    guarded: m.status === "guarded",
    ...(m.reason !== undefined ? { reason: m.reason } : {}),
    source: m.source,
    loaded: loaded.has(m.name),
    loading: loading.has(m.name)
  }))
})

export interface HealthFacts {
  readonly schedulers: ReadonlyArray<SchedulerStats>
  readonly backend: Option.Option<Backend>
  readonly models: ReadonlyArray<ModelInfo>
  readonly memory: NodeJS.MemoryUsage
  readonly uptimeSeconds: number
  readonly version: string
  readonly loading: ReadonlyArray<LoadingModel>
  readonly slots: SlotStats
  /** now, epoch ms */
  readonly now: number
}

/** What a caller without the required API key learns from `/api/health`. */
export const publicHealth: PublicHealth = { status: "healthy" }

export const health = (
  { backend, loading, memory, models, now, schedulers, slots, uptimeSeconds, version }: HealthFacts
): HealthResponse => {
  const sum = (pick: (s: SchedulerStats) => number) => schedulers.reduce((n, s) => n + pick(s), 0)
  return {
    status: "healthy",
    models_loaded: schedulers.length,
    memory_usage: formatBytes(memory.rss),
    memory_bytes: memory.rss,
    // where the resident memory is: V8's heap, buffers outside it (native, incl. llama.cpp's own
    // allocations only where Node is told of them)
    memory: {
      rss: memory.rss,
      heap_used: memory.heapUsed,
      heap_total: memory.heapTotal,
      external: memory.external,
      array_buffers: memory.arrayBuffers
    },
    uptime_seconds: uptimeSeconds,
    version,
    models_available: models.filter((m) => m.status !== "unusable").length,
    loaded_models: schedulers.map((s) => s.model),
    loading: loading.map((l) => ({
      model: l.model,
      since: new Date(l.since).toISOString(),
      elapsed_ms: Math.max(0, now - l.since)
    })),
    model_slots: { max: slots.max === 0 ? null : slots.max, used: slots.used, waiting: slots.waiting },
    // what clients wait for: every loaded model's sequences, the free ones, the queued requests
    sequences: { total: sum((s) => s.sequences), free: sum((s) => s.free), queued: sum((s) => s.queued) },
    ...Option.match(backend, {
      onNone: () => ({}),
      onSome: (b) => ({
        runtime: {
          backend: b.backend,
          gpu_setting: b.setting,
          reason: b.reason,
          build: b.build,
          openmp: b.openmp,
          threads: b.threads,
          lone_threads: b.loneThreads
        }
      })
    }),
    schedulers: schedulers.map((s) => ({
      model: s.model,
      sequences: s.sequences,
      free: s.free,
      queued: s.queued,
      decodes: s.decodes,
      decoded_tokens: s.decodedTokens,
      threads: s.threads,
      lone_threads: s.loneThreads
    }))
  }
}
