import { HttpServerResponse } from "@effect/platform"
import { Cause, Console, Effect } from "effect"
import type { EngineError } from "../../domain/Errors.js"
import { type ErrorReply, type HttpFailure, internalErrorReply, replyFor } from "../Errors.js"

/**
 * OpenAI's error shape `{"error":{"message","type","param","code"}}`, rendered from the one table
 * in ../Errors.ts, so the status and code are the same as the seed API's and SDKs raise their
 * typed errors (404 NotFoundError, 400 BadRequestError, ...).
 */

const typeOf = (status: number): string =>
  status === 401 ? "authentication_error" : status === 403 ? "permission_error" : status >= 500 ? "server_error" : "invalid_request_error"

export const openAiErrorBody = (reply: ErrorReply) => ({
  error: { message: reply.details, type: typeOf(reply.status), param: reply.param ?? null, code: reply.code }
})

export const openAiErrorResponse = (reply: ErrorReply) =>
  HttpServerResponse.unsafeJson(openAiErrorBody(reply), {
    status: reply.status,
    ...(reply.headers ? { headers: reply.headers } : {})
  })

/** The reply for a failure; `prompt` names the field that holds the prompt on this endpoint. */
export const openAiReply = (error: EngineError | HttpFailure, prompt = "prompt"): ErrorReply => {
  const reply = replyFor(error)
  return reply.param === "prompt" ? { ...reply, param: prompt } : reply
}

/** Logs a defect and tells the client nothing about it. */
export const internalError = (cause: Cause.Cause<unknown>, where: string) =>
  Console.error(`shimmy: unexpected error on ${where}\n${Cause.pretty(cause)}`).pipe(Effect.as(internalErrorReply))

/**
 * Every failure of a `/v1/*` handler in OpenAI's shape: expected ones by the table, defects as a
 * 500 without details. Interruption (the client went away) is left to the platform.
 */
export const replying = <E extends EngineError | HttpFailure, R>(
  where: string,
  handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
  prompt = "prompt"
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> =>
  Effect.catchAllCause(handler, (cause) => {
    if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
    const failure = Cause.failureOption(cause)
    return failure._tag === "Some"
      ? Effect.succeed(openAiErrorResponse(openAiReply(failure.value, prompt)))
      : Effect.map(internalError(cause, where), openAiErrorResponse)
  })
