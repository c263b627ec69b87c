import { Command } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import { formatBytes } from "../Format.js"
import {
  backendOf,
  LlamaRuntime,
  loadNodeLlamaCpp,
  poolThreads,
  poolWarning,
  usesOpenMp
} from "../services/LlamaRuntime.js"
import { ModelRegistry } from "../services/ModelRegistry.js"
import { ShimmyConfig } from "../services/ShimmyConfig.js"
import { VERSION } from "../Version.js"
import { live, modelDirs, threads } from "./Shared.js"

const FEATURES = ["avx", "avx2", "avx512f", "avx512_bf16", "avx_vnni", "fma", "f16c", "neon", "asimd", "sve"]

const cpuFeatures = Effect.promise(() =>
  fs.readFile("/proc/cpuinfo", "utf8").then(
    (text) => {
      const flags = new Set((/^(?:flags|Features)\s*:\s*(.*)$/m.exec(text)?.[1] ?? "").split(/\s+/))
      return FEATURES.filter((f) => flags.has(f))
    },
    () => [] as Array<string>
  )
)

export const diagCommand = Command.make("diag", { modelDirs, threads }, () =>
  Effect.gen(function*() {
    const config = yield* ShimmyConfig
    const registry = yield* ModelRegistry
    const runtime = yield* LlamaRuntime
    const llama = yield* runtime.llama
    const buildReason = Option.getOrElse(yield* runtime.buildReason, () => "the caller's binding")
    const cpus = os.cpus()
    const { getLlamaGpuTypes } = yield* loadNodeLlamaCpp
    const gpus = yield* Effect.promise(() => getLlamaGpuTypes("supported"))
    const backend = backendOf(llama, config.gpu, config.threads)
    const pool = poolThreads(process.env.UV_THREADPOOL_SIZE)
    const lines = [
      `shimmy        ${VERSION}`,
      `node          ${process.version}`,
      `os            ${os.type()} ${os.release()} ${os.arch()}`,
      `cpu           ${cpus[0]?.model ?? "unknown"} (${os.availableParallelism()} cores)`,
      `cpu features  ${(yield* cpuFeatures).join(" ") || "unknown"}`,
      `memory        ${formatBytes(os.totalmem())} total, ${formatBytes(os.freemem())} free`,
      `threads       ${backend.threads} per context${
        backend.loneThreads < backend.threads
          ? `, a step ${backend.loneThreads} or ${backend.threads}, whichever measures faster for its size`
          : ""
      } (SHIMMY_THREADS=${config.threads}${usesOpenMp(llama) ? ", OpenMP build" : ", prebuilt without OpenMP"})`,
      `thread pool   ${pool} (UV_THREADPOOL_SIZE: libuv's threads, which run node-llama-cpp's decodes and samplings)`,
      ...Option.match(poolWarning(pool, backend.openmp, backend.threads), {
        onNone: () => [],
        onSome: (warning) => [`warning       ${warning}`]
      }),
      `parallel      ${config.parallel} sequences per model, context ${config.contextSize} tokens each`,
      `llama.cpp     ${llama.llamaCppRelease.release} (${backend.build} build${
        backend.openmp ? ", OpenMP" : ""
      }; ${buildReason})`,
      `backend       ${backend.backend} (${backend.reason})`,
      `gpu support   ${gpus.filter((g) => g !== false).join(", ") || "none"} (SHIMMY_GPU=${config.gpu})`,
      "model directories:"
    ]
    for (const s of yield* registry.searched) {
      lines.push(`  ${s.source.padEnd(12)} ${s.location} ${s.exists ? `(${s.models} models)` : "(not present)"}`)
    }
    yield* Console.log(lines.join("\n"))
  })).pipe(
    Command.provide((o) => live(o)),
    Command.withDescription("Show the system, the runtime and where models are looked for")
  )
