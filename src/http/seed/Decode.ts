import { type Duration, Effect } from "effect"
import { InvalidRequest } from "../../domain/Errors.js"
import type { GenerationRequest } from "../../domain/Generation.js"
import { GenerateRequest, samplingOf } from "../../domain/SeedApi.js"
import { parseKeepAlive } from "../../services/KeepAlive.js"
import { decode } from "../Body.js"

/** The seed API's requests (`POST /api/generate`, a `/ws/generate` message) to the engine's. */

/**
 * `keep_alive` as Ollama takes it: a duration ("5m", "1h30m"), seconds (a number, or a number as
 * text); negative keeps the model loaded for good, 0 unloads it when the request ends.
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

export const generationOf = (request: GenerateRequest): Effect.Effect<GenerationRequest, InvalidRequest> =>
  Effect.map(keepAliveOf(request.keep_alive), (keepAlive) => ({
    model: request.model,
    prompt: request.prompt,
    sampling: samplingOf(request),
    ...(keepAlive !== undefined ? { keepAlive } : {})
  }))

export const decodeGenerate: (json: unknown) => Effect.Effect<GenerateRequest, InvalidRequest> = decode(GenerateRequest)
