import { Schema } from "effect"
import { type Sampling, samplingFrom, Usage } from "./Generation.js"

const Probability = Schema.Number.pipe(Schema.finite(), Schema.between(0, 1))
const Penalty = Schema.Number.pipe(Schema.finite(), Schema.between(-2, 2))

/** Stop strings: one string or up to 16. */
export const StopStrings = Schema.Union(
  Schema.String.pipe(Schema.minLength(1)),
  Schema.Array(Schema.String.pipe(Schema.minLength(1))).pipe(Schema.maxItems(16))
)

export const MaxTokens = Schema.Int.pipe(Schema.between(1, 131072))
export const Temperature = Schema.Number.pipe(Schema.finite(), Schema.between(0, 2))
export const TopK = Schema.Int.pipe(Schema.between(0, 100000))
export const Seed = Schema.Int.pipe(Schema.between(0, 4294967295))
export const RepeatPenalty = Schema.Number.pipe(Schema.finite(), Schema.between(0, 10))

/** Body of `POST /api/generate` (and the WebSocket request): the seed API plus sampling knobs. */
export class GenerateRequest extends Schema.Class<GenerateRequest>("GenerateRequest")({
  model: Schema.String.pipe(Schema.minLength(1)),
  prompt: Schema.String,
  max_tokens: Schema.optionalWith(MaxTokens, { default: () => 100 }),
  temperature: Schema.optionalWith(Temperature, { default: () => 0.7 }),
  stream: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  top_p: Schema.optional(Probability),
  top_k: Schema.optional(TopK),
  min_p: Schema.optional(Probability),
  seed: Schema.optional(Seed),
  stop: Schema.optional(StopStrings),
  repeat_penalty: Schema.optional(RepeatPenalty),
  presence_penalty: Schema.optional(Penalty),
  frequency_penalty: Schema.optional(Penalty),
  /**
   * how long the model stays loaded after this request, as Ollama takes it: "5m", seconds,
   * negative for good, 0 to unload it when the request ends; left out: SHIMMY_KEEP_ALIVE
   */
  keep_alive: Schema.optional(Schema.Union(Schema.String, Schema.Number))
}) {}

/** The sampling a seed API request asks for (HTTP, WebSocket and the CLI alike). */
export const samplingOf = (request: GenerateRequest): Sampling =>
  samplingFrom(request, request.max_tokens, request.temperature)

/** The seed API's wire types: `spec/API.md`, plus the fields Shimmy adds. */

export class Choice extends Schema.Class<Choice>("Choice")({
  text: Schema.String,
  index: Schema.Number,
  finish_reason: Schema.Literal("stop", "length")
}) {}

/** Body of a non-streaming `POST /api/generate` answer. */
export class GenerateResponse extends Schema.Class<GenerateResponse>("GenerateResponse")({
  choices: Schema.Array(Choice),
  usage: Usage
}) {}

/** One `data:` event of a streamed `/api/generate`; the last carries `finish_reason` and `usage`. */
export const GenerateChunk = Schema.Struct({
  choices: Schema.Tuple(Schema.Struct({
    text: Schema.String,
    index: Schema.Number,
    finish_reason: Schema.optional(Schema.Literal("stop", "length"))
  })),
  usage: Schema.optional(Usage)
})
export type GenerateChunk = typeof GenerateChunk.Type

/** The error body of every seed API failure, and of a stream or socket that fails once started. */
export const ErrorBody = Schema.Struct({
  error: Schema.Struct({ code: Schema.String, message: Schema.String, details: Schema.String })
})
export type ErrorBody = typeof ErrorBody.Type

/** `/ws/generate` frames: tokens, then one `done` (or one `error`, an `ErrorBody`). */
export const TokenFrame = Schema.Struct({ token: Schema.String })
export const DoneFrame = Schema.Struct({
  done: Schema.Literal(true),
  finish_reason: Schema.Literal("stop", "length"),
  usage: Usage
})
export const SocketFrame = Schema.Union(TokenFrame, DoneFrame, ErrorBody)
export type SocketFrame = typeof SocketFrame.Type

const Nullable = <A, I>(schema: Schema.Schema<A, I>) => Schema.NullOr(schema)

/** `GET /api/models`. */
export const ModelEntry = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  description: Schema.String,
  size_bytes: Schema.Number,
  size: Schema.String,
  architecture: Nullable(Schema.String),
  parameters: Nullable(Schema.Number),
  quantization: Nullable(Schema.String),
  context_length: Nullable(Schema.Number),
  status: Schema.Literal("ok", "guarded", "unusable"),
  guarded: Schema.Boolean,
  reason: Schema.optional(Schema.String),
  source: Schema.String,
  loaded: Schema.Boolean,
  /** whether it is being loaded right now */
  loading: Schema.Boolean
})
export const ModelsResponse = Schema.Struct({ models: Schema.Array(ModelEntry) })
export type ModelsResponse = typeof ModelsResponse.Type

const Sequences = Schema.Struct({ total: Schema.Number, free: Schema.Number, queued: Schema.Number })

/** `GET /api/health` for a caller without the API key the server requires. */
export const PublicHealth = Schema.Struct({ status: Schema.Literal("healthy") })
export type PublicHealth = typeof PublicHealth.Type

/** `GET /api/health`. */
export const HealthResponse = Schema.Struct({
  status: Schema.Literal("healthy"),
  models_loaded: Schema.Number,
  memory_usage: Schema.String,
  memory_bytes: Schema.Number,
  memory: Schema.Struct({
    rss: Schema.Number,
    heap_used: Schema.Number,
    heap_total: Schema.Number,
    external: Schema.Number,
    array_buffers: Schema.Number
  }),
  uptime_seconds: Schema.Number,
  version: Schema.String,
  models_available: Schema.Number,
  loaded_models: Schema.Array(Schema.String),
  /** models being loaded now, and since when (ISO 8601) */
  loading: Schema.Array(Schema.Struct({ model: Schema.String, since: Schema.String, elapsed_ms: Schema.Number })),
  /** SHIMMY_MAX_LOADED_MODELS: the limit (null: none), slots held (loading models too), requests waiting for one */
  model_slots: Schema.Struct({ max: Schema.NullOr(Schema.Number), used: Schema.Number, waiting: Schema.Number }),
  sequences: Sequences,
  /** what llama.cpp runs on, once it has loaded */
  runtime: Schema.optional(Schema.Struct({
    backend: Schema.Literal("cpu", "cuda", "vulkan", "metal"),
    gpu_setting: Schema.Literal("auto", "cuda", "vulkan", "metal", "off"),
    reason: Schema.String,
    build: Schema.Literal("prebuilt", "local"),
    openmp: Schema.Boolean,
    /** threads of a decode that carries several tokens (a batch of sequences, a prompt) */
    threads: Schema.Number,
    /** threads of a decode of one token: a sequence generating alone */
    lone_threads: Schema.Number
  })),
  schedulers: Schema.Array(Schema.extend(
    Schema.Struct({ model: Schema.String }),
    Schema.Struct({
      sequences: Schema.Number,
      free: Schema.Number,
      queued: Schema.Number,
      /** decodes the model's context ran and the tokens they carried: how well steps batch */
      decodes: Schema.Number,
      decoded_tokens: Schema.Number,
      /** threads of a decode of several tokens, and of one token now (chosen by measuring both) */
      threads: Schema.Number,
      lone_threads: Schema.Number
    })
  ))
})
export type HealthResponse = typeof HealthResponse.Type
