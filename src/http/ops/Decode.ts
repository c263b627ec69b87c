import { Effect, Schema } from "effect"
import { InvalidRequest } from "../../domain/Errors.js"
import type { GenerationRequest } from "../../domain/Generation.js"
import { DetokenizeRequest, TokenizeRequest } from "../../domain/LlamaServer.js"
import { ChatCompletionRequest, strict } from "../../domain/OpenAi.js"
import { LlamaEngine } from "../../services/LlamaEngine.js"
import { ModelRegistry } from "../../services/ModelRegistry.js"
import { decode, jsonBody, requestBody } from "../Body.js"
import { chatGeneration } from "../openai/Decode.js"

/**
 * llama-server's tokenizer requests. Unknown fields are ignored, as llama-server does; `model` is
 * Shimmy's addition, and where it is left out the model is the only one loaded, else the only
 * one available, else the request is refused with the names to choose from.
 */

const tokenize = requestBody("ops.TokenizeRequest", TokenizeRequest)
const detokenize = requestBody("ops.DetokenizeRequest", DetokenizeRequest)
export const tokenizeRequest = tokenize.decoded
export const detokenizeRequest = detokenize.decoded

// a refusal lists this many names at most
const LISTED = 32

const listed = (names: ReadonlyArray<string>) =>
  names.length <= LISTED ? names.join(", ") : `${names.slice(0, LISTED).join(", ")} and ${names.length - LISTED} more`

/** The model a request names, or the one it must mean. */
export const modelFor = (
  requested: string | undefined
): Effect.Effect<string, InvalidRequest, LlamaEngine | ModelRegistry> =>
  Effect.gen(function*() {
    if (requested !== undefined) return requested
    const loaded = (yield* Effect.flatMap(LlamaEngine, (engine) => engine.stats)).map((s) => s.model)
    if (loaded.length === 1) return loaded[0]!
    const available = (yield* Effect.flatMap(ModelRegistry, (registry) => registry.list))
      .filter((m) => m.status !== "unusable")
      .map((m) => m.name)
    if (loaded.length === 0 && available.length === 1) return available[0]!
    return yield* Effect.fail(
      new InvalidRequest({
        param: "model",
        reason: loaded.length > 1
          ? `'model' is required: ${loaded.length} models are loaded: ${listed(loaded)}`
          : available.length === 0
          ? "'model' is required, and no model is available"
          : `'model' is required: no model is loaded and ${available.length} are available: ${listed(available)}`
      })
    )
  })

const isObject = (json: unknown): json is Readonly<Record<string, unknown>> =>
  typeof json === "object" && json !== null && !Array.isArray(json)

/**
 * `POST /apply-template`: a chat request as `/v1/chat/completions` takes it (messages, tools,
 * reasoning_effort), its `model` optional; decoded by OpenAI's schema, so it is told the same way.
 */
export const applyTemplateRequest: Effect.Effect<
  GenerationRequest,
  InvalidRequest | Effect.Effect.Error<typeof jsonBody>,
  LlamaEngine | ModelRegistry | Effect.Effect.Context<typeof jsonBody>
> = Effect.gen(function*() {
  const json = yield* jsonBody
  // not an object: the schema says so before a model is looked for
  const body = isObject(json) && json["model"] === undefined ? { ...json, model: yield* modelFor(undefined) } : json
  const request = yield* decode(ChatCompletionRequest, strict)(body)
  return yield* chatGeneration(request)
})

/**
 * The bodies as the API description shows them; `/apply-template`'s is chat's with its `model`
 * optional, as decoded above.
 */
export const bodies = {
  tokenize: tokenize.api,
  detokenize: detokenize.api,
  applyTemplate: {
    name: "ops.ApplyTemplateRequest",
    schema: Schema.Struct({
      ...ChatCompletionRequest.fields,
      model: Schema.optional(ChatCompletionRequest.fields.model)
    }),
    strict: true
  }
}
