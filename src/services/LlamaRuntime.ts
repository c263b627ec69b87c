import { Context, Deferred, Effect, Layer, Option } from "effect"
import type * as NodeLlamaCpp from "node-llama-cpp"
import type { Llama } from "node-llama-cpp"
import * as fs from "node:fs/promises"
import { createRequire } from "node:module"
import * as path from "node:path"
import { RuntimeUnavailable } from "../domain/Errors.js"
import { ShimmyConfig } from "./ShimmyConfig.js"

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

let loaded: typeof NodeLlamaCpp | undefined

/**
 * node-llama-cpp, imported on first use: importing it costs more than the rest of the command
 * together (~400 modules), so nothing imports its values statically and the server listens
 * before it is loaded. Node caches the module; later uses resolve at once.
 */
export const loadNodeLlamaCpp: Effect.Effect<typeof NodeLlamaCpp, RuntimeUnavailable> = Effect.tryPromise({
  try: () => import("node-llama-cpp").then((module) => (loaded = module)),
  catch: (cause) => new RuntimeUnavailable({ reason: `cannot load node-llama-cpp: ${describe(cause)}` })
})

/** The module `loadNodeLlamaCpp` loaded, for synchronous code that runs only after it (a model exists). */
export const loadedNodeLlamaCpp = (): typeof NodeLlamaCpp => {
  if (loaded === undefined) throw new Error("node-llama-cpp is used before the runtime loaded it")
  return loaded
}

/** Whether the loaded llama.cpp binary runs its threads with OpenMP (a local build can). */
export const usesOpenMp = (llama: Llama): boolean => /OPENMP = 1/.test(llama.systemInfo)

/**
 * The threads of libuv's pool as libuv sizes it from UV_THREADPOOL_SIZE when the pool is first
 * used: 4 when unset, else its leading integer (`atoi`), 0 (or none) meaning 1, at most 1024.
 */
export const poolThreads = (setting: string | undefined): number => {
  if (setting === undefined) return 4
  const n = Number.parseInt(setting, 10)
  if (Number.isNaN(n) || n === 0) return 1
  // a negative count wraps around as libuv's unsigned one, so it is the most too
  return n < 0 || n > 1024 ? 1024 : n
}

/**
 * What to say when libuv's pool has more than one thread and decodes run on several OpenMP
 * threads. node-llama-cpp runs each decode on whichever pool thread is free, and every thread that
 * starts an OpenMP region leads a team of its own: the team that decoded last spins on while the
 * next decode's team is woken, so the two fight for the cores. Measured on 2 cores (BENCHMARKS.md,
 * eleventh run): a pool of 4 made 20-27% fewer tokens/s than a pool of 1. `bin/shimmy.js` sets the
 * pool to 1; a program that runs Shimmy's layers in its own process has to set it before Node starts.
 */
export const poolWarning = (pool: number, openmp: boolean, threads: number): Option.Option<string> =>
  pool > 1 && openmp && threads > 1
    ? Option.some(
      `libuv's thread pool has ${pool} threads (UV_THREADPOOL_SIZE): with the OpenMP build each of them ` +
        "that runs a decode leads its own OpenMP team, and the teams' spinning threads slow each other " +
        "down; set UV_THREADPOOL_SIZE=1 before Node starts (bin/shimmy.js does)"
    )
    : Option.none()

/**
 * The threads a context decodes with: a step that carries more than one token (sequences decoding
 * together, a prompt) uses `batch`; a step of one token (a sequence generating alone) uses `lone`.
 *
 * Measured on a 2-core machine (BENCHMARKS.md, third run: "Threads by step"): node-llama-cpp's prebuilt CPU
 * binary (no OpenMP) is 2.2x faster with 2 threads than with 1 in-process, but its threads spin at
 * ggml's barriers, so whatever else runs meanwhile (Node's thread writing each streamed token, the
 * client) stalls the whole decode: a lone streamed sequence on bench-25m fell from 240 to ~90 tok/s
 * with 2 threads, while 4 sequences together gained 1.5x (bench-110m) because the decode is then
 * long against the writing. So `auto` takes every core for a batch but leaves one to Node on
 * bigger machines, and half the cores for a lone sequence; each kind of step then keeps whichever
 * of the two measures faster (BatchSchedule, StepThreads). The same holds for a local OpenMP build
 * (measured on an AMD machine with 2 cores: its 2-thread steps beat 1-thread ones at every size,
 * where the prebuilt binary's lost). An explicit SHIMMY_THREADS is used for every step.
 * Oversubscribing is ruinous (3 or 4 threads on 2 cores: ~1 tok/s), so neither ever exceeds the cores.
 */
