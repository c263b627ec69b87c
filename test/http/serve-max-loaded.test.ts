import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Config, ConfigProvider, Console, Effect, Exit, Fiber } from "effect"
import { serveCommand } from "../../src/cli/Serve.js"
import { settings } from "../../src/services/ShimmyConfig.js"
import { modelsDir } from "../support/server.js"

/** `serve --max-loaded-models` and SHIMMY_MAX_LOADED_MODELS: taken, and refused when out of range. */

const run = Command.run(serveCommand, { name: "shimmy", version: "test" })
const argv = (...args: Array<string>) => ["node", "shimmy", ...args]

// real time: it.effect runs on the TestClock
const pause = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

const capture = () => {
  const lines: Array<string> = []
  const console = {
    ...globalThis.console,
    [Console.TypeId]: Console.TypeId,
    unsafe: globalThis.console,
    log: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void lines.push(args.join(" "))),
    error: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void lines.push(args.join(" ")))
  } as unknown as Console.Console
  return { lines, console }
}

const fromEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(Config.all(settings), ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("SHIMMY_MAX_LOADED_MODELS", () => {
  it.live("serve --max-loaded-models 1 limits the server to one model, as /api/health says", () =>
    Effect.gen(function*() {
      const { console, lines } = capture()
      const fiber = yield* run(
        argv("--bind", "127.0.0.1:0", "--model-dirs", modelsDir, "--threads", "1", "--max-loaded-models", "1")
      ).pipe(Effect.withConsole(console), Effect.provide(NodeContext.layer), Effect.fork)
      let url: string | undefined
      for (let i = 0; i < 400 && url === undefined; i++) {
        url = /listening on (http:\/\/\S+)/.exec(lines.join("\n"))?.[1]
        if (url === undefined) yield* pause(25)
      }
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      const health = yield* Effect.promise(() => fetch(`${url}/api/health`).then((r) => r.json() as Promise<any>))
      expect(health.model_slots).toEqual({ max: 1, used: 0, waiting: 0 })
      yield* Fiber.interrupt(fiber)
    }))

  it.live("serve refuses a negative --max-loaded-models", () =>
    Effect.gen(function*() {
      const exit = yield* run(argv("--bind", "127.0.0.1:0", "--model-dirs", modelsDir, "--max-loaded-models", "-1"))
        .pipe(Effect.provide(NodeContext.layer), Effect.exit)
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("--max-loaded-models -1 is out of range")
    }))

  it.effect("defaults to 0 (no limit), takes a number, and refuses anything else", () =>
    Effect.gen(function*() {
      expect((yield* fromEnv({})).maxLoadedModels).toBe(0)
      expect((yield* fromEnv({ SHIMMY_MAX_LOADED_MODELS: "3" })).maxLoadedModels).toBe(3)
      const negative = yield* Effect.flip(fromEnv({ SHIMMY_MAX_LOADED_MODELS: "-2" }))
      expect(String(negative)).toContain("SHIMMY_MAX_LOADED_MODELS must be at least 0")
      const word = yield* Effect.flip(fromEnv({ SHIMMY_MAX_LOADED_MODELS: "many" }))
      expect(String(word)).toContain("SHIMMY_MAX_LOADED_MODELS")
    }))
})
