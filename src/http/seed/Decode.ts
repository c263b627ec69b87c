import { Effect } from "effect"
import { type InvalidRequest } from "../../domain/Errors.js"
import type { GenerationRequest } from "../../domain/Generation.js"
import { GenerateRequest, samplingOf } from "../../domain/SeedApi.js"
import { decode } from "../Body.js"
import { keepAliveOf } from "../KeepAliveParam.js"

/** The seed API's requests (`POST /api/generate`, a `/ws/generate` message) to the engine's. */

export const generationOf = (request: GenerateRequest): Effect.Effect<GenerationRequest, InvalidRequest> =>
  Effect.map(keepAliveOf(request.keep_alive), (keepAlive) => ({
    model: request.model,
    prompt: request.prompt,
    sampling: samplingOf(request),
    ...(keepAlive !== undefined ? { keepAlive } : {})
  }))

export const decodeGenerate: (json: unknown) => Effect.Effect<GenerateRequest, InvalidRequest> = decode(GenerateRequest)
