import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Config, Console, Duration, Effect, Layer, Option } from "effect"
import { InvalidRequest } from "../domain/Errors.js"
import * as Server from "../http/Server.js"
import {
  isUsableKey,
  ServerConfig,
  type ServerConfigShape,
  serverSettings,
  splitOrigins
} from "../http/ServerConfig.js"
import { liveWith } from "../services/Live.js"
import { LlamaRuntime } from "../services/LlamaRuntime.js"
import { ModelRegistry } from "../services/ModelRegistry.js"
import { configOverrides, modelDirs, threads } from "./Shared.js"

const DEFAULT_BIND = `${Server.DEFAULT_HOST}:${Server.DEFAULT_PORT}`

const bind = Options.text("bind").pipe(
  Options.withDescription(
    `HOST:PORT to listen on, or "auto" for the first free port from ${Server.DEFAULT_PORT} (env SHIMMY_BIND)`
  ),
  Options.withFallbackConfig(Config.string("SHIMMY_BIND").pipe(Config.withDefault(DEFAULT_BIND)))
)

const port = Options.integer("port").pipe(
  Options.withDescription("Port to listen on; overrides the port of --bind (env SHIMMY_PORT)"),
  Options.map(Option.some),
  Options.withFallbackConfig(Config.option(Config.integer("SHIMMY_PORT")))
)

const ollamaPort = Options.integer("ollama-port").pipe(
  Options.withDescription(
    "Also serve Ollama's API alone at the root of this port, on the --bind host, for tools that take only a host (e.g. 11434; env SHIMMY_OLLAMA_PORT)"
  ),
  Options.map(Option.some),
  Options.withFallbackConfig(Config.option(Config.integer("SHIMMY_OLLAMA_PORT")))
)

const parallel = Options.integer("parallel").pipe(
  Options.withDescription(
    "Sequences per loaded model: requests that decode together (1-64; env SHIMMY_PARALLEL, default 4)"
  ),
  Options.optional
)

const maxQueue = Options.integer("max-queue").pipe(
  Options.withDescription(
    "Requests that may wait for a sequence; beyond, 503 server_busy (env SHIMMY_MAX_QUEUE, default 64)"
  ),
  Options.optional
)

const maxLoadedModels = Options.integer("max-loaded-models").pipe(
  Options.withDescription(
    "Models in memory at once; loading another unloads the least recently used idle one (env SHIMMY_MAX_LOADED_MODELS, default 0: no limit)"
  ),
  Options.optional
)

const apiKey = Options.redacted("api-key").pipe(
  Options.withDescription(
    "Require this key (Authorization: Bearer, x-api-key, or ?api_key= on WebSockets) (env SHIMMY_API_KEY)"
  ),
  Options.map(Option.some),
  Options.withFallbackConfig(serverSettings.apiKey)
)

const corsOrigins = Options.text("cors-origins").pipe(
  Options.withDescription(
    "Browser origins allowed to call the server, comma-separated, or * (env SHIMMY_CORS_ORIGINS; default none)"
  ),
  Options.map(splitOrigins),
  Options.withFallbackConfig(serverSettings.corsOrigins)
)

const maxBodyBytes = Options.integer("max-body-bytes").pipe(
  Options.withDescription(
    "Largest request body in bytes; larger ones get 413 (env SHIMMY_MAX_BODY_BYTES, default 1048576)"
  ),
  Options.withFallbackConfig(serverSettings.maxBodyBytes)
)

/** Seconds (`10`, `0.5`) or a duration (`500 millis`, `2 minutes`). */
const parseDuration = (text: string) => {
  const trimmed = text.trim()
  const decoded = /^\d+(\.\d+)?$/.test(trimmed)
    ? Option.some(Duration.seconds(Number(trimmed)))
    : Duration.decodeUnknown(trimmed)
  return Option.match(decoded, {
    onNone: () =>
      Effect.fail(`--shutdown-timeout ${JSON.stringify(text)}: expected seconds or a duration like "500 millis"`),
    onSome: Effect.succeed
  })
}

const shutdownTimeout = Options.text("shutdown-timeout").pipe(
  Options.withDescription(
    "How long in-flight requests may finish after SIGINT/SIGTERM before they are cancelled (env SHIMMY_SHUTDOWN_TIMEOUT, default 10 seconds)"
  ),
  Options.mapEffect((text) =>
    Effect.mapError(parseDuration(text), (message) => ValidationError.invalidValue(HelpDoc.p(message)))
  ),
  Options.withFallbackConfig(serverSettings.shutdownTimeout)
)

const badBind = (value: string, why: string) =>
  new InvalidRequest({ param: "bind", reason: `--bind ${JSON.stringify(value)}: ${why}; expected HOST:PORT or auto` })

const validPort = (n: number) => Number.isInteger(n) && n >= 0 && n <= 65535

/** `auto`, `HOST:auto`, `HOST:PORT`, `[::1]:PORT`, or a bare `PORT`. */
export const parseBind = (value: string, portOverride: Option.Option<number>) =>
  Effect.gen(function*() {
    const text = value.trim()
    let host: string = Server.DEFAULT_HOST
    let portText: string
    if (text === "auto") portText = "auto"
    else if (/^\d+$/.test(text)) portText = text
    else {
      const match = /^(?:\[([^\]]+)\]|([^:]*)):([^:]+)$/.exec(text)
      if (match === null) return yield* Effect.fail(badBind(value, "no port given"))
      host = match[1] ?? match[2] ?? ""
      if (host.length === 0) host = Server.DEFAULT_HOST
      portText = match[3]!
    }
    if (Option.isSome(portOverride)) {
      if (!validPort(portOverride.value)) {
        return yield* Effect.fail(
          new InvalidRequest({ param: "port", reason: `--port ${portOverride.value} is not a port (0-65535)` })
        )
      }
      return { host, port: portOverride.value } satisfies Server.ListenOptions
    }
    if (portText === "auto") return { host, port: "auto" } satisfies Server.ListenOptions
    const n = Number(portText)
    if (!/^\d+$/.test(portText) || !validPort(n)) {
      return yield* Effect.fail(badBind(value, `${portText} is not a port (0-65535)`))
    }
    return { host, port: n } satisfies Server.ListenOptions
  })