export interface Threads {
  readonly batch: number
  readonly lone: number
}

export const stepThreadsFor = (llama: Llama, setting: number | "auto"): Threads => {
  if (setting !== "auto") return { batch: setting, lone: setting }
  const cores = Math.max(1, llama.cpuMathCores)
  return { batch: cores <= 2 ? cores : cores - 1, lone: Math.max(1, Math.floor(cores / 2)) }
}

/** The threads a context is created with: the most a step of it uses. */
export const threadsFor = (llama: Llama, setting: number | "auto"): number => stepThreadsFor(llama, setting).batch

/**
 * Which llama.cpp binary runs on the CPU (SHIMMY_BUILD): node-llama-cpp's prebuilt one, or the one
 * `npm run build:llama` built on this machine with OpenMP. The prebuilt binary has no thread pool:
 * every decode on 2 threads starts a thread, and on a 2-core VM 1 in 12 to 1 in 3 of them (in a server;
 * 1 in 100 in a bare loop) was placed on the core of the thread that started it and waited there
 * for the scheduler's tick while the other spun at ggml's barrier: a 2 ms decode took 15-40 ms, and
 * a second thread lost to one. OpenMP keeps its threads where they are: no such tail (BENCHMARKS.md,
 * sixth run). `auto` takes the local build when there is one, unless node-llama-cpp finds a GPU
 * (the local build is CPU-only); `local` insists on it.
 */
export type BuildChoice =
  | { readonly _tag: "Prebuilt"; readonly reason: string }
  | { readonly _tag: "Local"; readonly reason: string }
  | { readonly _tag: "Refused"; readonly reason: string }

export const chooseBuild = async (options: {
  readonly setting: "auto" | "prebuilt" | "local"
  readonly gpu: "auto" | "cuda" | "vulkan" | "metal" | "off"
  /** the local build's folder, if `npm run build:llama` made one */
  readonly localBuild: string | undefined
  /** whether node-llama-cpp's detection finds a GPU it has a binary for (asked only for gpu `auto`) */
  readonly gpuFound: () => Promise<boolean>
}): Promise<BuildChoice> => {
  const { gpu, localBuild, setting } = options
  if (setting === "prebuilt") return { _tag: "Prebuilt", reason: "SHIMMY_BUILD=prebuilt" }
  if (localBuild === undefined) {
    return setting === "local"
      ? { _tag: "Refused", reason: "SHIMMY_BUILD=local, but there is no local build: run `npm run build:llama`" }
      : { _tag: "Prebuilt", reason: "auto: no local build (npm run build:llama)" }
  }
  if (gpu !== "auto" && gpu !== "off") {
    return setting === "local"
      ? { _tag: "Refused", reason: `SHIMMY_BUILD=local is CPU-only, and SHIMMY_GPU=${gpu} asks for a GPU` }
      : { _tag: "Prebuilt", reason: `auto: SHIMMY_GPU=${gpu} needs a prebuilt GPU binary` }
  }
  if (setting === "local") return { _tag: "Local", reason: "SHIMMY_BUILD=local" }
  if (gpu === "off") return { _tag: "Local", reason: "auto: the local build (SHIMMY_GPU=off)" }
  return (await options.gpuFound())
    ? { _tag: "Prebuilt", reason: "auto: node-llama-cpp found a GPU; the local build is CPU-only" }
    : { _tag: "Local", reason: "auto: the local build (no GPU found)" }
}

/**
 * The folder of the build `npm run build:llama` made (node-llama-cpp's `lastBuild.json` under its
 * package's `llama/`, naming a folder of `localBuilds/` with the addon in it, and the sources it
 * was built from beside it); undefined if none.
 */
export const findLocalBuild = async (llamaDirectory?: string): Promise<string | undefined> => {
  try {
    const llamaDir = llamaDirectory ??
      path.resolve(path.dirname(createRequire(import.meta.url).resolve("node-llama-cpp")), "..", "llama")
    const info: unknown = JSON.parse(await fs.readFile(path.join(llamaDir, "lastBuild.json"), "utf8"))
    const folder = (info as { readonly folderName?: unknown } | null)?.folderName
    if (typeof folder !== "string" || folder === "" || folder.includes("/") || folder.includes("..")) return undefined
    const dir = path.join(llamaDir, "localBuilds", folder)
    await fs.access(path.join(dir, "Release", "llama-addon.node"))
    // node-llama-cpp reads a local build's grammars (JSON mode, tools) from the sources it was built
    // from, and only where they are a clone it made (`source download`)
    await Promise.all(
      [["llama.cpp", ".git"], ["llama.cpp", "grammars"], ["llama.cpp.info.json"]].map((parts) =>
        fs.access(path.join(llamaDir, ...parts))
      )
    )
    return dir
  } catch {
    return undefined
  }
}

