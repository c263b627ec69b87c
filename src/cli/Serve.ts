import { Command, Options } from "@effect/cli"
import { Config, Console, Effect, Option } from "effect"
import { InvalidRequest } from "../domain/Errors.js"
import * as Server from "../http/Server.js"
import { ModelRegistry } from "../services/ModelRegistry.js"
import { engineLayer, modelDirs, threads } from "./Shared.js"

const DEFAULT_BIND = `${Server.DEFAULT_HOST}:${Server.DEFAULT_PORT}`

const bind = Options.text("bind").pipe(
  Options.withDescription(`HOST:PORT to listen on, or "auto" for the first free port from ${Server.DEFAULT_PORT} (env SHIMMY_BIND)`),
  Options.withFallbackConfig(Config.string("SHIMMY_BIND").pipe(Config.withDefault(DEFAULT_BIND)))
)

const port = Options.integer("port").pipe(
  Options.withDescription("Port to listen on; overrides the port of --bind (env SHIMMY_PORT)"),
  Options.map(Option.some),
  Options.withFallbackConfig(Config.option(Config.integer("SHIMMY_PORT")))
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
        return yield* Effect.fail(new InvalidRequest({ param: "port", reason: `--port ${portOverride.value} is not a port (0-65535)` }))
      }
      return { host, port: portOverride.value } satisfies Server.ListenOptions
    }
    if (portText === "auto") return { host, port: "auto" } satisfies Server.ListenOptions
    const n = Number(portText)
    if (!/^\d+$/.test(portText) || !validPort(n)) return yield* Effect.fail(badBind(value, `${portText} is not a port (0-65535)`))
    return { host, port: n } satisfies Server.ListenOptions
  })

export const serveCommand = Command.make("serve", { bind, port, modelDirs, threads }, (o) =>
  Effect.gen(function*() {
    const listen = yield* parseBind(o.bind, o.port)
    const registry = yield* ModelRegistry
    // listening comes first: models load when a request first names them
    const server = yield* Server.serve(listen)
    const url = Server.urlOf(server)
    const models = yield* registry.list
    const lines = [`shimmy listening on ${url}`, `  WebSocket: ${url.replace(/^http/, "ws")}/ws/generate`]
    if (models.length === 0) {
      lines.push("No models found. Put GGUF files in ./models, set SHIMMY_MODEL_PATHS or pass --model-dirs (see `shimmy diag`).")
    } else {
      lines.push(`${models.length} model(s):`)
      for (const m of models) {
        const note = m.status === "ok" ? "" : ` [${m.status}${m.reason !== undefined ? `: ${m.reason}` : ""}]`
        lines.push(`  ${m.name}  (${[m.architecture, m.quantization].filter((s) => s !== undefined).join(" ") || "gguf"})${note}`)
      }
    }
    yield* Console.log(lines.join("\n"))
    // runs until interrupted (SIGINT/SIGTERM); closing the scope stops the server and unloads the models
    return yield* Effect.never
  }).pipe(Effect.scoped, Effect.provide(engineLayer(o)))
).pipe(Command.withDescription("Start the HTTP, SSE and WebSocket server"))
