import { Config, ConfigError, Context, Duration, Effect, Either, Layer, Option, Redacted } from "effect"
import * as os from "node:os"
import * as path from "node:path"
import { parseKeepAlive } from "./KeepAlive.js"

const home = os.homedir()

/** Splits a list of paths given as `a:b` (or `a;b`, or `a,b`). */
export const splitPaths = (value: string): ReadonlyArray<string> =>
  value.split(/[,;:]/).map((p) => p.trim()).filter((p) => p.length > 0)

const pathList = (name: string) =>
  Config.string(name).pipe(Config.map(splitPaths), Config.withDefault([] as ReadonlyArray<string>))

/** Every `SHIMMY_*` setting, declared once; CLI options fall back to these. */
export const settings = {
  modelPaths: pathList("SHIMMY_MODEL_PATHS"),
  modelsDir: Config.string("SHIMMY_MODELS_DIR").pipe(Config.withDefault("./models")),
  threads: Config.integer("SHIMMY_THREADS").pipe(
    Config.validate({ message: "SHIMMY_THREADS must be at least 1", validation: (n) => n >= 1 }),
    Config.orElse(() => Config.literal("auto")("SHIMMY_THREADS")),
    Config.withDefault("auto" as const)
  ),
  parallel: Config.integer("SHIMMY_PARALLEL").pipe(
    Config.validate({ message: "SHIMMY_PARALLEL must be between 1 and 64", validation: (n) => n >= 1 && n <= 64 }),
    Config.withDefault(4)
  ),
  contextSize: Config.integer("SHIMMY_CONTEXT_SIZE").pipe(
    Config.validate({ message: "SHIMMY_CONTEXT_SIZE must be at least 64", validation: (n) => n >= 64 }),
    Config.withDefault(4096)
  ),
  maxQueue: Config.integer("SHIMMY_MAX_QUEUE").pipe(
    Config.validate({ message: "SHIMMY_MAX_QUEUE must be at least 0", validation: (n) => n >= 0 }),
    Config.withDefault(64)
  ),
  // 0: no limit (see ShimmyConfigShape.maxLoadedModels)
  maxLoadedModels: Config.integer("SHIMMY_MAX_LOADED_MODELS").pipe(
    Config.validate({
      message: "SHIMMY_MAX_LOADED_MODELS must be at least 0 (0: no limit)",
      validation: (n) => n >= 0
    }),
    Config.withDefault(0)
  ),
  gpu: Config.literal("auto", "cuda", "vulkan", "metal", "off")("SHIMMY_GPU").pipe(Config.withDefault("auto" as const)),
  build: Config.literal("auto", "prebuilt", "local")("SHIMMY_BUILD").pipe(Config.withDefault("auto" as const)),
  // SHIMMY_KEEP_ALIVE in Ollama's words ("5m", "-1"), else SHIMMY_MODEL_IDLE_TIMEOUT ("5 minutes");
  // a value that is set but wrong is an error, never passed over
  modelIdleTimeout: Config.all([
    Config.option(
      Config.string("SHIMMY_KEEP_ALIVE").pipe(
        Config.mapOrFail((text) => {
          const parsed = parseKeepAlive(text)
          return parsed === undefined
            ? Either.left(
              ConfigError.InvalidData(
                [],
                `SHIMMY_KEEP_ALIVE ${
                  JSON.stringify(text)
                } is not a duration: use seconds or a duration like "5m"; -1 keeps models loaded`
              )
            )
            : Either.right(parsed)
        })
      )
    ),
    Config.option(Config.duration("SHIMMY_MODEL_IDLE_TIMEOUT"))
  ]).pipe(
    Config.map(([keepAlive, idle]) =>
      Option.getOrElse(Option.orElse(keepAlive, () => idle), () => Duration.infinity as Duration.Duration)
    )
  ),
  huggingFaceCache: Config.string("HF_HUB_CACHE").pipe(
    Config.orElse(() => Config.string("HF_HOME").pipe(Config.map((h) => path.join(h, "hub")))),
    Config.withDefault(path.join(home, ".cache", "huggingface", "hub"))
  ),
  hubEndpoint: Config.string("HF_ENDPOINT").pipe(
    Config.validate({
      message: "HF_ENDPOINT must be an http(s) URL, like https://huggingface.co",
      validation: (url) => /^https?:\/\//i.test(url) && URL.canParse(url)
    }),
    Config.withDefault("https://huggingface.co")
  ),
  hubToken: Config.option(Config.redacted("HF_TOKEN")).pipe(
    Config.map(Option.filter((token) => Redacted.value(token).trim().length > 0))
  ),
  // where `huggingface-cli login` keeps the token, as huggingface_hub looks for it
  hubTokenFile: Config.string("HF_TOKEN_PATH").pipe(
    Config.orElse(() => Config.string("HF_HOME").pipe(Config.map((h) => path.join(h, "token")))),
    Config.withDefault(path.join(home, ".cache", "huggingface", "token"))
  ),
  ollamaModels: Config.string("OLLAMA_MODELS").pipe(Config.withDefault(path.join(home, ".ollama", "models"))),
  lmStudioDirs: pathList("SHIMMY_LMSTUDIO_DIRS").pipe(
    Config.map((dirs) =>
      dirs.length > 0
        ? dirs
        : [path.join(home, ".lmstudio", "models"), path.join(home, ".cache", "lm-studio", "models")]
    )
  ),
  discoverSystem: Config.boolean("SHIMMY_DISCOVER_SYSTEM").pipe(Config.withDefault(true)),
  probeModels: Config.boolean("SHIMMY_PROBE_MODELS").pipe(Config.withDefault(true)),
  probeTimeout: Config.duration("SHIMMY_PROBE_TIMEOUT").pipe(Config.withDefault(Duration.minutes(2))),
  mmap: Config.boolean("SHIMMY_MMAP").pipe(Config.withDefault(false))
}

