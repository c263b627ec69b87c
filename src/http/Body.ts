import { HttpIncomingMessage, HttpServerRequest } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Effect, Option, ParseResult, Schema } from "effect"
import type * as http from "node:http"
import { InvalidRequest } from "../domain/Errors.js"
import { BodyTooLarge, MalformedBody } from "./Failures.js"

/** Request bodies: text -> JSON -> schema, each step failing with what the client got wrong. */

const malformed = (reason: string) => new MalformedBody({ reason })

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
  // OpenAI's words for a field no one defines
  if (issue._tag === "Unexpected") return new InvalidRequest({ param, reason: `unrecognized request argument supplied: ${param}` })
  // messages that already name their field (a refused field says why)
  if (issue.message.startsWith(`'${param}'`)) return new InvalidRequest({ param, reason: issue.message })
  return new InvalidRequest({ param, reason: `'${param}': ${issue.message}` })
}

/** Decodes with `schema`, reporting the first wrong field. */
export const decode = <A, I>(schema: Schema.Schema<A, I>) => (json: unknown): Effect.Effect<A, InvalidRequest> =>
  Schema.decodeUnknown(schema, { errors: "first" })(json).pipe(Effect.mapError(invalidRequest))

const utf8 = new TextDecoder("utf-8")

/**
 * Reads a Node request body, refusing it as soon as it passes `limit`. The rest of an oversized
 * body is then discarded as it arrives (never kept), as body-parser does: the connection stays
 * in step, and the client reads the 413 instead of a reset that could swallow it.
 */
const readLimited = (incoming: http.IncomingMessage, limit: number | undefined) =>
  Effect.async<Buffer, MalformedBody | BodyTooLarge>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const detach = () => {
      incoming.off("data", onData)
      incoming.off("end", onEnd)
      incoming.off("error", onError)
    }
    function onData(chunk: Buffer) {
      size += chunk.byteLength
      if (limit !== undefined && size > limit) {
        detach()
        chunks.length = 0
        incoming.resume()
        resume(Effect.fail(new BodyTooLarge({ limit })))
      } else chunks.push(chunk)
    }
    function onEnd() {
      detach()
      resume(Effect.succeed(Buffer.concat(chunks)))
    }
    function onError(error: Error) {
      detach()
      resume(Effect.fail(malformed(`the request body could not be read: ${error.message}`)))
    }
    if (incoming.readableEnded) return resume(Effect.fail(malformed("the request body was already read")))
    incoming.on("data", onData)
    incoming.once("end", onEnd)
    incoming.once("error", onError)
    return Effect.sync(detach)
  })

/**
 * The body as text, read chunk by chunk against the limit in `HttpIncomingMessage.MaxBodySize`
 * (set by Guard.ts), so a chunked body without a declared length is never buffered beyond it.
 */
export const bodyText: Effect.Effect<string, MalformedBody | BodyTooLarge, HttpServerRequest.HttpServerRequest> = Effect
  .gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const limit = Option.getOrUndefined(Option.map(yield* HttpIncomingMessage.MaxBodySize, Number))
    const bytes = yield* readLimited(NodeHttpServerRequest.toIncomingMessage(request), limit)
    return utf8.decode(bytes)
  })

/** The current request's body as JSON. */
export const jsonBody: Effect.Effect<unknown, MalformedBody | BodyTooLarge, HttpServerRequest.HttpServerRequest> = Effect
  .flatMap(bodyText, parseJson)

/** The current request's body, decoded with `schema`. */
export const bodyAs = <A, I>(schema: Schema.Schema<A, I>) => Effect.flatMap(jsonBody, decode(schema))
