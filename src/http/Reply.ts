import { Cause, Effect, Option } from "effect"
import type { EngineError, PullFailed } from "../domain/Errors.js"
import type { HttpFailure } from "./Failures.js"

/** How any failure is told to a client: the one table from errors to status and stable code. */
export interface ErrorReply {
  readonly status: number
  readonly code: string
  readonly message: string
  readonly details: string
  /** the request field at fault, when there is one */
  readonly param?: string | undefined
  /** the model a failure is about, for dialects that name it in their own words */
  readonly model?: string | undefined
  readonly headers?: Record<string, string>
}

/**
 * A pull's failure: the hub's refusals are not this server's (401 would tell a client its own API
 * key is wrong), so they are 403 and 502; a full disk is 507 Insufficient Storage.
 */
const pullStatus: Record<PullFailed["kind"], number> = {
  bad_reference: 400,
  unauthorized: 403,
  forbidden: 403,
  not_found: 404,
  no_gguf: 404,
  unknown_tag: 404,
  integrity: 502,
  disk_full: 507,
  // the cache or models directory cannot be written: this server's fault, said plainly
  storage: 500,
  network: 502,
  upstream: 502
}

const pullReply = (error: PullFailed): ErrorReply => ({
  status: pullStatus[error.kind],
  code: error.kind === "bad_reference" ? "invalid_request" : `pull_${error.kind}`,
  message: "The model could not be pulled",
  details: error.reason,
  ...(error.kind === "bad_reference" ? { param: "model" } : {})
})

export const replyFor = (error: EngineError | HttpFailure): ErrorReply => {
  switch (error._tag) {
    case "ModelNotFound":
      return {
        status: 404,
        code: "model_not_found",
        message: "The specified model was not found",
        details: `Model '${error.model}' is not available. Available models: ${error.available.join(", ") || "(none)"}`,
        param: "model",
        model: error.model
      }
    case "InvalidRequest":
      return {
        status: 400,
        code: "invalid_request",
        message: "Request format is invalid",
        details: error.reason,
        param: error.param
      }
    case "ContextLengthExceeded":
      return {
        status: 400,
        code: "context_length_exceeded",
        message: "The prompt is longer than the model's context",
        details: error.message,
        param: "prompt"
      }
    case "ModelLoadFailed":
      return {
        status: 500,
        code: "model_load_failed",
        message: "The model could not be loaded",
        details: error.message
      }
    case "GenerationFailed":
      return { status: 500, code: "generation_failed", message: "Text generation failed", details: error.message }
    case "ServerBusy":
      return {
        status: 503,
        code: "server_busy",
        message: "The server is busy",
        details: error.message,
        headers: { "retry-after": String(error.retryAfterSeconds) }
      }
    case "PullFailed":
      return pullReply(error)
    case "RuntimeUnavailable":
      return { status: 500, code: "server_error", message: "Internal server error", details: error.message }
    case "RouteNotFound":
      return {
        status: 404,
        code: "not_found",
        message: "No such endpoint",
        details: `${error.method} ${error.path} does not exist`
      }
    case "NotStored":
      return {
        status: 404,
        code: "not_found",
        message: "No such response",
        details:
          `${error.method} ${error.path}: Shimmy is stateless and keeps no responses; send the whole conversation in 'input'`
      }
    case "MethodNotAllowed":
      return {
        status: 405,
        code: "method_not_allowed",
        message: "Method not allowed",
        details: `${error.method} is not allowed on ${error.path}; use ${error.allowed.join(", ")}`,
        headers: { allow: error.allowed.join(", ") }
      }
    case "MalformedBody":
      return { status: 400, code: "invalid_request", message: "Request format is invalid", details: error.reason }
    case "BodyTooLarge":
      return {
        status: 413,
        code: "request_too_large",
        message: "Request body is too large",
        details: `the body exceeds the limit of ${error.limit} bytes`
      }
    case "UpgradeRequired":
      return {
        status: 426,
        code: "invalid_request",
        message: "Request format is invalid",
        details: `${error.path} is a WebSocket endpoint; connect with a WebSocket client`,
        headers: { upgrade: "websocket", connection: "Upgrade" }
      }
    case "BodyTimeout":
      return {
        status: 408,
        code: "request_timeout",
        message: "The request body took too long",
        details: `the request body did not arrive within ${error.seconds} seconds`,
        headers: { connection: "close" }
      }
    case "BadHandshake":
      return { status: 400, code: "invalid_request", message: "Request format is invalid", details: error.reason }
    case "Unauthorized":
      return {
        status: 401,
        code: "unauthorized",
        message: "Authentication required",
        details: error.reason === "missing"
          ? "this server requires an API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
          : "the API key is not valid",
        headers: { "www-authenticate": "Bearer" }
      }
    case "OriginNotAllowed":
      return {
        status: 403,
        code: "forbidden",
        message: "Origin not allowed",
        details: `requests from ${
          JSON.stringify(error.origin)
        } are not allowed; list it in --cors-origins (SHIMMY_CORS_ORIGINS)`
      }
    case "NotImplemented":
      return { status: 501, code: "not_implemented", message: "Not implemented", details: error.reason }
    case "ShuttingDown":
      return {
        status: 503,
        code: "server_shutting_down",
        message: "The server is shutting down",
        details: "the server is finishing the requests it has and takes no new ones",
        headers: { connection: "close", "retry-after": "1" }
      }
  }
}

const expectedTags: ReadonlySet<string> = new Set<(EngineError | HttpFailure)["_tag"]>([
  "ModelNotFound",
  "InvalidRequest",
  "ContextLengthExceeded",
  "ModelLoadFailed",
  "GenerationFailed",
  "ServerBusy",
  "RuntimeUnavailable",
  "PullFailed",
  "RouteNotFound",
  "NotStored",
  "MethodNotAllowed",
  "MalformedBody",
  "BodyTooLarge",
  "BodyTimeout",
  "UpgradeRequired",
  "BadHandshake",
  "Unauthorized",
  "OriginNotAllowed",
  "ShuttingDown",
  "NotImplemented"
])

/** Whether a failure is one the table has a row for (anything else is a bug). */
export const isExpected = (u: unknown): u is EngineError | HttpFailure =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string" && expectedTags.has(u._tag)

/** Anything not in the table: a bug. The client learns nothing about the internals. */
export const internalErrorReply: ErrorReply = {
  status: 500,
  code: "server_error",
  message: "Internal server error",
  details: "An unexpected error occurred; see the server log"
}

/** Which request a failure belongs to, for the log. */
export interface Where {
  readonly method: string
  readonly path: string
}

/**
 * The one place any failure of a request becomes a reply: expected errors by the table above,
 * defects (and unexpected failures) logged once, with the request's method and path, and answered
 * without details. `None` when the client went away (interruption): nobody is left to answer.
 */
export const replyForCause = (cause: Cause.Cause<unknown>, where: Where): Effect.Effect<Option.Option<ErrorReply>> => {
  if (Cause.isInterruptedOnly(cause)) return Effect.succeedNone
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && isExpected(failure.value)) return Effect.succeedSome(replyFor(failure.value))
  return Effect.logError("unexpected error", cause).pipe(
    Effect.annotateLogs({ method: where.method, path: where.path }),
    Effect.as(Option.some(internalErrorReply))
  )
}
