import { HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"
import * as fs from "node:fs/promises"
import { InvalidRequest, ModelLoadFailed } from "../../domain/Errors.js"
import type { ModelInfo } from "../../domain/Model.js"
import type { ShowResponse } from "../../domain/Ollama.js"
import type { GgufValue } from "../../services/GgufReader.js"
import { readGgufHeader } from "../../services/GgufReader.js"
import { LlamaEngine } from "../../services/LlamaEngine.js"
import { ModelDigest } from "../../services/ModelDigest.js"
import { ModelRegistry } from "../../services/ModelRegistry.js"
import { NotImplemented } from "../Failures.js"
import { showRequest } from "./Decode.js"
import { usableModel } from "./Generate.js"
import * as Render from "./Render.js"

/** Ollama's model endpoints: `/`, `/api/version`, `/api/tags`, `/api/show`, `/api/ps`, and the store's. */

/**
 * The Ollama version reported: a recent release (October 2025) with `think`, tool calls with ids
 * and `/api/ps` context lengths, so clients that check a minimum version enable what Shimmy has.
 */
export const OLLAMA_VERSION = "0.12.6"

const root = Effect.succeed(HttpServerResponse.text("Ollama is running"))

const version = Effect.succeed(HttpServerResponse.unsafeJson({ version: OLLAMA_VERSION }))

const modifiedAt = (m: ModelInfo) => Effect.promise(() => fs.stat(m.path).then((s) => s.mtime, () => new Date(0)))

const usable = Effect.map(
  Effect.flatMap(ModelRegistry, (registry) => registry.list),
  (models) => models.filter((m) => m.status !== "unusable")
)

const tags = Effect.gen(function*() {
  const digests = yield* ModelDigest
  const models = yield* Effect.forEach(
    yield* usable,
    (m) => Effect.map(Effect.all([digests.of(m), modifiedAt(m)]), ([digest, at]) => Render.listed(m, digest, at)),
    { concurrency: 4 }
  )
  return HttpServerResponse.unsafeJson({ models })
})

const ps = Effect.gen(function*() {
  const engine = yield* LlamaEngine
  const digests = yield* ModelDigest
  const byName = new Map((yield* usable).map((m) => [m.name, m]))
  const now = Date.now()
  const models = yield* Effect.forEach(yield* engine.resident, (r) => {
    const info = byName.get(r.model)
    return info === undefined
      ? Effect.succeed([])
      : Effect.map(digests.of(info), (digest) => [Render.running(info, r, digest, now)])
  })
  return HttpServerResponse.unsafeJson({ models: models.flat() })
})

// arrays longer than this (a tokenizer's vocabulary, merges, token types) are left out, as Ollama does
const MAX_ARRAY = 64

const jsonValue = (value: GgufValue): unknown => {
  if (typeof value === "bigint") return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()
  if (typeof value !== "object") return value
  return value.values?.map(jsonValue)
}

/** The GGUF's metadata as `model_info`, without its big arrays and the chat template (`template` has it). */
const modelInfoOf = (metadata: ReadonlyMap<string, GgufValue>, m: ModelInfo): Record<string, unknown> => {
  const info: Record<string, unknown> = {}
  for (const [key, value] of metadata) {
    if (key === "tokenizer.chat_template") continue
    if (typeof value === "object" && (value.values === undefined || value.length > MAX_ARRAY)) continue
    info[key] = jsonValue(value)
  }
  if (info["general.parameter_count"] === undefined && m.parameters !== undefined) {
    info["general.parameter_count"] = m.parameters
  }
  return info
}

const show = Effect.gen(function*() {
  const engine = yield* LlamaEngine
  const body = yield* showRequest
  const name = body.model ?? body.name
  if (name === undefined || name.length === 0) {
    return yield* Effect.fail(new InvalidRequest({ param: "model", reason: "model is required" }))
  }
  const { info } = yield* usableModel(name)
  const header = yield* readGgufHeader(info.path).pipe(
    Effect.mapError((e) => new ModelLoadFailed({ model: info.name, reason: e.reason }))
  )
  const meta = header.metadata
  const arch = info.architecture ?? ""
  // an embedding model declares how it pools its tokens into one vector
  const embedding = meta.has(`${arch}.pooling_type`)
  const template = meta.get("tokenizer.chat_template")
  // what the template can do is known once node-llama-cpp has resolved it, which loads the model
  const chat = yield* engine.capabilities(info.name)
  // fill in the middle needs the model's FIM tokens (llama.cpp finds them by id or by their text)
  const insert = yield* Effect.scoped(
    Effect.map(engine.acquire(info.name), (loaded) => {
      const fim = loaded.model.tokens.infill
      return fim.prefix !== null && fim.suffix !== null && fim.middle !== null
    })
  )
  const resident = yield* engine.residentOf(info.name)
  const contextSize = Option.match(resident, { onNone: () => info.contextLength, onSome: (r) => r.contextSize })
  const capabilities = [
    ...(embedding ? ["embedding"] : ["completion"]),
    ...(chat.tools ? ["tools"] : []),
    ...(chat.thinking ? ["thinking"] : []),
    ...(insert ? ["insert"] : [])
  ]
  const license = meta.get("general.license")
  const modified = yield* modifiedAt(info)
  const response: ShowResponse = {
    ...(typeof license === "string" ? { license } : {}),
    modelfile: [
      `# Modelfile generated by Shimmy for ${Render.ollamaName(info.name)}`,
      `FROM ${info.path}`,
      ...(typeof template === "string" ? [`TEMPLATE """${template}"""`] : []),
      ...(contextSize !== undefined ? [`PARAMETER num_ctx ${contextSize}`] : [])
    ].join("\n"),
    parameters: contextSize !== undefined ? `num_ctx ${contextSize}` : "",
    template: typeof template === "string" ? template : "",
    details: Render.details(info),
    model_info: modelInfoOf(meta, info),
    capabilities,
    modified_at: modified.toISOString()
  }
  return HttpServerResponse.unsafeJson(response)
})

/** Shimmy serves the GGUF files it finds; it does not manage a store of its own. */
const unmanaged = (what: string) =>
  Effect.fail(
    new NotImplemented({
      reason: `${what} is not supported: Shimmy serves the GGUF files in its model paths ` +
        "(./models, SHIMMY_MODEL_PATHS, the Hugging Face, Ollama and LM Studio stores) and does not manage them; " +
        "put a GGUF file there and it is listed"
    })
  )

export const handlers = {
  root,
  version,
  tags,
  ps,
  show,
  create: unmanaged("creating a model"),
  copy: unmanaged("copying a model"),
  delete: unmanaged("deleting a model"),
  push: unmanaged("pushing a model"),
  blobs: unmanaged("uploading a blob")
} as const
