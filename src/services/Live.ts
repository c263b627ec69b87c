import { Layer } from "effect"
import { Embeddings } from "./Embeddings.js"
import { Grammar } from "./Grammar.js"
import { LlamaEngine } from "./LlamaEngine.js"
import { LlamaRuntime } from "./LlamaRuntime.js"
import { Metrics } from "./Metrics.js"
import { ModelDigest } from "./ModelDigest.js"
import { ModelProbe } from "./ModelProbe.js"
import { ModelRegistry } from "./ModelRegistry.js"
import { Puller } from "./Puller.js"
import { ShimmyConfig, type ShimmyConfigShape } from "./ShimmyConfig.js"

/**
 * Everything Shimmy runs on, composed once: the registry (models discovered and their headers
 * read once), the child-process probe of a model's first load, the native runtime (loaded on first use, so building this is quick and a command
 * that only lists models never loads llama.cpp), grammars, the engine, its metrics and embeddings. The server,
 * every CLI command and the tests provide this one layer with a `ShimmyConfig`.
 */
export const Live = Layer.merge(Embeddings.DefaultWithoutDependencies, Puller.Default).pipe(
  Layer.provideMerge(LlamaEngine.DefaultWithoutDependencies),
  Layer.provideMerge(Layer.mergeAll(
    ModelRegistry.Default,
    Grammar.DefaultWithoutDependencies,
    ModelProbe.Default,
    ModelDigest.Default,
    Metrics.Default
  )),
  Layer.provideMerge(LlamaRuntime.layer)
)

export type LiveServices = Layer.Layer.Success<typeof Live>

/** `Live` with its configuration: the environment's (`SHIMMY_*`) with `overrides` on top. */
export const liveWith = (overrides: Partial<ShimmyConfigShape> = {}) =>
  Live.pipe(Layer.provideMerge(ShimmyConfig.withOverrides(overrides)))
