import {
  ContextLengthExceeded,
  type EngineError,
  GenerationFailed,
  InvalidRequest,
  ModelLoadFailed,
  ModelNotFound,
  PullFailed,
  RuntimeUnavailable,
  ServerBusy
} from "../../domain/Errors.js"
import {
  BadHandshake,
  BodyTimeout,
  BodyTooLarge,
  type HttpFailure,
  MalformedBody,
  MethodNotAllowed,
  NotImplemented,
  NotStored,
  OriginNotAllowed,
  RouteNotFound,
  ShuttingDown,
  Unauthorized,
  UpgradeRequired
} from "../Failures.js"
import { internalErrorReply, replyFor } from "../Reply.js"

/**
 * The statuses an error answer can have, and the stable codes under each, read off the one table
 * in Reply.ts (by asking it about one failure of every kind) rather than written out again: a row
 * added there shows in the API description. The `Record` over the tags makes a new kind of failure
 * a compile error here until it has its example.
 */

const one: Record<(EngineError | HttpFailure)["_tag"], EngineError | ReadonlyArray<EngineError> | HttpFailure> = {
  ModelNotFound: new ModelNotFound({ model: "m", available: [] }),
  InvalidRequest: new InvalidRequest({ reason: "r" }),
  ContextLengthExceeded: new ContextLengthExceeded({ model: "m", promptTokens: 2, contextSize: 1 }),
  ModelLoadFailed: new ModelLoadFailed({ model: "m", reason: "r" }),
  GenerationFailed: new GenerationFailed({ model: "m", reason: "r" }),
  ServerBusy: new ServerBusy({ model: "m", queued: 1, retryAfterSeconds: 1 }),
  RuntimeUnavailable: new RuntimeUnavailable({ reason: "r" }),
  // each kind of failed pull has its own status
  PullFailed: PullFailed.fields.kind.literals.map((kind) => new PullFailed({ kind, reason: "r" })),
  RouteNotFound: new RouteNotFound({ method: "GET", path: "/" }),
  NotStored: new NotStored({ method: "GET", path: "/" }),
  MethodNotAllowed: new MethodNotAllowed({ method: "GET", path: "/", allowed: ["POST"] }),
  MalformedBody: new MalformedBody({ reason: "r" }),
  BodyTooLarge: new BodyTooLarge({ limit: 1 }),
  BodyTimeout: new BodyTimeout({ seconds: 1 }),
  UpgradeRequired: new UpgradeRequired({ path: "/" }),
  BadHandshake: new BadHandshake({ reason: "r" }),
  Unauthorized: new Unauthorized({ reason: "missing" }),
  OriginNotAllowed: new OriginNotAllowed({ origin: "o" }),
  NotImplemented: new NotImplemented({ reason: "r" }),
  ShuttingDown: new ShuttingDown()
}

export interface ErrorStatus {
  readonly status: number
  /** the codes answered with this status, and the message of each */
  readonly codes: ReadonlyArray<{ readonly code: string; readonly message: string }>
  /** the headers some answer with this status carries (`retry-after`, `www-authenticate`, `allow`) */
  readonly headers: ReadonlyArray<string>
}

const collected = (): ReadonlyMap<number, ErrorStatus> => {
  const byStatus = new Map<number, { codes: Array<{ code: string; message: string }>; headers: Set<string> }>()
  for (const reply of [...Object.values(one).flat().map(replyFor), internalErrorReply]) {
    const entry = byStatus.get(reply.status) ?? { codes: [], headers: new Set<string>() }
    if (!entry.codes.some((c) => c.code === reply.code && c.message === reply.message)) {
      entry.codes.push({ code: reply.code, message: reply.message })
    }
    for (const header of Object.keys(reply.headers ?? {})) entry.headers.add(header)
    byStatus.set(reply.status, entry)
  }
  return new Map(
    [...byStatus].sort(([a], [b]) => a - b).map((
      [status, { codes, headers }]
    ) => [status, { status, codes, headers: [...headers].sort() }])
  )
}

/** Every error status of the table, in order. */
export const errorStatuses: ReadonlyMap<number, ErrorStatus> = collected()
