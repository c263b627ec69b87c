/**
 * Shimmy as a library: the domain (schemas, errors, the generation request and its events) and
 * the services (registry, runtime, engine, grammars, embeddings) with the one `Live` layer that
 * composes them, for other Effect apps. The HTTP server is its own entry: `shimmy/http`.
 */
export * as Anthropic from "./domain/Anthropic.js"
export * from "./domain/Errors.js"
export * from "./domain/Generation.js"
export * as LlamaServer from "./domain/LlamaServer.js"
export * from "./domain/Model.js"
export * as Ollama from "./domain/Ollama.js"
export * as OpenAi from "./domain/OpenAi.js"
export * as Pull from "./domain/Pull.js"
export * as ResponseObject from "./domain/ResponseObject.js"
export * as Responses from "./domain/Responses.js"
export * as SeedApi from "./domain/SeedApi.js"
export type { ChatCapabilities } from "./services/ChatFormat.js"
export { type EmbeddingResult, Embeddings } from "./services/Embeddings.js"
export { Grammar } from "./services/Grammar.js"
export { parseReference, type Reference } from "./services/HubRef.js"
export { type Expiry, parseKeepAlive } from "./services/KeepAlive.js"
export { Live, type LiveServices, liveWith } from "./services/Live.js"
export {
  chatCapabilities,
  LlamaEngine,
  type LoadedModel,
  renderPrompt,
  type ResidentModel,
  type SchedulerStats
} from "./services/LlamaEngine.js"
export {
  LlamaRuntime,
  type LlamaRuntimeShape,
  stepThreadsFor,
  type Threads,
  threadsFor,
  usesOpenMp
} from "./services/LlamaRuntime.js"
export { Metrics } from "./services/Metrics.js"
export { ModelDigest } from "./services/ModelDigest.js"
export { ModelRegistry, type RegisteredModel, type SearchedLocation } from "./services/ModelRegistry.js"
export { Puller, type PullOptions } from "./services/Puller.js"
export { settings, ShimmyConfig, type ShimmyConfigShape } from "./services/ShimmyConfig.js"
export { StopMatcher } from "./services/StopMatcher.js"
export * as Tokenizer from "./services/Tokenizer.js"
export { type ParsedEvent, type ThoughtSyntax, ToolCallParser, type ToolSyntax } from "./services/ToolCallParser.js"
