import { Effect, Option, Stream } from "effect"
import type { PullFailed } from "../domain/Errors.js"
import type { PullEvent } from "../domain/Pull.js"
import type { Dialect } from "./Dialect.js"
import { replyForCause, type Where } from "./Reply.js"
import { Deadline, streamUntil } from "./Shutdown.js"
import * as Sse from "./Sse.js"

/**
 * A pull's progress as NDJSON in a dialect. The stream is started before the answer is committed
 * to, so a reference the hub refuses (401, 404, no GGUF, unknown tag) still gets a status code;
 * a failure during the download becomes the dialect's error line. It runs in the request's scope:
 * a client that goes away stops the download, and its partial file stays for a resume.
 */
export const ndjsonPull = (
  events: Stream.Stream<PullEvent, PullFailed>,
  frames: (event: PullEvent) => ReadonlyArray<unknown>,
  dialect: Dialect,
  where: Where,
  options: {
    readonly opening?: ReadonlyArray<unknown>
    readonly failure?: (body: unknown) => unknown
  } = {}
) =>
  Effect.gen(function*() {
    const stream = yield* Sse.started(events)
    const frame = Sse.ndjson.frame
    const body = streamUntil(stream, yield* Deadline).pipe(
      Stream.mapConcat((event) => frames(event).map(frame)),
      Stream.catchAllCause((cause) =>
        Stream.unwrap(Effect.map(
          replyForCause(cause, where),
          Option.match({
            onNone: () => Stream.failCause(cause),
            onSome: (reply) => {
              const error = dialect.errorBody(reply)
              return Stream.make(frame(options.failure?.(error) ?? error))
            }
          })
        ))
      )
    )
    return Sse.response(
      Stream.concat(Stream.fromIterable((options.opening ?? []).map(frame)), body),
      Sse.ndjson
    )
  })
