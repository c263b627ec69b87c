import { Command, Options } from "@effect/cli"
import { Option } from "effect"
import { liveWith } from "../services/Live.js"
import { type ShimmyConfigShape, splitPaths } from "../services/ShimmyConfig.js"

/** `--model-dirs a,b` (repeatable): model files or directories, instead of SHIMMY_MODEL_PATHS. */
export const modelDirs = Options.text("model-dirs").pipe(
  Options.withDescription(
    "Model files or directories to search (comma-separated, repeatable); default: SHIMMY_MODEL_PATHS"
  ),
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
  readonly threads?: Option.Option<number>
}

export const configOverrides = (options: CommonOptions): Partial<ShimmyConfigShape> => ({
  ...(options.modelDirs.length > 0 ? { modelPaths: options.modelDirs } : {}),
  ...(options.threads !== undefined && Option.isSome(options.threads) ? { threads: options.threads.value } : {})
})

/** The `Live` layer with a command's options over the environment's settings (`Command.provide`). */
export const live = <O extends CommonOptions>(options: O) => liveWith(configOverrides(options))

/** The root command; subcommands read the global `--verbose` from it. */
export const root = Command.make("shimmy", { verbose })
