import { HttpServer } from "@effect/platform"
import { Context, Duration, Effect, Layer, ManagedRuntime, Option } from "effect"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Server from "../../src/http/Server.js"
import { ServerConfig, type ServerConfigShape } from "../../src/http/ServerConfig.js"
import { Live } from "../../src/services/Live.js"
import { ShimmyConfig, type ShimmyConfigShape } from "../../src/services/ShimmyConfig.js"
import { testConfig as completeConfig } from "./models.js"

/**
 * The real server, in-process, on 127.0.0.1 and an ephemeral port, over the test models in
 * `../shared/models` (beside the repository root, as in CI) with the system stores left out.
 *
 * Effect tests:  `layer(TestServer.layer)("...", (it) => it.effect("...", () => Effect.gen(function*() {
 *                  const { url } = yield* TestServer })))`
 * Plain vitest:  `const server = await startServer(); ...; await server.close()`
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")

/** The shared test models, relative to the repository root. */
export const modelsDir = path.resolve(repoRoot, "../shared/models")

/**
 * Config for tests, complete and not from the environment: only the shared models, one thread
 * (fastest on a small machine), no system stores.
 */
export const testConfig = (overrides: Partial<ShimmyConfigShape> = {}) =>
  Layer.succeed(
    ShimmyConfig,
    completeConfig({ modelPaths: [modelsDir], parallel: 4, maxQueue: 64, contextSize: 4096, ...overrides })
  )

/** The `Live` layer as `shimmy serve` builds it, over the test config. */
export const testServices = (overrides: Partial<ShimmyConfigShape> = {}) =>
  Live.pipe(Layer.provideMerge(testConfig(overrides)))

/**
 * Server settings for tests, not from the environment: open, no CORS, the 1 MiB body limit, and
 * no grace period on close (a test that wants one says so).
 */
export const testServerConfig = (overrides: Partial<ServerConfigShape> = {}) =>
  Layer.succeed(ServerConfig, {
    apiKey: Option.none(),
    corsOrigins: [],
    maxBodyBytes: 1024 * 1024,
    shutdownTimeout: Duration.zero,
    bodyTimeout: Duration.seconds(30),
    ...overrides
  })

export interface RunningServer {
  /** `http://127.0.0.1:PORT`, no trailing slash */
  readonly url: string
  /** `ws://127.0.0.1:PORT` */
  readonly wsUrl: string
  readonly port: number
  /** the Ollama-only listener's `http://127.0.0.1:PORT`, when one was asked for */
  readonly ollamaUrl?: string
}

export interface TestListeners {
  /** also start the Ollama-only listener (`--ollama-port`) on an ephemeral port */
  readonly ollama?: boolean
  /** the address to bind (default 127.0.0.1) */
  readonly host?: string
}

export class TestServer extends Context.Tag("test/TestServer")<TestServer, RunningServer>() {
  /** The running server and the services behind it (for in-process comparisons). */
  static readonly layerWith = (
    overrides: Partial<ShimmyConfigShape> = {},
    server: Partial<ServerConfigShape> = {},
    listeners: TestListeners = {}
  ) =>
    Layer.scoped(
      TestServer,
      Effect.gen(function*() {
        const server = yield* HttpServer.HttpServer
        const url = Server.urlOf(server)
        const port = server.address._tag === "TcpAddress" ? server.address.port : 0
        const ollama = listeners.ollama === true
          ? Server.urlOf(yield* Server.serveOllama({ host: "127.0.0.1", port: 0 }))
          : undefined
        return {
          url,
          wsUrl: url.replace(/^http/, "ws"),
          port,
          ...(ollama !== undefined ? { ollamaUrl: ollama } : {})
        } satisfies RunningServer
      })
    ).pipe(
      Layer.provideMerge(Server.layer({ host: listeners.host ?? "127.0.0.1", port: 0 })),
      Layer.provideMerge(Layer.merge(testServices(overrides), testServerConfig(server)))
    )

  static readonly layer = TestServer.layerWith()
}

/** Starts the server; `close` stops it and unloads the models. */
export const startServer = async (
  overrides: Partial<ShimmyConfigShape> = {},
  settings: Partial<ServerConfigShape> = {},
  listeners: TestListeners = {}
): Promise<RunningServer & { readonly close: () => Promise<void> }> => {
  const runtime = ManagedRuntime.make(TestServer.layerWith(overrides, settings, listeners))
  const server = await runtime.runPromise(TestServer)
  return { ...server, close: () => runtime.dispose() }
}
