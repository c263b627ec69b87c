import { Context, Deferred, FiberId } from "effect"

/**
 * Set once the server starts shutting down: new requests are refused, and a WebSocket closes
 * after the answer it is writing. `Server.serve` provides the real one; the default never fires.
 */
export class Draining extends Context.Reference<Draining>()("shimmy/http/Draining", {
  defaultValue: () => Deferred.unsafeMake<void>(FiberId.none)
}) {}