export interface ShimmyConfigShape {
  /** explicit model files or directories (`SHIMMY_MODEL_PATHS`, `--model-dirs`) */
  readonly modelPaths: ReadonlyArray<string>
  readonly modelsDir: string
  /** CPU threads per context; `auto` picks by the binary and the cores (see `threadsFor`) */
  readonly threads: number | "auto"
  /** sequences per loaded model: how many requests decode together */
  readonly parallel: number
  /** tokens per sequence, capped at the model's training context */
  readonly contextSize: number
  /** requests that may wait for a sequence before new ones get `ServerBusy` */
  readonly maxQueue: number
  /**
   * models in memory at once; loading one more evicts the least recently used idle one, and a
   * request that needs a slot while every model in memory is in use waits (up to `maxQueue`).
   * 0 (the default): no limit, as before the setting existed: a count is the wrong measure of
   * memory for models from 1 MB to 40 GB, so the default leaves it to the keep-alive
   */
  readonly maxLoadedModels: number
  /** `auto`: node-llama-cpp's detection among its prebuilt binaries (CUDA, Vulkan, Metal), else the CPU */
  readonly gpu: "auto" | "cuda" | "vulkan" | "metal" | "off"
  /**
   * the llama.cpp binary on the CPU: `local`, the one `npm run build:llama` made (OpenMP);
   * `prebuilt`, node-llama-cpp's; `auto`, the local one when there is one and no GPU to use
   */
  readonly build: "auto" | "prebuilt" | "local"
  /**
   * a model unused this long is unloaded; infinite keeps it. The default keep-alive: a request's
   * own (Ollama's `keep_alive`) replaces it for its model
   */
  readonly modelIdleTimeout: Duration.Duration
  readonly huggingFaceCache: string
  /** the hub `shimmy pull` asks (`HF_ENDPOINT`, a mirror); https://huggingface.co when left out */
  readonly hubEndpoint?: string
  /** `HF_TOKEN`, sent to the hub only (gated and private repositories) */
  readonly hubToken?: Option.Option<Redacted.Redacted>
  /** the token file read when `HF_TOKEN` is unset (`HF_TOKEN_PATH`, else `$HF_HOME/token`) */
  readonly hubTokenFile?: string
  readonly ollamaModels: string
  readonly lmStudioDirs: ReadonlyArray<string>
  /** whether to look in the Hugging Face, Ollama and LM Studio stores */
  readonly discoverSystem: boolean
  /** whether a model is first loaded in a child process (see ModelProbe), which llama.cpp may abort instead of this one */
  readonly probeModels: boolean
  /** how long that test load may take before the model counts as failed */
  readonly probeTimeout: Duration.Duration
  /**
   * whether weights are mapped from the file instead of copied into memory: mapped weights load
   * faster and share the page cache, but a file overwritten or truncated while loaded kills the
   * process with SIGBUS
   */
  readonly mmap: boolean
}

export class ShimmyConfig extends Context.Tag("shimmy/ShimmyConfig")<ShimmyConfig, ShimmyConfigShape>() {
  /** Everything from the environment (`SHIMMY_*`, `HF_HUB_CACHE`, `OLLAMA_MODELS`) with defaults. */
  static readonly fromEnv = Layer.effect(ShimmyConfig, Config.all(settings))

  /** The environment's settings with some replaced (the CLI's options). */
  static readonly withOverrides = (overrides: Partial<ShimmyConfigShape>) =>
    Layer.effect(
      ShimmyConfig,
      Effect.map(Config.all(settings), (base): ShimmyConfigShape => ({ ...base, ...overrides }))
    )
}
