import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"
import { Message, MessageTokensCount, ModelInfo, ModelList, StreamEvent } from "../../domain/Anthropic.js"
import { ModelNotFound } from "../../domain/Errors.js"
import { collect, type GenerationRequest } from "../../domain/Generation.js"
import { LlamaEngine } from "../../services/LlamaEngine.js"
import { ModelRegistry } from "../../services/ModelRegistry.js"
import { described, errorResponse, type Route } from "../Dialect.js"
import { replyFor } from "../Reply.js"
import { requestUrl } from "../RequestUrl.js"
import { ServerConfig } from "../ServerConfig.js"
import * as Sse from "../Sse.js"
import { bodies, countTokensRequest, messagesGeneration, messagesRequest, promptGeneration } from "./Decode.js"
import * as Render from "./Render.js"

/** Anthropic's Messages API: `/v1/messages` and its token count. */

const whereOf = Effect.map(HttpServerRequest.HttpServerRequest, (request) => ({
  method: request.method,
  path: requestUrl(request).pathname
}))

/**
 * Claude Code asks for Anthropic's models by name (`claude-sonnet-...`, and a small one for
 * background work). A `claude-*` name Shimmy has no model for is served by SHIMMY_ANTHROPIC_MODEL,
 * else by the only usable model, else by the only model in memory (so with ANTHROPIC_MODEL set to
 * a Shimmy model, the background requests for a small Claude go to the one already loaded); failing
 * those, the 404 lists the models. Other names are looked up as they are.
 */
const servedBy = (requested: string) =>
  Effect.gen(function*() {
    const registry = yield* ModelRegistry
    const { anthropicModel } = yield* ServerConfig
    const fallback = (notFound: ModelNotFound) =>
      Effect.gen(function*() {
        const chosen = Option.fromNullable(anthropicModel).pipe(Option.flatten)
        if (Option.isSome(chosen)) return (yield* registry.resolve(chosen.value)).info.name
        const usable = (yield* registry.list).filter((m) => m.status !== "unusable")
        if (usable.length === 1) return usable[0]!.name
        const loaded = yield* (yield* LlamaEngine).loaded
        return loaded.length === 1 ? loaded[0]! : yield* Effect.fail(notFound)
      })
    return yield* registry.resolve(requested).pipe(
      Effect.map((found) => found.info.name),
      Effect.catchTag(
        "ModelNotFound",
        (notFound) => (/^claude/i.test(requested) ? fallback(notFound) : Effect.fail(notFound))
      )
    )
  })

/**
 * What the serving model's template cannot do is left out rather than refused, so a client that
 * always sends tools and thinking (Claude Code) still gets answers from any model: thinking from a
 * template that never thinks, and tools the model may (`auto`) but need not call from a template
 * without tool calls. A forced call (`any`, `tool`) on such a template is still refused.
 */
const withinCapabilities = (generation: GenerationRequest) =>
  Effect.gen(function*() {
    const thinks = generation.thinking?.enabled === true
    const mayCall = generation.tools?.choice._tag === "Auto"
    if (!thinks && !mayCall) return generation
    const can = yield* (yield* LlamaEngine).capabilities(generation.model)
    return {
      ...generation,
      thinking: thinks && !can.thinking ? undefined : generation.thinking,
      tools: mayCall && !can.tools ? undefined : generation.tools
    }
  })

const createMessage = Effect.gen(function*() {
  const engine = yield* LlamaEngine
  const request = yield* messagesRequest
  const model = yield* servedBy(request.model)
  const generation = yield* withinCapabilities(yield* messagesGeneration(request, model))
  const ending = { stops: request.stop_sequences ?? [], maxTokens: request.max_tokens }
  const events = engine.generate({ ...generation, streamed: request.stream === true })
  // the requested name is echoed (clients match on it); the header tells which model answered
  const served = HttpServerResponse.setHeader("x-shimmy-model", model)
  if (!request.stream) {
    return served(HttpServerResponse.unsafeJson(Render.message(request.model, yield* collect(model, events), ending)))
  }
  // message_start tells the prompt's length before the first token: the prompt is rendered first
  const prompt = yield* engine.render(generation)
  const stream = Render.events(request.model, prompt.tokens.length, ending)
  return served(
    yield* Sse.answer(events, stream.frames, Render.dialect, yield* whereOf, {
      framing: Sse.namedEvents,
      opening: stream.opening
    })
  )
})

