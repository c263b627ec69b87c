import { Schema } from "effect"

/** The requested model is not among the discovered ones. */
export class ModelNotFound extends Schema.TaggedError<ModelNotFound>()("ModelNotFound", {
  model: Schema.String,
  available: Schema.Array(Schema.String)
}) {
  override get message() {
    return `Model '${this.model}' is not available; available models: ${this.available.join(", ") || "(none)"}`
  }
}

/** A request is well-formed JSON but a field is missing, of the wrong type or out of range. */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  reason: Schema.String,
  param: Schema.optional(Schema.String)
}) {
  override get message() {
    return this.reason
  }
}

/** The prompt does not fit in the context a sequence has. */
export class ContextLengthExceeded extends Schema.TaggedError<ContextLengthExceeded>()("ContextLengthExceeded", {
  model: Schema.String,
  promptTokens: Schema.Number,
  contextSize: Schema.Number
}) {
  override get message() {
    return `The prompt is ${this.promptTokens} tokens, which does not fit in the context of ${this.contextSize} tokens (at least one token must be left to generate)`
  }
}

/** The model file exists but cannot be loaded (corrupt, truncated, unsupported, out of memory). */
export class ModelLoadFailed extends Schema.TaggedError<ModelLoadFailed>()("ModelLoadFailed", {
  model: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `Model '${this.model}' could not be loaded: ${this.reason}`
  }
}

/** Generation started but the engine failed. */
export class GenerationFailed extends Schema.TaggedError<GenerationFailed>()("GenerationFailed", {
  model: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `Generation with '${this.model}' failed: ${this.reason}`
  }
}

/**
 * Every sequence is busy and the wait queue is full; or, with `slots`, every model slot
 * (SHIMMY_MAX_LOADED_MODELS) is taken by a model in use and the queue for a slot is full.
 */
export class ServerBusy extends Schema.TaggedError<ServerBusy>()("ServerBusy", {
  model: Schema.String,
  queued: Schema.Number,
  retryAfterSeconds: Schema.Number,
  slots: Schema.optional(Schema.Number)
}) {
  override get message() {
    return this.slots !== undefined
      ? `'${this.model}' cannot be loaded now: all ${this.slots} model slots (SHIMMY_MAX_LOADED_MODELS) are taken by models in use and ${this.queued} requests are already waiting for one`
      : `All sequences of '${this.model}' are busy and ${this.queued} requests are already waiting`
  }
}

/** The llama.cpp runtime could not be started. */
export class RuntimeUnavailable extends Schema.TaggedError<RuntimeUnavailable>()("RuntimeUnavailable", {
  reason: Schema.String
}) {
  override get message() {
    return `The llama.cpp runtime is unavailable: ${this.reason}`
  }
}

/**
 * Why a model could not be pulled from the Hugging Face hub or a URL: `kind` says what went wrong
 * (the HTTP layer maps it to a status), `reason` says what to do about it.
 */
export class PullFailed extends Schema.TaggedError<PullFailed>()("PullFailed", {
  kind: Schema.Literal(
    "bad_reference",
    "unauthorized",
    "forbidden",
    "not_found",
    "no_gguf",
    "unknown_tag",
    "integrity",
    "disk_full",
    "storage",
    "network",
    "upstream"
  ),
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}

export type EngineError =
  | ModelNotFound
  | InvalidRequest
  | ContextLengthExceeded
  | ModelLoadFailed
  | GenerationFailed
  | ServerBusy
  | RuntimeUnavailable
  | PullFailed
