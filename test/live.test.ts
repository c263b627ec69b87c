import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Effect, Fiber, Layer, Tracer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { vi } from "vitest"
import { normalizeArgs, run } from "../src/cli/Cli.js"
import { postJson } from "./support/clients.js"
import { SHARED_MODELS } from "./support/models.js"

/**
 * The services are composed once: `shimmy serve`, run in-process with a tracer that counts spans,
 * scans the model directories once and reads each GGUF header once, however many services
 * (engine, embeddings, grammars, the server) use the registry and however many requests follow.
 */

const counting = Effect.map(Effect.tracer, (base) => {
  const counts = new Map<string, number>()
  const tracer = Tracer.make({
    span: (name, ...rest) => {
      counts.set(name, (counts.get(name) ?? 0) + 1)
      return base.span(name, ...rest)
    },
    context: base.context
  })
  return { tracer, count: (name: string) => counts.get(name) ?? 0 }
})

describe("the Live layer", () => {
  it.scopedLive("shimmy serve scans once and reads each header once", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "shimmy-live-"))
      const { count, tracer } = yield* counting
      // every GGUF below the directory, vocabulary-only ones (read, then skipped) included
      const files = (fs.readdirSync(SHARED_MODELS, { recursive: true }) as Array<string>).filter((f) =>
        f.endsWith(".gguf")
      ).length
      const listening = yield* Deferred.make<string>()
      const lines: Array<string> = []
      const spy = vi.spyOn(console, "log").mockImplementation((...args: Array<unknown>) => {
        const text = args.map(String).join(" ")
        lines.push(text)
        const url = /listening on (\S+)/.exec(text)?.[1]
        if (url !== undefined) Deferred.unsafeDone(listening, Effect.succeed(url))
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => spy.mockRestore()))
      const argv = normalizeArgs(["node", "shimmy", "serve", "--bind", "127.0.0.1:0", "--model-dirs", SHARED_MODELS])
      const serving = yield* run(argv).pipe(
        Effect.provide(Layer.merge(NodeContext.layer, Layer.setTracer(tracer))),
        Effect.withConfigProvider(configFor(home)),
        Effect.fork
      )
      const url = yield* Deferred.await(listening).pipe(Effect.timeout("30 seconds"))
      expect(count("ModelRegistry.scan")).toBe(1)
      expect(count("Gguf.summarize")).toBe(files)
      // requests through every service that holds the registry: generation, embeddings, a grammar
      const answers = yield* Effect.promise(() =>
        Promise.all([
          postJson(`${url}/api/generate`, { model: "stories260K", prompt: "Once", max_tokens: 4 }),
          postJson(`${url}/v1/embeddings`, { model: "stories260K", input: "Once" }),
          postJson(`${url}/v1/chat/completions`, {
            model: "stories260K",
            messages: [{ role: "user", content: "hi" }],
            max_tokens: 4,
            response_format: { type: "json_object" }
          })
        ])
      )
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200])
      // rescans (the listing refreshes when stale) never read a header twice
      yield* Effect.promise(() => fetch(`${url}/api/models`))
      expect(count("Gguf.summarize")).toBe(files)
      yield* Fiber.interrupt(serving)
      expect(lines.join("\n")).toContain("shutting down")
    }), 60_000)
})

/** Nothing from the developer's environment: a fresh home, no system stores, no ./models. */
const configFor = (home: string) =>
  ConfigProvider.fromMap(
    new Map([
      ["SHIMMY_DISCOVER_SYSTEM", "false"],
      ["SHIMMY_MODELS_DIR", path.join(home, "models")],
      ["SHIMMY_THREADS", "1"],
      ["SHIMMY_SHUTDOWN_TIMEOUT", "0 seconds"]
    ])
  )
