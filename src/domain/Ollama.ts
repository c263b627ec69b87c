import { Schema } from "effect"

/**
 * The wire types of Ollama's API (`/api/chat`, `/api/generate`, `/api/embed`, `/api/tags`, ...),
 * as ollama's docs/api.md and api/types.go describe them. Requests are decoded leniently, as
 * Ollama does: fields it would ignore are ignored. `null` means "left out" (some clients send it).
 */

const optional = <A, I, R>(schema: Schema.Schema<A, I, R>) => Schema.optionalWith(schema, { nullable: true })

const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

// --- requests --------------------------------------------------------------------------------

/** A duration string ("5m", "1h30m", "0", "-1") or a number of seconds; negative: forever. */
export const KeepAlive = Schema.Union(Schema.String, Schema.Number)

/** `"json"` for any JSON value, or a JSON schema object; `""` is no constraint. */
export const Format = Schema.Union(Schema.Literal("json", ""), JsonObject)

export const Think = Schema.Union(Schema.Boolean, Schema.Literal("low", "medium", "high"))

const Finite = Schema.Number.pipe(Schema.finite())
const Int = Schema.Number.pipe(Schema.int())

/** The options Shimmy uses; the others Ollama knows are accepted and ignored (see Decode.ts). */
export const Options = Schema.Struct({
  num_predict: optional(Int.pipe(Schema.greaterThanOrEqualTo(-2))),
  num_ctx: optional(Int.pipe(Schema.positive())),
  temperature: optional(Finite.pipe(Schema.between(0, 2))),
  top_p: optional(Finite.pipe(Schema.between(0, 1))),
  top_k: optional(Int.pipe(Schema.greaterThanOrEqualTo(0))),
  min_p: optional(Finite.pipe(Schema.between(0, 1))),
  seed: optional(Int),
  stop: optional(Schema.Union(Schema.String, Schema.Array(Schema.String))),
  repeat_penalty: optional(Finite.pipe(Schema.nonNegative())),
  presence_penalty: optional(Finite.pipe(Schema.between(-2, 2))),
  frequency_penalty: optional(Finite.pipe(Schema.between(-2, 2)))
})
export type Options = typeof Options.Type

/** Every option name Ollama's `api.Options` and `api.Runner` define (api/types.go). */
export const KNOWN_OPTIONS: ReadonlySet<string> = new Set([
  "num_keep",
  "seed",
  "num_predict",
  "top_k",
  "top_p",
  "min_p",
  "typical_p",
  "repeat_last_n",
  "temperature",
  "repeat_penalty",
  "presence_penalty",
  "frequency_penalty",
  "stop",
  "num_ctx",
  "num_batch",
  "num_gpu",
  "main_gpu",
  "use_mmap",
  "num_thread",
  "numa",
  "low_vram",
  "f16_kv",
  "logits_all",
  "vocab_only",
  "use_mlock",
  "embedding_only",
  "tfs_z",
  "mirostat",
  "mirostat_tau",
  "mirostat_eta",
  "penalize_newline"
])

export const ToolCall = Schema.Struct({
  id: optional(Schema.String),
  function: Schema.Struct({
    index: optional(Schema.Number),
    name: Schema.String.pipe(Schema.minLength(1)),
    // an object in Ollama; a JSON text is taken too
    arguments: optional(Schema.Union(JsonObject, Schema.String))
  })
})
export type ToolCall = typeof ToolCall.Type

export const Message = Schema.Struct({
  role: Schema.Literal("system", "user", "assistant", "tool"),
  content: optional(Schema.String),
  thinking: optional(Schema.String),
  images: optional(Schema.Array(Schema.String)),
  tool_calls: optional(Schema.Array(ToolCall)),
  tool_name: optional(Schema.String),
  tool_call_id: optional(Schema.String)
})
export type Message = typeof Message.Type

export const Tool = Schema.Struct({
  type: Schema.Literal("function"),
  function: Schema.Struct({
    name: Schema.String.pipe(Schema.minLength(1)),
    description: optional(Schema.String),
    parameters: optional(JsonObject)
  })
})

