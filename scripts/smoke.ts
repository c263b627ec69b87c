import { Effect, Layer, Stream } from "effect"
import { LlamaEngine } from "../src/services/LlamaEngine.js"
import { ModelRegistry } from "../src/services/ModelRegistry.js"
import { ShimmyConfig } from "../src/services/ShimmyConfig.js"

const program = Effect.gen(function*() {
  const registry = yield* ModelRegistry
  for (const m of yield* registry.list) console.log(m.name, m.status, m.architecture, m.quantization, m.parameters, m.contextLength, m.reason ?? "")
  const engine = yield* LlamaEngine
  const t0 = performance.now()
  let n = 0
  yield* engine.generate({ model: process.argv[2] ?? "stories260K", prompt: "Once upon a time", sampling: { maxTokens: 200, temperature: 0, stop: [] } }).pipe(
    Stream.runForEach((e) => Effect.sync(() => { if (e._tag === "Token") { n++; process.stdout.write(e.text) } else console.log("\n", e) }))
  )
  console.log(((performance.now() - t0)).toFixed(0), "ms", n)
})
const layer = LlamaEngine.Default.pipe(Layer.provideMerge(ModelRegistry.Default), Layer.provide(ShimmyConfig.fromEnv))
Effect.runPromise(Effect.scoped(program.pipe(Effect.provide(layer)))).catch((e) => console.error("FAILED", e))
