/**
 * Shimmy as a library: the schemas, errors and layers the CLI and the server are built from, for
 * other Effect apps to compose.
 */
export * from "./domain/Errors.js"
export * from "./domain/Generate.js"
export * from "./domain/Generation.js"
export * from "./domain/Model.js"
export { chatCapabilities, LlamaEngine, type LoadedModel, renderPrompt } from "./services/LlamaEngine.js"
export type { ChatCapabilities } from "./services/ChatFormat.js"
export { type ParsedEvent, ToolCallParser, type ThoughtSyntax, type ToolSyntax } from "./services/ToolCallParser.js"
export { LlamaRuntime, threadsFor, usesOpenMp } from "./services/LlamaRuntime.js"
export { ModelRegistry, type RegisteredModel, type SearchedLocation } from "./services/ModelRegistry.js"
export { settings, ShimmyConfig, type ShimmyConfigShape } from "./services/ShimmyConfig.js"
export { StopMatcher } from "./services/StopMatcher.js"
export { Embeddings, type EmbeddingResult } from "./services/Embeddings.js"
export { Grammar } from "./services/Grammar.js"
/** The HTTP application (seed API and `/v1`), and layers to serve it. */
export { app, layer as serverLayer, listen, type ListenOptions, serve } from "./http/Server.js"
export { openAiServices } from "./http/OpenAi.js"
export { ServerConfig, type ServerConfigShape, serverSettings } from "./http/ServerConfig.js"
