import { Schema } from "effect"

/** Where a model was found. */
export const ModelSource = Schema.Literal("models-dir", "path", "huggingface", "ollama", "lmstudio")
export type ModelSource = typeof ModelSource.Type

/**
 * `ok`: usable as is. `guarded`: its tokenizer would abort llama.cpp on some characters, so input
 * is checked against the vocabulary first. `unusable`: cannot be loaded; `reason` says why.
 */
export const ModelStatus = Schema.Literal("ok", "guarded", "unusable")
export type ModelStatus = typeof ModelStatus.Type

export class ModelInfo extends Schema.Class<ModelInfo>("ModelInfo")({
  name: Schema.String,
  path: Schema.String,
  /** every file of a split model, first part first; one entry otherwise */
  files: Schema.Array(Schema.String),
  source: ModelSource,
  sizeBytes: Schema.Number,
  status: ModelStatus,
  reason: Schema.optional(Schema.String),
  architecture: Schema.optional(Schema.String),
  displayName: Schema.optional(Schema.String),
  parameters: Schema.optional(Schema.Number),
  quantization: Schema.optional(Schema.String),
  contextLength: Schema.optional(Schema.Number),
  chatTemplate: Schema.Boolean
}) {}
