import { Command, Options } from "@effect/cli"
import { Layer, Option } from "effect"
import { openAiServices } from "../http/OpenAi.js"
import { LlamaEngine } from "../services/LlamaEngine.js"
import { ModelRegistry } from "../services/ModelRegistry.js"
import { type ShimmyConfigShape, ShimmyConfig, splitPaths } from "../services/ShimmyConfig.js"

/** `--model-dirs a,b` (repeatable): model files or directories, instead of SHIMMY_MODEL_PATHS. */
export const modelDirs = Options.text("model-dirs").pipe(
  Options.withDescription("Model files or directories to search (comma-separated, repeatable); default: SHIMMY_MODEL_PATHS"),
  Options.repeated,
  Options.map((values) => values.flatMap(splitPaths))
)

export const threads = Options.integer("threads").pipe(
  Options.withDescription("CPU threads per context (default: SHIMMY_THREADS, else half the cores, at least 1)"),
  Options.optional
)

export const verbose = Options.boolean("verbose").pipe(
  Options.withAlias("v"),
  Options.withDescription("Verbose output: timings and what llama.cpp reports")
)

export interface CommonOptions {
  readonly modelDirs: ReadonlyArray<string>
  readonly threads: Option.Option<number>
}

export const configOverrides = (options: CommonOptions): Partial<ShimmyConfigShape> => ({
  ...(options.modelDirs.length > 0 ? { modelPaths: options.modelDirs } : {}),
  ...(Option.isSome(options.threads) ? { threads: options.threads.value } : {})
})

/** The registry alone: listing needs no native runtime. */
export const registryLayer = (options: CommonOptions) =>
  ModelRegistry.Default.pipe(Layer.provide(ShimmyConfig.withOverrides(configOverrides(options))))

/** Engine, registry and config, as the server builds them. */
export const engineLayer = (options: CommonOptions) =>
  Layer.mergeAll(LlamaEngine.Default, openAiServices).pipe(
    Layer.provideMerge(ModelRegistry.Default),
    Layer.provideMerge(ShimmyConfig.withOverrides(configOverrides(options)))
  )

/** The root command; subcommands read the global `--verbose` from it. */
export const root = Command.make("shimmy", { verbose })