const Stream = Schema.optionalWith(Schema.Boolean, { nullable: true, default: () => true })
const Model = Schema.String.pipe(Schema.minLength(1, { message: () => "model is required" }))

export const ChatRequest = Schema.Struct({
  model: Model,
  messages: optional(Schema.Array(Message)),
  stream: Stream,
  format: optional(Format),
  options: optional(JsonObject),
  keep_alive: optional(KeepAlive),
  tools: optional(Schema.Array(Tool)),
  think: optional(Think)
})
export type ChatRequest = typeof ChatRequest.Type

export const GenerateRequest = Schema.Struct({
  model: Model,
  prompt: optional(Schema.String),
  suffix: optional(Schema.String),
  system: optional(Schema.String),
  template: optional(Schema.String),
  context: optional(Schema.Array(Schema.Number)),
  stream: Stream,
  raw: optional(Schema.Boolean),
  format: optional(Format),
  images: optional(Schema.Array(Schema.String)),
  options: optional(JsonObject),
  keep_alive: optional(KeepAlive),
  think: optional(Think)
})
export type GenerateRequest = typeof GenerateRequest.Type

export const EmbedRequest = Schema.Struct({
  model: Model,
  input: Schema.Union(Schema.String, Schema.Array(Schema.String)),
  truncate: Schema.optionalWith(Schema.Boolean, { nullable: true, default: () => true }),
  dimensions: optional(Int.pipe(Schema.positive())),
  options: optional(JsonObject),
  keep_alive: optional(KeepAlive)
})
export type EmbedRequest = typeof EmbedRequest.Type

/** The older `/api/embeddings`: one prompt, one vector. */
export const EmbeddingsRequest = Schema.Struct({
  model: Model,
  prompt: Schema.String,
  options: optional(JsonObject),
  keep_alive: optional(KeepAlive)
})
export type EmbeddingsRequest = typeof EmbeddingsRequest.Type

/** `model`, or the older `name`. */
export const ShowRequest = Schema.Struct({
  model: optional(Schema.String),
  name: optional(Schema.String),
  verbose: optional(Schema.Boolean)
})

/** `POST /api/pull`: `model` (or the older `name`), e.g. `hf.co/org/repo:Q4_K_M`. */
export const PullRequest = Schema.Struct({
  model: optional(Schema.String),
  name: optional(Schema.String),
  insecure: optional(Schema.Boolean),
  stream: optional(Schema.Boolean)
})

// --- responses -------------------------------------------------------------------------------

/** A line of `/api/pull`'s stream (`{status}`, with `digest`, `total`, `completed` while downloading). */
export const ProgressResponse = Schema.Struct({
  status: Schema.String,
  digest: optional(Schema.String),
  total: optional(Schema.Number),
  completed: optional(Schema.Number)
})
export type ProgressResponse = typeof ProgressResponse.Type

export const ModelDetails = Schema.Struct({
  parent_model: Schema.String,
  format: Schema.String,
  family: Schema.String,
  families: Schema.NullOr(Schema.Array(Schema.String)),
  parameter_size: Schema.String,
  quantization_level: Schema.String
})
export type ModelDetails = typeof ModelDetails.Type

export const ListedModel = Schema.Struct({
  name: Schema.String,
  model: Schema.String,
  modified_at: Schema.String,
  size: Schema.Number,
  digest: Schema.String,
  details: ModelDetails
})
export type ListedModel = typeof ListedModel.Type

export const ListResponse = Schema.Struct({ models: Schema.Array(ListedModel) })
export type ListResponse = typeof ListResponse.Type

export const RunningModel = Schema.Struct({
  name: Schema.String,
  model: Schema.String,
  size: Schema.Number,
  digest: Schema.String,
  details: ModelDetails,
  expires_at: Schema.String,
  size_vram: Schema.Number,
  context_length: Schema.Number
})
export type RunningModel = typeof RunningModel.Type