const countTokens = Effect.gen(function*() {
  const engine = yield* LlamaEngine
  const request = yield* countTokensRequest
  const model = yield* servedBy(request.model)
  const prompt = yield* engine.render(yield* withinCapabilities(yield* promptGeneration(request, model)))
  return HttpServerResponse.unsafeJson(Render.tokensCount(prompt.tokens.length))
})

const dialect = Render.dialect

/** Anthropic's SDK sends `anthropic-version` with every request; OpenAI's clients never do. */
const fromAnthropicClient = Effect.map(
  HttpServerRequest.HttpServerRequest,
  (request) => request.headers["anthropic-version"] !== undefined
)

const usable = Effect.map(
  Effect.flatMap(ModelRegistry, (registry) => registry.list),
  (models) => models.filter((m) => m.status !== "unusable")
)

const MODELS = "/v1/models/"

const anthropicModels = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const path = requestUrl(request).pathname
  const models = yield* usable
  if (!path.startsWith(MODELS) || path === MODELS) return HttpServerResponse.unsafeJson(Render.modelList(models))
  const id = decodeURIComponent(path.slice(MODELS.length)).replace(/\/$/, "")
  const found = (yield* (yield* ModelRegistry).resolve(id)).info
  if (found.status === "unusable") {
    return yield* Effect.fail(new ModelNotFound({ model: id, available: models.map((m) => m.name) }))
  }
  return HttpServerResponse.unsafeJson(Render.modelList([found]).data[0])
}).pipe(Effect.catchAll((failure) => Effect.succeed(errorResponse(dialect, replyFor(failure)))))

/**
 * `GET /v1/models` is OpenAI's route; a request from Anthropic's SDK (`models.list()`,
 * `models.retrieve()`) is answered in Anthropic's shape instead, so both SDKs can list models.
 */
export const withAnthropicModels = (route: Route): Route =>
  route.method === "GET" && (route.path === "/v1/models" || route.path === "/v1/models/*")
    ? {
      ...route,
      handler: Effect.flatMap(fromAnthropicClient, (anthropic) => (anthropic ? anthropicModels : route.handler)),
      api: {
        ...route.api,
        json: [
          ...(route.api?.json === undefined ? [] : Array.isArray(route.api.json) ? route.api.json : [route.api.json]),
          route.path === "/v1/models"
            ? described("anthropic.ModelList", ModelList)
            : described("anthropic.ModelInfo", ModelInfo)
        ],
        parameters: [...(route.api?.parameters ?? []), {
          name: "anthropic-version",
          in: "header",
          description: "sent by Anthropic's SDK: the answer is then in Anthropic's shape"
        }],
        tags: [...(route.api?.tags ?? []), "anthropic"]
      }
    }
    : route

export const routes: ReadonlyArray<Route> = [
  {
    method: "POST",
    path: "/v1/messages",
    dialect,
    handler: createMessage,
    promptParam: "messages",
    summary: "Anthropic Messages (JSON, or SSE events), with tools and thinking",
    api: {
      body: bodies.messages,
      json: described("Message", Message),
      stream: { ...described("StreamEvent", StreamEvent), framing: "namedEvents" }
    }
  },
  {
    method: "POST",
    path: "/v1/messages/count_tokens",
    dialect,
    handler: countTokens,
    promptParam: "messages",
    summary: "Anthropic token count of a Messages request",
    api: { body: bodies.countTokens, json: described("MessageTokensCount", MessageTokensCount) }
  }
]