/** `chooseBuild` for these settings on this machine. */
export const resolveBuild = (
  config: { readonly build: "auto" | "prebuilt" | "local"; readonly gpu: "auto" | "cuda" | "vulkan" | "metal" | "off" },
  module: Pick<typeof NodeLlamaCpp, "getLlamaGpuTypes">
): Promise<BuildChoice> =>
  findLocalBuild().then((localBuild) =>
    chooseBuild({
      setting: config.build,
      gpu: config.gpu,
      localBuild,
      gpuFound: () =>
        module.getLlamaGpuTypes("supported").then((types) => types.some((type) => type !== false), () => false)
    })
  )

/** What the binding runs on, and why: for `shimmy diag` and `/api/health`. */
export interface Backend {
  readonly backend: "cpu" | "cuda" | "vulkan" | "metal"
  /** SHIMMY_GPU */
  readonly setting: "auto" | "cuda" | "vulkan" | "metal" | "off"
  readonly reason: string
  /** node-llama-cpp's prebuilt binary, or one built on this machine */
  readonly build: "prebuilt" | "local"
  readonly openmp: boolean
  /** threads per context for SHIMMY_THREADS: a step of several tokens uses `threads`, one of a single token `lone_threads` */
  readonly threads: number
  readonly loneThreads: number
}

export const backendOf = (
  llama: Llama,
  setting: Backend["setting"],
  threadsSetting: number | "auto"
): Backend => {
  const backend = llama.gpu === false ? "cpu" : llama.gpu
  const reason = setting === "off"
    ? "SHIMMY_GPU=off: the CPU"
    : setting !== "auto"
    ? `SHIMMY_GPU=${setting}`
    : backend === "cpu"
    ? "auto: no usable CUDA, Vulkan or Metal device (node-llama-cpp's detection): the CPU"
    : `auto: node-llama-cpp found ${backend}`
  const threads = stepThreadsFor(llama, threadsSetting)
  return {
    backend,
    setting,
    reason,
    build: llama.buildType === "localBuild" ? "local" : "prebuilt",
    openmp: usesOpenMp(llama),
    threads: threads.batch,
    loneThreads: threads.lone
  }
}

interface DisposeGuard {
  _preventionHandles: number
  _activateLocksIfNeeded: () => void
}

const guardOf = (llama: Llama): DisposeGuard | undefined => {
  const guard = (llama as unknown as { readonly _backendDisposeGuard?: Partial<DisposeGuard> })._backendDisposeGuard
  return typeof guard?._preventionHandles === "number" && typeof guard._activateLocksIfNeeded === "function"
    ? guard as DisposeGuard
    : undefined
}

// how often, and how many unchanged looks, before a hold on the binding counts as leaked
const LOOK_MILLIS = 10
const STILL_LOOKS = 10

/**
 * Disposes the binding, letting go of the holds that failed model loads leak; returns how many.
 * node-llama-cpp (3.21) makes a model object before llama.cpp loads the file, and the object holds
 * the binding (a prevent-disposal handle) until it is disposed. When the load fails the object is
 * dropped. The binding's dispose disposes the models it can still reach through weak references,
 * so once a failed one has been garbage-collected its hold is never let go and `llama.dispose()`
 * waits forever: a server that had met a corrupt model could not exit. Call it only when everything
 * made with the binding has been disposed; the holds still there once the reachable failed models
 * have let go (no change for STILL_LOOKS looks) are those leaks.
 */
export const disposeLlama = async (llama: Llama): Promise<number> => {
  let settled = false
  const disposed = llama.dispose().finally(() => (settled = true))
  const guard = guardOf(llama)
  let last = -1
  let still = 0
  while (guard !== undefined && !settled) {
    await Promise.race([disposed, new Promise((resolve) => setTimeout(resolve, LOOK_MILLIS))])
    if (settled) break
    const held = guard._preventionHandles
    still = held === last ? still + 1 : 0
    last = held
    if (held > 0 && still >= STILL_LOOKS) {
      guard._preventionHandles = 0
      guard._activateLocksIfNeeded()
      await disposed
      return held
    }
  }
  await disposed
  return 0
}

