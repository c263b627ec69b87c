/**
 * Shimmy's HTTP application as a library (`shimmy/http`): the app (guard and route table), the
 * server as a scoped effect or a layer, and its settings. It needs the services of `Live`:
 *
 *   Server.layer({ host: "127.0.0.1", port: 11435 }).pipe(
 *     Layer.provide(Layer.merge(liveWith({ modelPaths: ["./models"] }), ServerConfig.fromEnv)))
 */
export { type Described, described, type Dialect, type Route, type RouteApi } from "./Dialect.js"
export * from "./Failures.js"
export { withDocs } from "./openapi/Endpoints.js"
export * as OpenApi from "./openapi/OpenApi.js"
export { type ErrorReply, replyFor } from "./Reply.js"
export { dialectOf, mainTable, makeTable, mount, ollamaTable, router, routes, type RouteTable } from "./Routes.js"
export {
  app,
  appOf,
  type AppRequirements,
  DEFAULT_HOST,
  DEFAULT_PORT,
  layer,
  listen,
  ListenFailed,
  type ListenOptions,
  serve,
  serveOllama,
  urlOf
} from "./Server.js"
export { ServerConfig, type ServerConfigShape, serverSettings } from "./ServerConfig.js"
