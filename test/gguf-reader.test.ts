import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc } from "effect"
import { readGgufFileInfo } from "node-llama-cpp"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { summarize, unsupportedCharacters, vocabularyGuard } from "../src/services/Gguf.js"
import { type GgufValue, readGgufHeader } from "../src/services/GgufReader.js"
import { readGguf } from "./support/gguf.js"
import { SHARED_MODELS, sharedModel } from "./support/models.js"

/** The header reader against node-llama-cpp's on real files, and against any bytes at all. */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shimmy-gguf-reader-"))
const STORIES = fs.readFileSync(sharedModel("stories260K.gguf"))
const models = [
  ...fs.readdirSync(SHARED_MODELS),
  ...fs.readdirSync(path.join(SHARED_MODELS, "vocab")).map((f) => `vocab/${f}`)
]
  .filter((f) => f.endsWith(".gguf"))

const write = (name: string, bytes: Uint8Array) => {
  const file = path.join(dir, name)
  fs.writeFileSync(file, bytes)
  return file
}

describe("readGgufHeader", () => {
  it.effect.each(models)("reads %s as node-llama-cpp does", (file) =>
    Effect.gen(function*() {
      const full = path.join(SHARED_MODELS, file)
      const ours = yield* readGgufHeader(full)
      const theirs = yield* Effect.promise(() => readGgufFileInfo(full, { readTensorInfo: true, logWarnings: false }))
      expect(ours.version).toBe(theirs.version)
      expect(ours.tensors.map((t) => [t.name, t.dimensions, t.type, t.offset])).toEqual(
        (theirs.fullTensorInfo ?? []).map((t) => [t.name, t.dimensions.map(Number), t.ggmlType, Number(t.offset)])
      )
      const tokens = ours.metadata.get("tokenizer.ggml.tokens")
      expect(typeof tokens === "object" ? tokens.values : undefined).toEqual(theirs.metadata.tokenizer?.ggml?.tokens)
      expect(ours.metadata.get("general.architecture")).toBe(theirs.metadata.general?.architecture)
      // the data section is where the tensors are: every real model's last tensor ends inside the file
      const last = ours.tensors.at(-1)
      if (last !== undefined) expect(ours.dataOffset + last.offset + last.bytes).toBeLessThanOrEqual(ours.fileSize)
    }))

  it.effect("fails fast, with a reason, on lengths and counts that lie", () =>
    Effect.gen(function*() {
      const stories = readGguf(sharedModel("stories260K.gguf"))
      const name = stories.tensors[0]!.name
      const at = STORIES.indexOf(Buffer.from(name)) - 8
      const cases: Array<[string, (b: Buffer) => void, RegExp]> = [
        ["tensor name past the end", (b) =>
          b.writeBigUInt64LE(1_000_000_000n, at), /needs 1000000000 bytes at offset \d+, but only \d+ are left/],
        ["metadata count", (b) =>
          b.writeBigUInt64LE(1n << 40n, 16), /claims 1099511627776 metadata entries/],
        ["tensor count", (b) =>
          b.writeBigUInt64LE(1n << 50n, 8), /claims 1125899906842624 tensors/],
        ["a dimension count of 5", (b) => b.writeUInt32LE(5, at + 8 + name.length), /has 5 dimensions \(at most 4\)/],
        ["version 1", (b) => b.writeUInt32LE(1, 4), /version 1 is not supported/],
        ["no magic", (b) => b.write("GGUX", 0), /not a GGUF file/]
      ]
      for (const [what, patch, reason] of cases) {
        const bytes = Buffer.from(STORIES)
        patch(bytes)
        const started = Date.now()
        const result = yield* Effect.either(readGgufHeader(write(`${what}.gguf`, bytes)))
        expect(Date.now() - started, what).toBeLessThan(1_000)
        expect(Either.isLeft(result) && result.left.reason, what).toMatch(reason)
      }
    }))

  it.effect("finishes within bounded time and memory for any corruption of a header", () =>
    Effect.gen(function*() {
      // the header of stories260K ends near byte 12 KB; writes land there, as u8, u32 or u64
      const patch = fc.record({
        at: fc.integer({ min: 0, max: 12_000 }),
        value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        width: fc.constantFrom(1, 4, 8)
      })
      const file = path.join(dir, "fuzzed.gguf")
      const heapBefore = process.memoryUsage().rss
      let slowest = 0
      let failed = 0
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.array(patch, { minLength: 1, maxLength: 4 }), async (patches) => {
            const bytes = Buffer.from(STORIES)
            for (const { at, value, width } of patches) {
              if (width === 1) bytes.writeUInt8(Number(value & 0xffn), at)
              else if (width === 4) bytes.writeUInt32LE(Number(value & 0xffffffffn), at)
              else bytes.writeBigUInt64LE(value, at)
            }
            fs.writeFileSync(file, bytes)
            const started = Date.now()
            // the reader and the checks after it: a refusal is a tagged failure, never a defect
            const result = await Effect.runPromise(Effect.either(summarize(file)))
            slowest = Math.max(slowest, Date.now() - started)
            if (Either.isLeft(result)) {
              failed++
              expect(["GgufError", "NotAModel"]).toContain(result.left._tag)
            }
          }),
          { numRuns: 300, seed: 15 }
        )
      )
      expect(slowest).toBeLessThan(1_000)
      expect(failed).toBeGreaterThan(0)
      expect(process.memoryUsage().rss - heapBefore).toBeLessThan(300 * 1024 * 1024)
    }), 60_000)
})

describe("vocabularyGuard", () => {
  it("is Safe only with a token for every byte, and lets through characters all of whose bytes have one", () => {
    const stories = readGguf(sharedModel("stories260K.gguf"))
    const tokens = stories.metadata.get("tokenizer.ggml.tokens")!.value as ReadonlyArray<string>
    const spm = (list: ReadonlyArray<string>) =>
      new Map<string, GgufValue>([
        ["tokenizer.ggml.model", "llama"],
        ["tokenizer.ggml.tokens", { _tag: "Array", type: 8, length: list.length, values: list }]
      ])
    expect(vocabularyGuard(spm(tokens))._tag).toBe("Safe")
    // the bytes above 0x7F renamed: ASCII still goes through byte tokens, "é" is a token of its
    // own, "ж" (D0 B6) can be written neither way
    const guard = vocabularyGuard(spm(tokens.map((t) => (/^<0x[89A-F][0-9A-F]>$/.test(t) ? t.toLowerCase() : t))))
    expect(guard._tag).toBe("Guarded")
    expect(unsupportedCharacters(guard, "Once upon a time~\t")).toEqual([])
    expect(unsupportedCharacters(guard, "café ж 🦙")).toEqual(["ж", "🦙"])
    expect(unsupportedCharacters(vocabularyGuard(spm(tokens)), "café ж 🦙")).toEqual([])
  })
})