/** The native llama.cpp binding, loaded once on first use. */
export interface LlamaRuntimeShape {
  /** The binding; the first use starts loading it, later ones wait for the same load. */
  readonly llama: Effect.Effect<Llama, RuntimeUnavailable>
  /** The binding if it has loaded, without starting a load (for status reports). */
  readonly current: Effect.Effect<Option.Option<Llama>>
  /** Why the loaded binding is the build it is (SHIMMY_BUILD, `chooseBuild`); none before it loads or for a caller's own. */
  readonly buildReason: Effect.Effect<Option.Option<string>>
}

/**
 * One binding per process, disposed with its scope. Loading it (importing node-llama-cpp and
 * `getLlama`) takes longer than the rest of start-up, so it happens on first use, in the layer's
 * scope rather than the caller's fiber: the server listens and answers while it loads, commands
 * that only list models never load it, and a request that goes away leaves the load running for
 * the next one.
 */
export class LlamaRuntime extends Context.Tag("shimmy/LlamaRuntime")<LlamaRuntime, LlamaRuntimeShape>() {
  /** Uses the build SHIMMY_BUILD chooses (`chooseBuild`); never downloads or compiles anything. */
  static readonly make = Effect.gen(function*() {
    const config = yield* ShimmyConfig
    const scope = yield* Effect.scope
    const result = yield* Deferred.make<Llama, RuntimeUnavailable>()
    let buildReason: string | undefined
    const load = Effect.gen(function*() {
      const nodeLlamaCpp = yield* loadNodeLlamaCpp
      const { getLlama, LlamaLogLevel } = nodeLlamaCpp
      const choice = yield* Effect.promise(() => resolveBuild(config, nodeLlamaCpp))
      if (choice._tag === "Refused") return yield* new RuntimeUnavailable({ reason: choice.reason })
      const common = {
        progressLogs: false,
        logLevel: LlamaLogLevel.error,
        logger: (_level: unknown, message: string) => process.stderr.write(`[llama.cpp] ${message}\n`)
      } as const
      const llama = yield* Effect.tryPromise({
        try: () =>
          choice._tag === "Local"
            // node-llama-cpp falls back to its prebuilt binaries if the local build fails to load
            ? getLlama("lastBuild", { ...common, usePrebuiltBinaries: true, skipDownload: true })
            : getLlama({
              ...common,
              gpu: config.gpu === "off" ? false : config.gpu,
              build: "never",
              usePrebuiltBinaries: true,
              skipDownload: true
            }),
        catch: (cause) => new RuntimeUnavailable({ reason: describe(cause) })
      })
      buildReason = choice._tag === "Local" && llama.buildType !== "localBuild"
        ? `${choice.reason}, which failed to load: node-llama-cpp's fallback`
        : choice.reason
      yield* Effect.logDebug(
        `llama.cpp: the ${llama.buildType === "localBuild" ? "local" : "prebuilt"} build (${buildReason})`
      )
      const pool = poolWarning(
        poolThreads(process.env.UV_THREADPOOL_SIZE),
        usesOpenMp(llama),
        stepThreadsFor(llama, config.threads).batch
      )
      if (Option.isSome(pool)) yield* Effect.logWarning(pool.value)
      return llama
    }).pipe(Effect.withSpan("LlamaRuntime.load"))
    // this scope closes after everything that used the binding (the engine, embeddings)
    yield* Effect.addFinalizer(() =>
      Deferred.poll(result).pipe(
        Effect.flatMap(
          Option.match({
            onNone: () => Effect.void,
            onSome: (loaded) => Effect.ignore(Effect.flatMap(loaded, dispose))
          })
        )
      )
    )
    const start = yield* Effect.once(Effect.forkIn(Effect.intoDeferred(load, result), scope))
    return {
      llama: Effect.zipRight(start, Deferred.await(result)),
      current: Deferred.poll(result).pipe(
        Effect.flatMap(Option.match({
          onNone: () => Effect.succeedNone,
          onSome: (loaded) => Effect.option(loaded)
        }))
      ),
      buildReason: Effect.sync(() => Option.fromNullable(buildReason))
    } satisfies LlamaRuntimeShape
  })

  static readonly layer = Layer.scoped(LlamaRuntime, LlamaRuntime.make)

  /** A binding the caller loaded and owns (not disposed here). */
  static readonly fromLlama = (llama: Llama) =>
    Layer.succeed(LlamaRuntime, {
      llama: Effect.succeed(llama),
      current: Effect.succeedSome(llama),
      buildReason: Effect.succeedNone
    })
}

const dispose = (llama: Llama) =>
  Effect.promise(() => disposeLlama(llama)).pipe(
    Effect.flatMap((leaked) =>
      leaked > 0 ? Effect.logDebug(`let go of ${leaked} holds on llama.cpp leaked by failed model loads`) : Effect.void
    )
  )
