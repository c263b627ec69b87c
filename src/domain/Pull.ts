import { Schema } from "effect"

/**
 * What a pull reports while it runs, in order: the files it resolved, their bytes as they arrive,
 * the check of each against the hub's sha256, and where the model is and the name to use it by.
 * The CLI draws these as a progress bar; each HTTP dialect renders them in its own shape.
 */
export type PullEvent =
  | {
    readonly _tag: "Resolved"
    /** `org/repo` or the URL */
    readonly source: string
    readonly revision?: string
    readonly commit?: string
    readonly files: ReadonlyArray<{ readonly path: string; readonly size?: number }>
  }
  | {
    readonly _tag: "Progress"
    readonly file: string
    /** the sha256 the file is stored under, when the hub publishes it */
    readonly digest?: string
    readonly completed: number
    readonly total?: number
  }
  | { readonly _tag: "Verifying"; readonly file: string; readonly digest?: string }
  | {
    readonly _tag: "Done"
    /** the name discovery lists the model under */
    readonly model: string
    /** its (first) file */
    readonly path: string
    readonly files: ReadonlyArray<string>
    /** the file another place holds under the same name, which wins it (see "Where models are found") */
    readonly shadowedBy?: string
    /** a name that always means this file: `hf.co/org/repo/file.gguf` (hub pulls only) */
    readonly alias?: string
  }

/** `POST /api/models/pull`, Shimmy's own: a reference (see `shimmy pull --help`), a revision, streamed or not. */
export const ModelPullRequest = Schema.Struct({
  model: Schema.String,
  revision: Schema.optional(Schema.String),
  stream: Schema.optional(Schema.Boolean)
})
export type ModelPullRequest = typeof ModelPullRequest.Type

/** The NDJSON lines of `POST /api/models/pull`, each with its `type`. */
export const ModelPullItem = Schema.Union(
  Schema.Struct({
    type: Schema.Literal("resolved"),
    source: Schema.String,
    revision: Schema.optional(Schema.String),
    commit: Schema.optional(Schema.String),
    files: Schema.Array(Schema.Struct({ path: Schema.String, size: Schema.optional(Schema.Number) }))
  }),
  Schema.Struct({
    type: Schema.Literal("progress"),
    file: Schema.String,
    digest: Schema.optional(Schema.String),
    completed: Schema.Number,
    total: Schema.optional(Schema.Number)
  }),
  Schema.Struct({ type: Schema.Literal("verifying"), file: Schema.String, digest: Schema.optional(Schema.String) }),
  Schema.Struct({
    type: Schema.Literal("done"),
    model: Schema.String,
    path: Schema.String,
    files: Schema.Array(Schema.String),
    alias: Schema.optional(Schema.String),
    shadowed_by: Schema.optional(Schema.String)
  }),
  Schema.Struct({
    type: Schema.Literal("error"),
    error: Schema.Struct({ code: Schema.String, message: Schema.String, details: Schema.String })
  })
)
export type ModelPullItem = typeof ModelPullItem.Type

/** `POST /api/models/pull` with `"stream": false`: where the model is and its name. */
export const ModelPullResponse = Schema.Struct({
  model: Schema.String,
  path: Schema.String,
  files: Schema.Array(Schema.String),
  /** `hf.co/org/repo/file.gguf`: a name that always means this file */
  alias: Schema.optional(Schema.String),
  /** the file that holds `model`'s name, found first */
  shadowed_by: Schema.optional(Schema.String)
})