export const ProcessResponse = Schema.Struct({ models: Schema.Array(RunningModel) })
export type ProcessResponse = typeof ProcessResponse.Type

export const ShowResponse = Schema.Struct({
  license: Schema.optional(Schema.String),
  modelfile: Schema.String,
  parameters: Schema.String,
  template: Schema.String,
  details: ModelDetails,
  model_info: JsonObject,
  capabilities: Schema.Array(Schema.String),
  modified_at: Schema.String
})
export type ShowResponse = typeof ShowResponse.Type

export const OutToolCall = Schema.Struct({
  id: Schema.String,
  function: Schema.Struct({ index: Schema.Number, name: Schema.String, arguments: JsonObject })
})
export type OutToolCall = typeof OutToolCall.Type

export const OutMessage = Schema.Struct({
  role: Schema.Literal("assistant"),
  content: Schema.String,
  thinking: Schema.optional(Schema.String),
  tool_calls: Schema.optional(Schema.Array(OutToolCall))
})

/** What the last object of an answer adds: why it ended and what it took (durations in ns). */
export const Metrics = {
  done_reason: Schema.String,
  total_duration: Schema.Number,
  load_duration: Schema.Number,
  prompt_eval_count: Schema.Number,
  prompt_eval_duration: Schema.Number,
  eval_count: Schema.Number,
  eval_duration: Schema.Number
}

export const ChatChunk = Schema.Struct({
  model: Schema.String,
  created_at: Schema.String,
  message: OutMessage,
  done: Schema.Literal(false)
})
export type ChatChunk = typeof ChatChunk.Type

export const ChatResponse = Schema.Struct({
  model: Schema.String,
  created_at: Schema.String,
  message: OutMessage,
  done: Schema.Literal(true),
  ...Metrics
})
export type ChatResponse = typeof ChatResponse.Type

export const GenerateChunk = Schema.Struct({
  model: Schema.String,
  created_at: Schema.String,
  response: Schema.String,
  thinking: Schema.optional(Schema.String),
  done: Schema.Literal(false)
})
export type GenerateChunk = typeof GenerateChunk.Type

export const GenerateResponse = Schema.Struct({
  model: Schema.String,
  created_at: Schema.String,
  response: Schema.String,
  thinking: Schema.optional(Schema.String),
  done: Schema.Literal(true),
  ...Metrics
})
export type GenerateResponse = typeof GenerateResponse.Type

/** The answer to a request that only loads or unloads a model. */
export const LoadChat = Schema.Struct({
  model: Schema.String,
  created_at: Schema.String,
  message: OutMessage,
  done: Schema.Literal(true),
  done_reason: Schema.Literal("load", "unload")
})
export const LoadGenerate = Schema.Struct({
  model: Schema.String,
  created_at: Schema.String,
  response: Schema.Literal(""),
  done: Schema.Literal(true),
  done_reason: Schema.Literal("load", "unload")
})

export const EmbedResponse = Schema.Struct({
  model: Schema.String,
  embeddings: Schema.Array(Schema.Array(Schema.Number)),
  total_duration: Schema.Number,
  load_duration: Schema.Number,
  prompt_eval_count: Schema.Number
})
export type EmbedResponse = typeof EmbedResponse.Type

export const EmbeddingsResponse = Schema.Struct({ embedding: Schema.Array(Schema.Number) })

export const ErrorBody = Schema.Struct({ error: Schema.String })
export type ErrorBody = typeof ErrorBody.Type

/** A line of a streamed chat: chunks, then the last with `done: true` (or, for a load, that alone). */
export const ChatLine = Schema.Union(ChatChunk, ChatResponse, LoadChat)

/** A line of a streamed generate: chunks, then the last with `done: true` (or, for a load, that alone). */
export const GenerateLine = Schema.Union(GenerateChunk, GenerateResponse, LoadGenerate)

/** `GET /api/version`. */
export const VersionResponse = Schema.Struct({ version: Schema.String })
