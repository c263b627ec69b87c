import { HttpIncomingMessage, HttpServerRequest } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Duration, Effect, Option, ParseResult, Schema } from "effect"
import type { ParseOptions } from "effect/SchemaAST"
import type * as http from "node:http"
import { InvalidRequest } from "../domain/Errors.js"
import type { Described } from "./Dialect.js"
import { BodyTimeout, BodyTooLarge, MalformedBody } from "./Failures.js"
import { ServerConfig } from "./ServerConfig.js"

/** Request bodies: text -> JSON -> schema, each step failing with what the client got wrong. */

const malformed = (reason: string) => new MalformedBody({ reason })

/** Nesting deeper than any request needs (a JSON schema a few dozen levels deep is already rare). */
export const MAX_DEPTH = 128

/** How deep `value` nests, counted without recursion (so any depth is measured safely). */
const depthOver = (value: unknown, limit: number): boolean => {
  const stack: Array<readonly [unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!
    if (typeof node !== "object" || node === null) continue
    if (depth > limit) return true
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1])
    }
  }
  return false
}

/**
 * Parses JSON text; a syntax error is `MalformedBody`, never a defect, and so is nesting past
 * MAX_DEPTH (validating and reporting on such a value would recurse past the stack).
 */
export const parseJson = (text: string): Effect.Effect<unknown, MalformedBody> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (cause) =>
      malformed(
        text.trim().length === 0
          ? "the request body is empty; send a JSON object"
          : `the request body is not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}`
      )
  }).pipe(
    Effect.filterOrFail(
      (json) => !depthOver(json, MAX_DEPTH),
      () => malformed(`the request body nests arrays or objects deeper than ${MAX_DEPTH} levels`)
    )
  )

// a reason quotes what the client sent; a long value is cut, not echoed whole
const MAX_REASON = 400
const cut = (
  text: string
) => (text.length > MAX_REASON ? `${text.slice(0, MAX_REASON)}... (${text.length} characters)` : text)

/** The first schema issue as `InvalidRequest`, naming the field (`max_tokens`, `stop.2`). */
export const invalidRequest = (error: ParseResult.ParseError): InvalidRequest => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined) return new InvalidRequest({ reason: cut(error.message) })
  const param = cut(issue.path.map(String).join("."))
  const message = cut(issue.message)
  if (param.length === 0) return new InvalidRequest({ reason: `the request body must be a JSON object: ${message}` })
  // OpenAI's words for a field no one defines
  if (issue._tag === "Unexpected") {
    return new InvalidRequest({ param, reason: `unrecognized request argument supplied: ${param}` })
  }
  // messages that already name their field (a refused field says why)
  if (message.startsWith(`'${param}'`)) return new InvalidRequest({ param, reason: message })
  return new InvalidRequest({ param, reason: `'${param}': ${message}` })
}

/** Decodes with `schema`, reporting the first wrong field. */
export const decode =
  <A, I>(schema: Schema.Schema<A, I>, options: ParseOptions = {}) =>
  (json: unknown): Effect.Effect<A, InvalidRequest> =>
    Schema.decodeUnknown(schema, { ...options, errors: "first" })(json).pipe(Effect.mapError(invalidRequest))

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
export const bodyText: Effect.Effect<
  string,
  MalformedBody | BodyTooLarge | BodyTimeout,
  HttpServerRequest.HttpServerRequest | ServerConfig
> = Effect
  .gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const limit = Option.getOrUndefined(Option.map(yield* HttpIncomingMessage.MaxBodySize, Number))
    const { bodyTimeout } = yield* ServerConfig
    const bytes = yield* readLimited(NodeHttpServerRequest.toIncomingMessage(request), limit).pipe(
      // interrupting the read detaches it; the connection closes with the 408
      Effect.timeoutFail({
        duration: bodyTimeout,
        onTimeout: () => new BodyTimeout({ seconds: Duration.toSeconds(bodyTimeout) })
      })
    )
    return utf8.decode(bytes)
  })

/** The current request's body as JSON. */
export const jsonBody: Effect.Effect<
  unknown,
  MalformedBody | BodyTooLarge | BodyTimeout,
  HttpServerRequest.HttpServerRequest | ServerConfig
> = Effect
  .flatMap(bodyText, parseJson)

/** The current request's body, decoded with `schema`. */
export const bodyAs = <A, I>(schema: Schema.Schema<A, I>, options: ParseOptions = {}) =>
  Effect.flatMap(jsonBody, decode(schema, options))

/**
 * A body Schema with its decoder and its description (a route's `api.body`) made from one value,
 * so the API description always shows what the route decodes with.
 */
export const requestBody = <A, I>(name: string, schema: Schema.Schema<A, I>, options: ParseOptions = {}) => ({
  decoded: bodyAs(schema, options),
  api: { name, schema, strict: options.onExcessProperty === "error" } satisfies Described & { strict: boolean }
})
