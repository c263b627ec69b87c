import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ModelInfo } from "../src/domain/Model.js"
import { ModelProbe } from "../src/services/ModelProbe.js"
import type { RegisteredModel } from "../src/services/ModelRegistry.js"
import type { ShimmyConfigShape } from "../src/services/ShimmyConfig.js"
import { readGguf, withMetadata, writeGguf } from "./support/gguf.js"
import { sharedModel, testConfigLayer } from "./support/models.js"

/** The test load in a child process: what it reports, how long it may take, what it remembers. */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shimmy-probe-"))
const aborting = path.join(dir, "ffn-0.gguf")
fs.writeFileSync(
  aborting,
  writeGguf(
    withMetadata(readGguf(sharedModel("stories260K.gguf")), { "llama.feed_forward_length": { type: "u32", value: 0 } })
  )
)

const registered = (file: string): RegisteredModel => ({
  info: new ModelInfo({
    name: path.basename(file, ".gguf"),
    path: file,
    files: [file],
    source: "path",
    sizeBytes: fs.statSync(file).size,
    status: "ok",
    chatTemplate: false
  }),
  vocabulary: { _tag: "Safe" }
})

const probing = (overrides: Partial<ShimmyConfigShape> = {}) =>
  ModelProbe.Default.pipe(Layer.provide(testConfigLayer(overrides)))

const timed = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const started = Date.now()
    const result = yield* Effect.either(effect)
    return { result, millis: Date.now() - started }
  })

describe("ModelProbe", () => {
  it.effect(
    "passes a good model, fails one llama.cpp aborts on, and remembers both per file version",
    () =>
      Effect.gen(function*() {
        const probe = yield* ModelProbe
        const good = yield* timed(probe.check(registered(sharedModel("stories260K.gguf"))))
        expect(good.result._tag).toBe("Right")

        const first = yield* timed(probe.check(registered(aborting)))
        expect(first.result._tag === "Left" && first.result.left.reason).toMatch(/killed by SIGABRT: .*GGML_ASSERT/)
        const again = yield* timed(probe.check(registered(aborting)))
        expect(again.result).toEqual(first.result)
        expect(again.millis).toBeLessThan(100)

        // a new version of the file (another modification time) is tested anew
        fs.utimesSync(aborting, new Date(), new Date(Date.now() + 10_000))
        const changed = yield* timed(probe.check(registered(aborting)))
        expect(changed.result._tag).toBe("Left")
        expect(changed.millis).toBeGreaterThan(again.millis)
      }).pipe(Effect.provide(probing())),
    60_000
  )

  // the live clock: the timeout is Effect's
  it.live("fails a test load that outlives the timeout", () =>
    Effect.gen(function*() {
      const probe = yield* ModelProbe
      const { millis, result } = yield* timed(probe.check(registered(sharedModel("stories260K.gguf"))))
      expect(result._tag === "Left" && result.left.reason).toMatch(/did not finish within 200ms/)
      expect(millis).toBeLessThan(2_000)
    }).pipe(Effect.provide(probing({ probeTimeout: Duration.millis(200) }))))

  it.effect("fails a missing file without starting a child", () =>
    Effect.gen(function*() {
      const probe = yield* ModelProbe
      const gone = path.join(dir, "gone.gguf")
      fs.copyFileSync(sharedModel("stories260K.gguf"), gone)
      const model = registered(gone)
      fs.rmSync(gone)
      const { result } = yield* timed(probe.check(model))
      expect(result._tag === "Left" && result.left.reason).toMatch(/gone\.gguf is missing/)
    }).pipe(Effect.provide(probing())))

  it.effect("does nothing when turned off", () =>
    Effect.gen(function*() {
      const probe = yield* ModelProbe
      const { millis, result } = yield* timed(probe.check(registered(aborting)))
      expect(result._tag).toBe("Right")
      expect(millis).toBeLessThan(100)
    }).pipe(Effect.provide(probing({ probeModels: false }))))
})
