import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Stream } from "effect"
import { ModelPullItem, ModelPullRequest, ModelPullResponse, type PullEvent } from "../../domain/Pull.js"
import { Puller } from "../../services/Puller.js"
import { bodyAs } from "../Body.js"
import { described, type Route } from "../Dialect.js"
import { ndjsonPull } from "../PullStream.js"
import { requestUrl } from "../RequestUrl.js"
import { dialect } from "../seed/Render.js"

/**
 * Shimmy's own `POST /api/models/pull`: NDJSON, one JSON object per line with a `type`, the same
 * framing as Ollama's pull, so `curl -N` shows it line by line and a `fetch` reader splits it on
 * newlines (SSE would add nothing here: an EventSource cannot POST). `"stream": false` answers
 * once, when the model is there. Errors are the seed API's `{error:{code,message,details}}`;
 * during the stream, that body with `type: "error"`.
 */

const frames = (event: PullEvent): ReadonlyArray<ModelPullItem> => {
  switch (event._tag) {
    case "Resolved":
      return [{
        type: "resolved",
        source: event.source,
        ...(event.revision !== undefined ? { revision: event.revision } : {}),
        ...(event.commit !== undefined ? { commit: event.commit } : {}),
        files: event.files
      }]
    case "Progress":
      return [{
        type: "progress",
        file: event.file,
        ...(event.digest !== undefined ? { digest: event.digest } : {}),
        completed: event.completed,
        ...(event.total !== undefined ? { total: event.total } : {})
      }]
    case "Verifying":
      return [{ type: "verifying", file: event.file, ...(event.digest !== undefined ? { digest: event.digest } : {}) }]
    case "Done":
      return [{
        type: "done",
        model: event.model,
        path: event.path,
        files: event.files,
        ...(event.alias !== undefined ? { alias: event.alias } : {}),
        ...(event.shadowedBy !== undefined ? { shadowed_by: event.shadowedBy } : {})
      }]
  }
}

const pull = Effect.gen(function*() {
  const body = yield* bodyAs(ModelPullRequest)
  const puller = yield* Puller
  const events = puller.pull(body.model, { revision: body.revision })
  if (body.stream === false) {
    const done = yield* Stream.runLast(Stream.filter(events, (e) => e._tag === "Done"))
    const last = done._tag === "Some" && done.value._tag === "Done" ? done.value : undefined
    return HttpServerResponse.unsafeJson(
      last !== undefined
        ? {
          model: last.model,
          path: last.path,
          files: last.files,
          ...(last.alias !== undefined ? { alias: last.alias } : {}),
          ...(last.shadowedBy !== undefined ? { shadowed_by: last.shadowedBy } : {})
        }
        : {}
    )
  }
  const request = yield* HttpServerRequest.HttpServerRequest
  return yield* ndjsonPull(events, frames, dialect, { method: request.method, path: requestUrl(request).pathname }, {
    failure: (error) => ({ type: "error", ...(error as object) })
  })
})

export const routes: ReadonlyArray<Route> = [
  {
    method: "POST",
    path: "/api/models/pull",
    dialect,
    handler: pull,
    api: {
      body: described("ModelPullRequest", ModelPullRequest),
      json: described("ModelPullResponse", ModelPullResponse),
      stream: { ...described("ModelPullItem", ModelPullItem), framing: "ndjson" }
    },
    summary: "Download a GGUF model from the Hugging Face hub or a URL (NDJSON progress, or JSON)"
  }
]
