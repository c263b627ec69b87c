import { HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { EmbeddingRequest } from "../../domain/OpenAi.js"
import { Embeddings } from "../../services/Embeddings.js"
import { checked } from "./Request.js"

/** `POST /v1/embeddings`: one vector per input, as floats or as base64 of little-endian float32. */

const base64 = (vector: ReadonlyArray<number>): string => {
  const floats = Float32Array.from(vector)
  return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength).toString("base64")
}

export const embeddings = Effect.gen(function*() {
  const service = yield* Embeddings
  const request = yield* checked(EmbeddingRequest)
  const inputs = typeof request.input === "string" ? [request.input] : request.input
  const { promptTokens, vectors } = yield* service.embed(request.model, inputs)
  return HttpServerResponse.unsafeJson({
    object: "list",
    data: vectors.map((vector, index) => ({
      object: "embedding",
      index,
      embedding: request.encoding_format === "base64" ? base64(vector) : vector
    })),
    model: request.model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens }
  })
})
