import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Stream } from "effect"
import { GenerationFailed, InvalidRequest } from "../../domain/Errors.js"
import { ResponseObject, StreamEvent } from "../../domain/ResponseObject.js"
import { LlamaEngine } from "../../services/LlamaEngine.js"
import { described, type Handler, type Route } from "../Dialect.js"
import { NotStored, RouteNotFound } from "../Failures.js"
import { requestUrl } from "../RequestUrl.js"
import * as Sse from "../Sse.js"
import { generationOf, paramOf, responseBody, responseRequest } from "./Decode.js"
import { outputBuilder } from "./Output.js"
import * as Render from "./Render.js"

/** OpenAI's Responses API, stateless: `POST /v1/responses`, and clear answers where it would look one up. */

const whereOf = Effect.map(HttpServerRequest.HttpServerRequest, (request) => ({
  method: request.method,
  path: requestUrl(request).pathname
}))

const create = Effect.gen(function*() {
  const engine = yield* LlamaEngine
  const request = yield* responseRequest
  const events = engine.generate({ ...(yield* generationOf(request)), streamed: request.stream === true })
  const builder = outputBuilder(Render.envelopeOf(request))
  if (!request.stream) {
    yield* Stream.runForEach(events, (event) => Effect.sync(() => builder.frames(event)))
    const final = builder.final()
    if (final === undefined) {
      return yield* Effect.fail(
        new GenerationFailed({ model: request.model, reason: "the generation ended without a finish reason" })
      )
    }
    return HttpServerResponse.unsafeJson(final)
  }
  // created and in_progress come once the first event is there: an error before it still gets its status
  return yield* Sse.answer(events, builder.frames, Render.dialect, yield* whereOf, {
    framing: Sse.namedEvents,
    opening: builder.opening(),
    failure: builder.failure
  })
}).pipe(
  // the engine names chat's fields; a Responses client hears its own
  Effect.catchTag("InvalidRequest", (e) =>
    Effect.fail(
      e.param === undefined ? e : new InvalidRequest({ param: paramOf(e.param), reason: e.reason })
    ))
)

const notStored: Handler = Effect.flatMap(whereOf, (where) => Effect.fail(new NotStored(where)))
const notImplemented: Handler = Effect.flatMap(whereOf, (where) => Effect.fail(new RouteNotFound(where)))

const dialect = Render.dialect

const refusal = (status: number) => ({ refuses: status })

export const routes: ReadonlyArray<Route> = [
  {
    method: "POST",
    path: "/v1/responses",
    dialect,
    handler: create,
    promptParam: "input",
    summary: "OpenAI Responses (JSON, or SSE events), stateless, with tools, reasoning and text formats",
    api: {
      body: responseBody,
      json: described("ResponseObject", ResponseObject),
      stream: { ...described("StreamEvent", StreamEvent), framing: "namedEvents" }
    }
  },
  // the SDK's other calls: each would look up a stored response, and Shimmy keeps none
  {
    method: "GET",
    path: "/v1/responses/:id",
    dialect,
    handler: notStored,
    summary: "No stored responses (404)",
    api: refusal(404)
  },
  {
    method: "DELETE",
    path: "/v1/responses/:id",
    dialect,
    handler: notStored,
    summary: "No stored responses (404)",
    api: refusal(404)
  },
  {
    method: "GET",
    path: "/v1/responses/:id/input_items",
    dialect,
    handler: notStored,
    summary: "No stored responses (404)",
    api: refusal(404)
  },
  {
    method: "POST",
    path: "/v1/responses/:id/cancel",
    dialect,
    handler: notStored,
    summary: "No background responses (404)",
    api: refusal(404)
  },
  {
    method: "POST",
    path: "/v1/responses/compact",
    dialect,
    handler: notImplemented,
    summary: "Not implemented (404)",
    api: refusal(404)
  },
  {
    method: "POST",
    path: "/v1/responses/input_tokens",
    dialect,
    handler: notImplemented,
    summary: "Not implemented (404)",
    api: refusal(404)
  }
]
