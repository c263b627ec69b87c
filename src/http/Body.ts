import { HttpServerRequest } from "@effect/platform"
import { Effect, ParseResult, Schema } from "effect"
import { InvalidRequest } from "../domain/Errors.js"
import { GenerateRequest, samplingOf } from "../domain/Generate.js"
import type { GenerationRequest } from "../services/LlamaEngine.js"
import type { HttpFailure } from "./Errors.js"

/** Request bodies: text -> JSON -> schema, each step failing with what the client got wrong. */

type MalformedBody = Extract<HttpFailure, { _tag: "MalformedBody" }>

const malformed = (reason: string): MalformedBody => ({ _tag: "MalformedBody", reason })

/** Parses JSON text; a syntax error is `MalformedBody`, never a defect. */
export const parseJson = (text: string): Effect.Effect<unknown, MalformedBody> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (cause) =>
      malformed(text.trim().length === 0
        ? "the request body is empty; send a JSON object"
        : `the request body is not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}`)
  })

/** The first schema issue as `InvalidRequest`, naming the field (`max_tokens`, `stop.2`). */
export const invalidRequest = (error: ParseResult.ParseError): InvalidRequest => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined) return new InvalidRequest({ reason: error.message })
  const param = issue.path.map(String).join(".")
  if (param.length === 0) return new InvalidRequest({ reason: `the request body must be a JSON object: ${issue.message}` })
  return new InvalidRequest({ param, reason: `'${param}': ${issue.message}` })
}

/** Decodes with `schema`, reporting the first wrong field. */
export const decode = <A, I>(schema: Schema.Schema<A, I>) => (json: unknown): Effect.Effect<A, InvalidRequest> =>
  Schema.decodeUnknown(schema, { errors: "first" })(json).pipe(Effect.mapError(invalidRequest))

export const decodeGenerate = decode(GenerateRequest)

/** The current request's body as JSON. */
export const jsonBody: Effect.Effect<unknown, MalformedBody, HttpServerRequest.HttpServerRequest> = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const text = yield* request.text.pipe(
    Effect.mapError((e) => malformed(`the request body could not be read: ${e.description ?? e.reason}`))
  )
  return yield* parseJson(text)
})

/** What the engine is asked for a seed API request (HTTP and WebSocket alike). */
export const generationOf = (request: GenerateRequest): GenerationRequest => ({
  model: request.model,
  prompt: request.prompt,
  sampling: samplingOf(request)
})
