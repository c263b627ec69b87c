import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Stream } from "effect"
import { InvalidRequest } from "../../domain/Errors.js"
import { type ProgressResponse, PullRequest } from "../../domain/Ollama.js"
import type { PullEvent } from "../../domain/Pull.js"
import { Puller } from "../../services/Puller.js"
import { bodyAs } from "../Body.js"
import { ndjsonPull } from "../PullStream.js"
import { requestUrl } from "../RequestUrl.js"
import { dialect } from "./Render.js"

/**
 * Ollama's `POST /api/pull` over the Hugging Face hub: `hf.co/org/repo:Q4_K_M` (and every other
 * reference `shimmy pull` takes) streamed in Ollama's lines, as its server writes them: "pulling
 * manifest", "pulling <digest prefix>" with `digest`, `total`, `completed` per file, "verifying
 * sha256 digest", "writing manifest", "success". A name of Ollama's own registry (`llama3.2`) is
 * refused: Shimmy does not pull from it.
 */

const digestOf = (event: { readonly digest?: string; readonly file: string }) =>
  event.digest !== undefined ? `sha256:${event.digest}` : event.file

const frames = (event: PullEvent): ReadonlyArray<ProgressResponse> => {
  switch (event._tag) {
    case "Resolved":
      return []
    case "Progress":
      return [{
        status: `pulling ${event.digest !== undefined ? event.digest.slice(0, 12) : event.file}`,
        digest: digestOf(event),
        ...(event.total !== undefined ? { total: event.total } : {}),
        completed: event.completed
      }]
    case "Verifying":
      return [{ status: "verifying sha256 digest" }]
    case "Done":
      return [{ status: "writing manifest" }, { status: "success" }]
  }
}

export const pull = Effect.gen(function*() {
  const body = yield* bodyAs(PullRequest)
  const model = body.model ?? body.name
  if (model === undefined || model.trim().length === 0) {
    return yield* Effect.fail(new InvalidRequest({ param: "model", reason: "model is required" }))
  }
  const puller = yield* Puller
  const events = puller.pull(model)
  if (body.stream === false) {
    yield* Stream.runDrain(events)
    return HttpServerResponse.unsafeJson({ status: "success" } satisfies ProgressResponse)
  }
  const request = yield* HttpServerRequest.HttpServerRequest
  return yield* ndjsonPull(events, frames, dialect, { method: request.method, path: requestUrl(request).pathname }, {
    opening: [{ status: "pulling manifest" } satisfies ProgressResponse]
  })
})
