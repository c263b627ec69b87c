import { Schema } from "effect"

/**
 * The Hugging Face hub's answer to `GET /api/models/<org>/<repo>/revision/<rev>?blobs=true`: the
 * commit a revision names and the files of the repository at it, with their sizes and, for files
 * in LFS (every GGUF), the sha256 the hub publishes.
 */
export const HubSibling = Schema.Struct({
  rfilename: Schema.String,
  size: Schema.optional(Schema.Number),
  blobId: Schema.optional(Schema.String),
  lfs: Schema.optional(Schema.Struct({
    sha256: Schema.optional(Schema.String),
    oid: Schema.optional(Schema.String),
    size: Schema.optional(Schema.Number)
  }))
})
export type HubSibling = typeof HubSibling.Type

export const HubModelInfo = Schema.Struct({
  id: Schema.optional(Schema.String),
  sha: Schema.String,
  siblings: Schema.Array(HubSibling)
})
export type HubModelInfo = typeof HubModelInfo.Type

/** The hub's error body (`{"error": "..."}`). */
export const HubError = Schema.Struct({ error: Schema.String })