const checkRange = (flag: string, value: Option.Option<number>, min: number, max: number) =>
  Option.isSome(value) && (value.value < min || value.value > max)
    ? Effect.fail(
      new InvalidRequest({ param: flag, reason: `--${flag} ${value.value} is out of range (${min}-${max})` })
    )
    : Effect.void

const options = {
  bind,
  port,
  ollamaPort,
  modelDirs,
  threads,
  parallel,
  maxQueue,
  maxLoadedModels,
  apiKey,
  corsOrigins,
  maxBodyBytes,
  shutdownTimeout
}

type ServeOptions = Command.Command.ParseConfig<typeof options>

/** `Live` with the scheduler's flags over the environment's settings. */
const liveOf = (o: ServeOptions) =>
  liveWith({
    ...configOverrides(o),
    ...(Option.isSome(o.parallel) ? { parallel: o.parallel.value } : {}),
    ...(Option.isSome(o.maxQueue) ? { maxQueue: o.maxQueue.value } : {}),
    ...(Option.isSome(o.maxLoadedModels) ? { maxLoadedModels: o.maxLoadedModels.value } : {})
  })

const serverConfigOf = (o: ServeOptions): Partial<ServerConfigShape> => ({
  apiKey: o.apiKey,
  corsOrigins: o.corsOrigins,
  maxBodyBytes: o.maxBodyBytes,
  shutdownTimeout: o.shutdownTimeout
})

export const serveCommand = Command.make("serve", options, (o) =>
  Effect.gen(function*() {
    yield* checkRange("parallel", o.parallel, 1, 64)
    yield* checkRange("max-queue", o.maxQueue, 0, Number.MAX_SAFE_INTEGER)
    yield* checkRange("max-loaded-models", o.maxLoadedModels, 0, Number.MAX_SAFE_INTEGER)
    yield* checkRange("max-body-bytes", Option.some(o.maxBodyBytes), 1, Number.MAX_SAFE_INTEGER)
    if (Option.isSome(o.apiKey) && !isUsableKey(o.apiKey.value)) {
      return yield* Effect.fail(
        new InvalidRequest({
          param: "api-key",
          reason: "--api-key is empty or only whitespace; give a real key, or leave the flag out"
        })
      )
    }
    const listen = yield* parseBind(o.bind, o.port)
    if (Option.isSome(o.ollamaPort) && !validPort(o.ollamaPort.value)) {
      return yield* Effect.fail(
        new InvalidRequest({
          param: "ollama-port",
          reason: `--ollama-port ${o.ollamaPort.value} is not a port (0-65535)`
        })
      )
    }
    const registry = yield* ModelRegistry
    const runtime = yield* LlamaRuntime
    // the services' scope (Command.provide) encloses the server's, so the server drains before
    // models unload; listening comes first: llama.cpp loads meanwhile (below) and models when a
    // request first names them
    const server = yield* Server.serve(listen)
    const url = Server.urlOf(server)
    const ollama = Option.isSome(o.ollamaPort)
      ? Option.some(yield* Server.serveOllama({ host: listen.host, port: o.ollamaPort.value }))
      : Option.none()
    const models = yield* registry.list
    const lines = [
      `shimmy listening on ${url}`,
      `  WebSocket: ${url.replace(/^http/, "ws")}/ws/generate`,
      `  Ollama API: ${url}/ollama`
    ]
    if (Option.isSome(ollama)) lines.push(`  Ollama API alone: ${Server.urlOf(ollama.value)}`)
    if (Option.isSome(o.apiKey)) lines.push("  API key required (/api/health tells callers without it only its status)")
    if (o.corsOrigins.length > 0) lines.push(`  CORS origins: ${o.corsOrigins.join(", ")}`)
    if (models.length === 0) {
      lines.push(
        "No models found. Put GGUF files in ./models, set SHIMMY_MODEL_PATHS or pass --model-dirs (see `shimmy diag`)."
      )
    } else {
      lines.push(`${models.length} model(s):`)
      for (const m of models) {
        const note = m.status === "ok" ? "" : ` [${m.status}${m.reason !== undefined ? `: ${m.reason}` : ""}]`
        lines.push(
          `  ${m.name}  (${[m.architecture, m.quantization].filter((s) => s !== undefined).join(" ") || "gguf"})${note}`
        )
      }
    }
    yield* Console.log(lines.join("\n"))
    // finalizers run in reverse order, so this is said before the server drains
    yield* Effect.addFinalizer(() =>
      Console.log(`shimmy: shutting down; requests in flight may finish within ${Duration.format(o.shutdownTimeout)}`)
    )
    // a runtime that cannot be loaded ends the command as it would have before the server listened
    yield* runtime.llama
    // runs until interrupted (SIGINT/SIGTERM); closing the scope drains the server (Server.serve)
    // and then unloads the models
    return yield* Effect.never
  }).pipe(Effect.scoped)).pipe(
    Command.provide((o) => Layer.merge(liveOf(o), ServerConfig.withOverrides(serverConfigOf(o)))),
    Command.withDescription("Start the HTTP, SSE and WebSocket server")
  )
