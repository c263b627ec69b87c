import { Schema } from "effect"

/**
 * Shimmy's own model lifecycle endpoints, beside `GET /api/models`: what is in memory
 * (`GET /api/models/loaded`), load (`POST /api/models/load`) and unload (`POST /api/models/unload`),
 * and llama-server's router-mode names for the last two (`POST /models/load`, `/models/unload`).
 * Errors are the seed API's `{"error":{"code","message","details"}}`.
 */

/**
 * A keep-alive as Ollama takes one: a duration string ("5m", "1h30m"), seconds (a number, or a
 * number as text); negative keeps the model loaded for good, 0 unloads it once its use ends.
 */
export const KeepAlive = Schema.Union(Schema.String, Schema.Number)

const ModelName = Schema.String.pipe(Schema.minLength(1))

/** Body of `POST /api/models/load`. */
export const LoadRequest = Schema.Struct({
  model: ModelName,
  /** how long it stays loaded once idle; left out: SHIMMY_KEEP_ALIVE */
  keep_alive: Schema.optional(KeepAlive)
})
export type LoadRequest = typeof LoadRequest.Type

/** Body of `POST /api/models/unload`, and of llama-server's `/models/load` and `/models/unload`. */
export const ModelRequest = Schema.Struct({ model: ModelName })
export type ModelRequest = typeof ModelRequest.Type

const Timestamp = Schema.String

/** `POST /api/models/load`: answered once the model is in memory. */
export const LoadResponse = Schema.Struct({
  id: Schema.String,
  status: Schema.Literal("loaded"),
  /** whether it was in memory already (then `load_ms` is that earlier load's) */
  already_loaded: Schema.Boolean,
  load_ms: Schema.Number,
  context_size: Schema.Number,
  /** when it leaves memory if unused; null: never (or while in use) */
  expires_at: Schema.NullOr(Timestamp)
})
export type LoadResponse = typeof LoadResponse.Type

/**
 * `POST /api/models/unload`: `unloaded`, out of memory now; `unloading`, in use, it leaves when
 * its last use ends (a running generation is never cut short); `not_loaded`, it was not in memory.
 */
export const UnloadResponse = Schema.Struct({
  id: Schema.String,
  status: Schema.Literal("unloaded", "unloading", "not_loaded")
})
export type UnloadResponse = typeof UnloadResponse.Type

/** One model in memory. */
export const LoadedEntry = Schema.Struct({
  id: Schema.String,
  /** its weights in memory, and of those on the GPU */
  size_bytes: Schema.Number,
  size: Schema.String,
  vram_bytes: Schema.Number,
  /** tokens per sequence */
  context_size: Schema.Number,
  load_ms: Schema.Number,
  loaded_at: Timestamp,
  /** when a request last began or ended using it */
  last_used: Schema.NullOr(Timestamp),
  in_use: Schema.Boolean,
  /** when it leaves memory if it stays unused; null: never, or not while in use */
  expires_at: Schema.NullOr(Timestamp),
  sequences: Schema.Struct({
    total: Schema.Number,
    busy: Schema.Number,
    queued: Schema.Number
  })
})

/** A model being loaded now. */
export const LoadingEntry = Schema.Struct({
  id: Schema.String,
  since: Timestamp,
  elapsed_ms: Schema.Number
})

/** SHIMMY_MAX_LOADED_MODELS: the limit (null: none), slots held (loading ones too), requests waiting. */
export const Slots = Schema.Struct({
  max: Schema.NullOr(Schema.Number),
  used: Schema.Number,
  waiting: Schema.Number
})

/** `GET /api/models/loaded`. */
export const LoadedResponse = Schema.Struct({
  models: Schema.Array(LoadedEntry),
  loading: Schema.Array(LoadingEntry),
  slots: Slots
})
export type LoadedResponse = typeof LoadedResponse.Type

/** llama-server's router-mode answer to `/models/load` and `/models/unload`. */
export const RouterResponse = Schema.Struct({ success: Schema.Literal(true) })
export type RouterResponse = typeof RouterResponse.Type
