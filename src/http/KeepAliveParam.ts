import { type Duration, Effect } from "effect"
import { InvalidRequest } from "../domain/Errors.js"
import { parseKeepAlive } from "../services/KeepAlive.js"

/**
 * A request's `keep_alive`, as Ollama takes it and the seed API and the load endpoint take it too:
 * a duration ("5m", "1h30m") or seconds (a number, or a number as text); negative keeps the model
 * loaded for good, 0 unloads it when the request ends. Left out: the default (undefined).
 */
export const keepAliveOf = (
  value: string | number | undefined
): Effect.Effect<Duration.Duration | undefined, InvalidRequest> => {
  if (value === undefined) return Effect.succeed(undefined)
  const parsed = parseKeepAlive(value)
  return parsed === undefined
    ? Effect.fail(
      new InvalidRequest({
        param: "keep_alive",
        reason: `'keep_alive' ${
          JSON.stringify(value)
        } is not a duration: use seconds or a duration like "5m" or "1h30m"; 0 unloads the model after the request, -1 keeps it loaded`
      })
    )
    : Effect.succeed(parsed)
}
