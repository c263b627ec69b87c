import { Duration, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { ShimmyConfig, type ShimmyConfigShape } from "../../src/services/ShimmyConfig.js"

/** `../shared/models` beside the repository (its real path: discovery resolves symlinks), read in place. */
export const SHARED_MODELS = fs.realpathSync(
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../shared/models")
)
export const sharedModel = (file: string) => path.join(SHARED_MODELS, file)

/** A complete configuration for tests: nothing from the environment or the user's stores. */
export const testConfig = (overrides: Partial<ShimmyConfigShape> = {}): ShimmyConfigShape => ({
  modelPaths: [SHARED_MODELS],
  modelsDir: "/nonexistent/shimmy-models",
  threads: 1,
  parallel: 2,
  contextSize: 2048,
  maxQueue: 8,
  maxLoadedModels: 0,
  gpu: "off",
  build: "prebuilt",
  modelIdleTimeout: Duration.infinity,
  huggingFaceCache: "/nonexistent/hf",
  ollamaModels: "/nonexistent/ollama",
  lmStudioDirs: [],
  discoverSystem: false,
  probeModels: true,
  probeTimeout: Duration.seconds(60),
  mmap: false,
  ...overrides
})

export const testConfigLayer = (overrides: Partial<ShimmyConfigShape> = {}) =>
  Layer.succeed(ShimmyConfig, testConfig(overrides))

/** node-llama-cpp's prebuilt CPU binary, straight, for tests of its internals: never built or downloaded. */
export const prebuiltLlama = () =>
  import("node-llama-cpp").then(({ getLlama, LlamaLogLevel }) =>
    getLlama({
      gpu: false,
      build: "never",
      usePrebuiltBinaries: true,
      skipDownload: true,
      logLevel: LlamaLogLevel.error
    })
  )
