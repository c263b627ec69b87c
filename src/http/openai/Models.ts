import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { ModelNotFound } from "../../domain/Errors.js"
import type { ModelInfo } from "../../domain/Model.js"
import { ModelRegistry } from "../../services/ModelRegistry.js"

/** `GET /v1/models` and `GET /v1/models/{id}`: the usable discovered models. */

// a GGUF has no creation date; 0 says "unknown" in the field's type
const modelObject = (m: ModelInfo) => ({ id: m.name, object: "model", created: 0, owned_by: "shimmy" })

export const listModels = Effect.gen(function*() {
  const registry = yield* ModelRegistry
  const models = (yield* registry.list).filter((m) => m.status !== "unusable")
  return HttpServerResponse.unsafeJson({ object: "list", data: models.map(modelObject) })
})

const PREFIX = "/v1/models/"

export const retrieveModel = Effect.gen(function*() {
  const registry = yield* ModelRegistry
  const request = yield* HttpServerRequest.HttpServerRequest
  // the rest of the path, so ids with '/' or ':' (Ollama's "name:tag") work
  const pathname = new URL(request.url, "http://localhost").pathname
  const id = decodeURIComponent(pathname.slice(PREFIX.length)).replace(/\/$/, "")
  const found = yield* registry.resolve(id)
  if (found.info.status === "unusable") {
    const available = (yield* registry.list).filter((m) => m.status !== "unusable").map((m) => m.name)
    return yield* Effect.fail(new ModelNotFound({ model: id, available }))
  }
  return HttpServerResponse.unsafeJson(modelObject(found.info))
})
