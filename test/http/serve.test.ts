import { Command } from "@effect/cli"
import type { HttpServer } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Console, Effect, Exit, Fiber, Option } from "effect"
import * as net from "node:net"
import { parseBind, serveCommand } from "../../src/cli/Serve.js"
import * as Server from "../../src/http/Server.js"
import { modelsDir } from "../support/server.js"

/** A port held by a plain TCP server for the life of the scope. */
const occupiedPort = Effect.acquireRelease(
  Effect.async<net.Server>((resume) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
).pipe(Effect.map((server) => (server.address() as net.AddressInfo).port))

const portOf = (server: HttpServer.HttpServer) => server.address._tag === "TcpAddress" ? server.address.port : -1

// real time: it.effect runs on the TestClock
const pause = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

describe("listening", () => {
  it.scoped("a port in use is a ListenFailed with a one-line message", () =>
    Effect.gen(function*() {
      const port = yield* occupiedPort
      const error = yield* Effect.flip(Server.listen({ host: "127.0.0.1", port }))
      expect(error._tag).toBe("ListenFailed")
      expect(error.message).toBe(`cannot listen on 127.0.0.1:${port}: address already in use`)
    }))

  it.scoped("auto takes the first free port from 11435 upward", () =>
    Effect.gen(function*() {
      const first = portOf(yield* Server.listen({ host: "127.0.0.1", port: "auto" }))
      const second = portOf(yield* Server.listen({ host: "127.0.0.1", port: "auto" }))
      expect(first).toBeGreaterThanOrEqual(Server.DEFAULT_PORT)
      expect(second).toBeGreaterThan(first)
    }))

  it.effect("--bind and --port are parsed as documented", () =>
    Effect.gen(function*() {
      const none = Option.none<number>()
      expect(yield* parseBind("127.0.0.1:11435", none)).toEqual({ host: "127.0.0.1", port: 11435 })
      expect(yield* parseBind("0.0.0.0:8080", Option.some(9000))).toEqual({ host: "0.0.0.0", port: 9000 })
      expect(yield* parseBind("auto", none)).toEqual({ host: "127.0.0.1", port: "auto" })
      expect(yield* parseBind("[::1]:7000", none)).toEqual({ host: "::1", port: 7000 })
      expect(yield* parseBind("8081", none)).toEqual({ host: "127.0.0.1", port: 8081 })
      const bad = yield* Effect.flip(parseBind("localhost", none))
      expect(bad.param).toBe("bind")
      expect((yield* Effect.flip(parseBind("localhost:99999", none))).message).toContain("99999")
    }))
})

describe("shimmy serve", () => {
  const run = Command.run(serveCommand, { name: "shimmy", version: "test" })
  const argv = (...args: Array<string>) => ["node", "shimmy", ...args]

  /** Runs the command with its console captured. */
  const capture = () => {
    const lines: Array<string> = []
    const console: Console.Console = {
      ...globalThis.console,
      [Console.TypeId]: Console.TypeId,
      unsafe: globalThis.console,
      log: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void lines.push(args.join(" "))),
      error: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void lines.push(args.join(" ")))
    } as unknown as Console.Console
    return { lines, console }
  }

  it.live("prints the address and the models, and serves before any model is loaded", () =>
    Effect.gen(function*() {
      const { console, lines } = capture()
      const fiber = yield* run(
        argv("--bind", "127.0.0.1:0", "--model-dirs", modelsDir, "--threads", "1", "--shutdown-timeout", "300 millis")
      ).pipe(
        Effect.withConsole(console),
        Effect.provide(NodeContext.layer),
        Effect.fork
      )
      let url: string | undefined
      for (let i = 0; i < 400 && url === undefined; i++) {
        url = /listening on (http:\/\/\S+)/.exec(lines.join("\n"))?.[1]
        if (url === undefined) yield* pause(25)
      }
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      const output = lines.join("\n")
      expect(output).toContain("stories260K")
      expect(output).toContain("TinyStories-656K-Q8_0")
      const health = yield* Effect.promise(() => fetch(`${url}/api/health`).then((r) => r.json() as Promise<any>))
      expect(health).toMatchObject({ status: "healthy", models_loaded: 0 })
      // a generation in flight (~3 s to run to its end) holds up the shutdown no longer than the deadline
      const streaming = yield* Effect.promise(() =>
        fetch(`${url}/api/generate`, {
          method: "POST",
          body: JSON.stringify({ model: "stories260K", prompt: "Once", max_tokens: 2000, temperature: 0, stream: true })
        })
      )
      const reader = streaming.body!.getReader()
      yield* Effect.promise(() => reader.read())
      const stopping = performance.now()
      yield* Fiber.interrupt(fiber)
      const stopped = performance.now() - stopping
      expect(stopped).toBeGreaterThanOrEqual(250)
      expect(stopped).toBeLessThan(2000)
      const rest = yield* Effect.promise(async () => {
        let text = ""
        for (;;) {
          const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }))
          if (done) return text
          text += new TextDecoder().decode(value)
        }
      })
      expect(rest).not.toContain("finish_reason")
      const after = yield* Effect.promise(() => fetch(`${url}/api/health`).then(() => "up", () => "down"))
      expect(after).toBe("down")
    }))

  it.scoped("a port in use fails with ListenFailed", () =>
    Effect.gen(function*() {
      const port = yield* occupiedPort
      const exit = yield* run(argv("--port", String(port), "--model-dirs", modelsDir, "--threads", "1")).pipe(
        Effect.provide(NodeContext.layer),
        Effect.exit
      )
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        expect(String(exit.cause)).toContain(`cannot listen on 127.0.0.1:${port}: address already in use`)
      }
    }))
})
