import { HttpServerResponse } from "@effect/platform"
import { Duration, Effect, Option } from "effect"
import { InvalidRequest } from "../../domain/Errors.js"
import {
  LoadedResponse,
  LoadRequest,
  LoadResponse,
  ModelRequest,
  RouterResponse,
  UnloadResponse
} from "../../domain/ModelsApi.js"
import { formatBytes } from "../../Format.js"
import type * as KeepAlive from "../../services/KeepAlive.js"
import { LlamaEngine } from "../../services/LlamaEngine.js"
import { ModelRegistry } from "../../services/ModelRegistry.js"
import { bodyAs } from "../Body.js"
import { described, type Route } from "../Dialect.js"
import { keepAliveOf } from "../KeepAliveParam.js"
import { dialect } from "./Render.js"

/**
 * Models in memory over HTTP: list them, load one (answered once it is in memory), unload one
 * (now when idle, else when its last use ends). The same operations under llama-server's
 * router-mode names, `/models/load` and `/models/unload`, answer `{"success":true}`.
 */

const iso = (millis: number) => new Date(millis).toISOString()

const expiresAt = (expiry: KeepAlive.Expiry): string | null => expiry._tag === "At" ? iso(expiry.millis) : null

const loaded = Effect.gen(function*() {
  const engine = yield* LlamaEngine
  const schedulers = new Map((yield* engine.stats).map((s) => [s.model, s]))
  const now = Date.now()
  const slots = yield* engine.slots
  const body: LoadedResponse = {
    models: (yield* engine.resident).map((r) => {
      const s = schedulers.get(r.model)
      return {
        id: r.model,
        size_bytes: r.sizeBytes,
        size: formatBytes(r.sizeBytes),
        vram_bytes: r.vramBytes,
        context_size: r.contextSize,
        load_ms: r.loadMillis,
        loaded_at: iso(r.loadedAt),
        last_used: r.lastUsed === undefined ? null : iso(r.lastUsed),
        in_use: r.expiry._tag === "InUse",
        expires_at: expiresAt(r.expiry),
        sequences: {
          total: s?.sequences ?? 0,
          busy: s === undefined ? 0 : s.sequences - s.free,
          queued: s?.queued ?? 0
        }
      }
    }),
    loading: (yield* engine.loading).map((l) => ({
      id: l.model,
      since: iso(l.since),
      elapsed_ms: Math.max(0, now - l.since)
    })),
    slots: { max: slots.max === 0 ? null : slots.max, used: slots.used, waiting: slots.waiting }
  }
  return HttpServerResponse.unsafeJson(body)
})

/** A keep-alive for a load: 0 would unload the model at once, which is what unload is for. */
const loadKeepAlive = (value: string | number | undefined) =>
  Effect.flatMap(keepAliveOf(value), (keep) =>
    keep !== undefined && Duration.isZero(keep)
      ? Effect.fail(
        new InvalidRequest({
          param: "keep_alive",
          reason:
            "'keep_alive' 0 would unload the model as soon as it is loaded; use POST /api/models/unload to unload it"
        })
      )
      : Effect.succeed(keep))

/** Loads `name` (or finds it in memory), held until SHIMMY_KEEP_ALIVE or `keep` once idle. */
const loadModel = (name: string, keep: Duration.Duration | undefined) =>
  Effect.gen(function*() {
    const engine = yield* LlamaEngine
    const registered = yield* Effect.flatMap(ModelRegistry, (registry) => registry.resolve(name))
    const id = registered.info.name
    const before = yield* engine.residentOf(id)
    const { contextSize, loadMillis } = yield* engine.preload(id, keep)
    const resident = (yield* engine.resident).find((r) => r.model === id)
    return {
      id,
      status: "loaded",
      already_loaded: Option.isSome(before),
      load_ms: loadMillis,
      context_size: contextSize,
      expires_at: resident === undefined ? null : expiresAt(resident.expiry)
    } satisfies LoadResponse
  })

const unloadModel = (name: string) =>
  Effect.gen(function*() {
    const engine = yield* LlamaEngine
    const registered = yield* Effect.flatMap(ModelRegistry, (registry) => registry.resolve(name))
    const status = yield* engine.unloadNamed(registered.info.name)
    return { id: registered.info.name, status } satisfies UnloadResponse
  })

const load = Effect.gen(function*() {
  const request = yield* bodyAs(LoadRequest)
  const keep = yield* loadKeepAlive(request.keep_alive)
  return HttpServerResponse.unsafeJson(yield* loadModel(request.model, keep))
})

const unload = Effect.gen(function*() {
  const request = yield* bodyAs(ModelRequest)
  return HttpServerResponse.unsafeJson(yield* unloadModel(request.model))
})

const success: RouterResponse = { success: true }

const routerLoad = Effect.gen(function*() {
  const request = yield* bodyAs(ModelRequest)
  yield* loadModel(request.model, undefined)
  return HttpServerResponse.unsafeJson(success)
})

const routerUnload = Effect.gen(function*() {
  const request = yield* bodyAs(ModelRequest)
  yield* unloadModel(request.model)
  return HttpServerResponse.unsafeJson(success)
})

export const routes: ReadonlyArray<Route> = [
  {
    method: "GET",
    path: "/api/models/loaded",
    dialect,
    handler: loaded,
    api: { json: described("LoadedResponse", LoadedResponse) },
    summary: "The models in memory (size, context, load time, expiry, sequences, last use) and those loading"
  },
  {
    method: "POST",
    path: "/api/models/load",
    dialect,
    handler: load,
    api: { body: described("LoadRequest", LoadRequest), json: described("LoadResponse", LoadResponse) },
    summary: "Load a model (optional keep_alive); answered once it is in memory, with its load time"
  },
  {
    method: "POST",
    path: "/api/models/unload",
    dialect,
    handler: unload,
    api: { body: described("ModelRequest", ModelRequest), json: described("UnloadResponse", UnloadResponse) },
    summary: "Unload a model: now when idle, else when its last use ends (the answer says which)"
  },
  {
    method: "POST",
    path: "/models/load",
    dialect,
    handler: routerLoad,
    api: { body: described("ModelRequest", ModelRequest), json: described("RouterResponse", RouterResponse) },
    summary: "llama-server router mode: load a model"
  },
  {
    method: "POST",
    path: "/models/unload",
    dialect,
    handler: routerUnload,
    api: { body: described("ModelRequest", ModelRequest), json: described("RouterResponse", RouterResponse) },
    summary: "llama-server router mode: unload a model (when its last use ends)"
  }
]
