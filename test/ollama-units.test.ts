import { describe, expect, it } from "@effect/vitest"
import { Config, ConfigProvider, Duration, Effect, Exit, Schema } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { doneEvent, toolCallEvent, Usage } from "../src/domain/Generation.js"
import { ModelInfo } from "../src/domain/Model.js"
import * as Wire from "../src/domain/Ollama.js"
import * as Render from "../src/http/ollama/Render.js"
import { parseKeepAlive } from "../src/services/KeepAlive.js"
import { ModelDigest } from "../src/services/ModelDigest.js"
import { settings } from "../src/services/ShimmyConfig.js"
import { freshDir } from "./support/env.js"
import { sharedModel } from "./support/models.js"

/** The Ollama dialect's pure parts: keep-alive values, the digest cache, tool calls as Ollama writes them. */

describe("keep-alive values", () => {
  it("reads Go durations and seconds as Ollama does; negative is forever", () => {
    const ms = (v: string | number) => {
      const d = parseKeepAlive(v)
      return d === undefined ? undefined : Duration.isFinite(d) ? Duration.toMillis(d) : Infinity
    }
    expect(ms("5m")).toBe(300_000)
    expect(ms("1h30m")).toBe(5_400_000)
    expect(ms("1.5s")).toBe(1500)
    expect(ms("250ms")).toBe(250)
    expect(ms("0")).toBe(0)
    expect(ms(0)).toBe(0)
    expect(ms(30)).toBe(30_000)
    expect(ms("30")).toBe(30_000)
    expect(ms(-1)).toBe(Infinity)
    expect(ms("-1m")).toBe(Infinity)
    expect(ms("soon")).toBeUndefined()
    expect(ms("5 minutes")).toBeUndefined()
    expect(ms("")).toBeUndefined()
  })

  const idle = (env: Record<string, string>) =>
    Effect.withConfigProvider(Config.all(settings), ConfigProvider.fromMap(new Map(Object.entries(env)))).pipe(
      Effect.map((s) => s.modelIdleTimeout)
    )

  it.effect("SHIMMY_KEEP_ALIVE sets the default in Ollama's words, before SHIMMY_MODEL_IDLE_TIMEOUT", () =>
    Effect.gen(function*() {
      expect(Duration.toMillis(yield* idle({ SHIMMY_KEEP_ALIVE: "5m" }))).toBe(300_000)
      expect(Duration.isFinite(yield* idle({ SHIMMY_KEEP_ALIVE: "-1" }))).toBe(false)
      expect(Duration.toMillis(yield* idle({ SHIMMY_MODEL_IDLE_TIMEOUT: "10 minutes" }))).toBe(600_000)
      expect(Duration.toMillis(yield* idle({ SHIMMY_KEEP_ALIVE: "1m", SHIMMY_MODEL_IDLE_TIMEOUT: "10 minutes" })))
        .toBe(60_000)
      expect(Duration.isFinite(yield* idle({}))).toBe(false)
      const wrong = yield* Effect.exit(idle({ SHIMMY_KEEP_ALIVE: "soon" }))
      expect(Exit.isFailure(wrong)).toBe(true)
      expect(String(wrong)).toContain("SHIMMY_KEEP_ALIVE")
    }))
})

const infoOf = (file: string, size: number) =>
  new ModelInfo({
    name: path.basename(file),
    path: file,
    files: [file],
    source: "path",
    sizeBytes: size,
    status: "ok",
    chatTemplate: false
  })

describe("digests", () => {
  it.scoped("a file version is hashed once; a changed mtime hashes it again; Ollama's blobs are named by theirs", () =>
    Effect.gen(function*() {
      const dir = freshDir("ollama-digest")
      yield* Effect.addFinalizer(() => Effect.promise(() => fs.rm(dir, { recursive: true, force: true })))
      const file = path.join(dir, "model.gguf")
      yield* Effect.promise(() => fs.copyFile(sharedModel("stories260K.gguf"), file))
      const expected = crypto.createHash("sha256").update(yield* Effect.promise(() => fs.readFile(file))).digest("hex")
      const digests = yield* ModelDigest
      const info = infoOf(file, 1_185_376)
      const [a, b] = yield* Effect.all([digests.of(info), digests.of(info)], { concurrency: 2 })
      expect(a).toBe(expected)
      expect(b).toBe(expected)
      expect(yield* digests.of(info)).toBe(expected)
      expect(yield* digests.hashed).toBe(1)
      yield* Effect.promise(() => fs.utimes(file, new Date(), new Date(Date.now() + 5000)))
      expect(yield* digests.of(info)).toBe(expected)
      expect(yield* digests.hashed).toBe(2)
      const blob = path.join(dir, `sha256-${"ab".repeat(32)}`)
      yield* Effect.promise(() => fs.copyFile(file, blob))
      expect(yield* digests.of(infoOf(blob, 1_185_376))).toBe("ab".repeat(32))
      expect(yield* digests.hashed).toBe(2)
    }).pipe(Effect.provide(ModelDigest.Default)))
})

describe("tool calls as Ollama writes them", () => {
  const call = { id: "call_1", name: "get_weather", arguments: "{\"city\":\"Paris\"}" }
  const done = doneEvent("tool_calls", Usage.of(10, 5))

  it("arguments are an object; a turn that called ends with done_reason stop", () => {
    const timing = Render.startTiming()
    const answer = Render.chatResponse("m", { text: "", reasoning: "", toolCalls: [call], done }, timing)
    Schema.decodeUnknownSync(Wire.ChatResponse, { onExcessProperty: "error" })(answer)
    expect(answer.message.tool_calls).toEqual([
      { id: "call_1", function: { index: 0, name: "get_weather", arguments: { city: "Paris" } } }
    ])
    expect(answer.done_reason).toBe("stop")
    expect(answer).toMatchObject({ prompt_eval_count: 10, eval_count: 5 })
    const frames = Render.chatChunks("m", timing)
    const [chunk] = frames(toolCallEvent(0, call))
    expect(chunk).toMatchObject({
      done: false,
      message: { role: "assistant", content: "", tool_calls: [{ function: { arguments: { city: "Paris" } } }] }
    })
    expect(frames(done)[0]).toMatchObject({ done: true, done_reason: "stop" })
  })
})
