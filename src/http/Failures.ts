import { Schema } from "effect"

/**
 * Failures that exist only at the HTTP edge, as tagged errors beside the engine's (src/domain):
 * Reply.ts gives each its status and stable code.
 */

export class RouteNotFound extends Schema.TaggedError<RouteNotFound>()("RouteNotFound", {
  method: Schema.String,
  path: Schema.String
}) {}

export class MethodNotAllowed extends Schema.TaggedError<MethodNotAllowed>()("MethodNotAllowed", {
  method: Schema.String,
  path: Schema.String,
  allowed: Schema.Array(Schema.String)
}) {}

/** The body is not JSON, is empty, or could not be read. */
export class MalformedBody extends Schema.TaggedError<MalformedBody>()("MalformedBody", {
  reason: Schema.String
}) {}

export class BodyTooLarge extends Schema.TaggedError<BodyTooLarge>()("BodyTooLarge", {
  limit: Schema.Number
}) {}

/** The body did not arrive within the deadline. */
export class BodyTimeout extends Schema.TaggedError<BodyTimeout>()("BodyTimeout", {
  seconds: Schema.Number
}) {}

/** A WebSocket endpoint asked for without an upgrade. */
export class UpgradeRequired extends Schema.TaggedError<UpgradeRequired>()("UpgradeRequired", {
  path: Schema.String
}) {}

/** A WebSocket handshake that is not one (no key, an unknown version, no `Connection: Upgrade`). */
export class BadHandshake extends Schema.TaggedError<BadHandshake>()("BadHandshake", {
  reason: Schema.String
}) {}

export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  reason: Schema.Literal("missing", "invalid")
}) {}

export class OriginNotAllowed extends Schema.TaggedError<OriginNotAllowed>()("OriginNotAllowed", {
  origin: Schema.String
}) {}

/** A path that would look up a stored response (OpenAI's Responses API); Shimmy stores none. */
export class NotStored extends Schema.TaggedError<NotStored>()("NotStored", {
  method: Schema.String,
  path: Schema.String
}) {}

/** An endpoint of a protocol that Shimmy knows and does not implement; `reason` says why and what to do. */
export class NotImplemented extends Schema.TaggedError<NotImplemented>()("NotImplemented", {
  reason: Schema.String
}) {}

export class ShuttingDown extends Schema.TaggedError<ShuttingDown>()("ShuttingDown", {}) {}

export type HttpFailure =
  | RouteNotFound
  | NotStored
  | MethodNotAllowed
  | MalformedBody
  | BodyTooLarge
  | BodyTimeout
  | UpgradeRequired
  | BadHandshake
  | Unauthorized
  | OriginNotAllowed
  | ShuttingDown
  | NotImplemented
