import { type Llama, LlamaGrammarEvaluationState, type LlamaModel, type Token, TokenBias } from "node-llama-cpp"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { vocabularyBytes } from "../src/services/Tokenizer.js"
import { after, bannedIn, stepUtf8, utf8Table, utf8Tracker } from "../src/services/Utf8Guard.js"
import { prebuiltLlama, sharedModel } from "./support/models.js"
import { makeTemplateModels } from "./support/templates.js"

/**
 * The guard that keeps grammar-constrained output well-formed UTF-8: its table over made-up
 * pieces, then llama.cpp's own grammar on two real vocabularies (Qwen's byte-level BPE, Llama 2's
 * SPM byte tokens), with a bias that pushes the model at the byte sequences the grammar lets
 * through and a decoder does not.
 */

const bytes = (...b: Array<number>) => Uint8Array.from(b)

describe("the UTF-8 table", () => {
  it("steps through well-formed sequences and stops at every ill-formed one", () => {
    const run = (...b: Array<number>) => b.reduce((s, x) => (s < 0 ? s : stepUtf8(s, x)), 0)
    // A, é, 中, U+0800, U+D7FF, 😀, U+10FFFF
    const wellFormed = [[0x41], [0xc3, 0xa9], [0xe4, 0xb8, 0xad], [0xe0, 0xa0, 0x80], [0xed, 0x9f, 0xbf]]
    wellFormed.push([0xf0, 0x9f, 0x98, 0x80], [0xf4, 0x8f, 0xbf, 0xbf])
    for (const ok of wellFormed) expect(run(...ok), ok.join(" ")).toBe(0)
    // lone continuations, overlong leads, overlong E0/F0, a surrogate, past U+10FFFF, F5-FF, a lead then ASCII
    const illFormed = [[0x80], [0xbf], [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80], [0xed, 0xa0], [0xf0, 0x80]]
    illFormed.push([0xf4, 0x90], [0xf5], [0xf8], [0xff], [0xc3, 0x41])
    for (const bad of illFormed) expect(run(...bad), bad.join(" ")).toBe(-1)
    // a lead byte leaves a state that owes continuation bytes
    expect(run(0xe4)).toBeGreaterThan(0)
    expect(run(0xe4, 0xb8)).toBeGreaterThan(0)
  })

  it("bans, between characters, what cannot begin well-formed text; after a lead, what cannot follow it", () => {
    const pieces = [
      bytes(0x61, 0x62), // 0 "ab"
      bytes(0x80), // 1 a lone continuation
      bytes(0xf8), // 2 never in UTF-8
      bytes(0xc0), // 3 an overlong lead
      bytes(0xe0), // 4 a lead with a narrow first continuation
      bytes(0x80, 0x80), // 5 continues E4, not E0
      bytes(0xa0, 0x80), // 6 continues E0
      bytes(0xe4, 0xb8), // 7 the first two bytes of 中
      bytes(0xad, 0x61), // 8 its last, then "a"
      bytes(0x61, 0xff) // 9 "a" then garbage
    ]
    const table = utf8Table(pieces)
    expect([...table.banned[0]!].sort((a, b) => a - b)).toEqual([1, 2, 3, 5, 6, 8, 9])
    const afterE0 = after(table, 0, 4 as Token)
    const afterE4B8 = after(table, 0, 7 as Token)
    expect(table.banned[afterE0]).toContain(5)
    expect(table.banned[afterE0]).not.toContain(6)
    expect(table.banned[afterE4B8]).not.toContain(8)
    expect(table.banned[afterE4B8]).toContain(6)
    // what starts with ASCII or a lead byte is for the grammar to refuse there: not listed
    expect(table.banned[afterE4B8]).not.toContain(0)
    expect(table.banned[afterE4B8]).not.toContain(4)
    expect(after(table, afterE4B8, 8 as Token)).toBe(0)
  })
})

describe("grammar-constrained generation on llama.cpp", () => {
  let dir: string
  let llama: Llama
  const models: Record<string, LlamaModel> = {}

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "shimmy-utf8-"))
    await makeTemplateModels(dir, ["qwen25"])
    llama = await prebuiltLlama()
    models["qwen2 (byte-level BPE)"] = await llama.loadModel({ modelPath: path.join(dir, "qwen25.gguf"), gpuLayers: 0 })
    models["llama 2 (SPM byte tokens)"] = await llama.loadModel({
      modelPath: sharedModel("llama-2-tiny-random.gguf"),
      gpuLayers: 0
    })
  }, 120_000)

  afterAll(async () => {
    for (const model of Object.values(models)) await model.dispose()
    await llama?.dispose()
    await fs.rm(dir, { recursive: true, force: true })
  })

  // the ids of the one-byte tokens of these bytes
  const byteTokens = (model: LlamaModel, ...wanted: Array<number>): Array<Token> => {
    const pieces = vocabularyBytes(model)!
    return wanted.map((b) => pieces.findIndex((p) => p.length === 1 && p[0] === b) as Token)
  }

  // a string of at most 3 characters, greedy, with `favoured` pushed far above everything else
  const constrained = async (model: LlamaModel, favoured: ReadonlyArray<Token>, guarded: boolean) => {
    const grammar = await llama.createGrammarForJsonSchema({ type: "string", maxLength: 3 })
    const context = await model.createContext({ contextSize: 256, sequences: 1 })
    const sequence = context.getSequence()
    const generated: Array<Token> = []
    const tracker = guarded ? utf8Tracker(model, generated) : undefined
    if (guarded) expect(tracker).toBeDefined()
    const bias = () => {
      const b = new TokenBias(model.tokenizer).set([...favoured], { logit: 40 })
      if (tracker !== undefined) {
        const banned = bannedIn(model, tracker())
        if (banned.length > 0) b.set([...banned], "never")
      }
      return b
    }
    try {
      for await (
        const token of sequence.evaluate(model.tokenize("x"), {
          temperature: 0,
          grammarEvaluationState: new LlamaGrammarEvaluationState({ model, grammar }),
          tokenBias: bias
        })
      ) {
        generated.push(token)
        if (generated.length >= 24 || model.isEogToken(token)) break
        const text = model.detokenize(generated)
        if (text.length > 1 && text.trimEnd().endsWith("\"") && !text.endsWith("\\\"")) break
      }
    } finally {
      await context.dispose()
    }
    return model.detokenize(generated).trim()
  }

  for (const name of ["qwen2 (byte-level BPE)", "llama 2 (SPM byte tokens)"]) {
    it(`${name}: unguarded, the grammar lets ill-formed bytes through past maxLength; guarded, never`, async () => {
      const model = models[name]!
      // F8 and C0 never occur in UTF-8; 80 never begins a character; E0 80 is overlong; ED A0 is a
      // surrogate
      const pushes = [
        byteTokens(model, 0xf8, 0x80),
        byteTokens(model, 0xc0, 0x80),
        byteTokens(model, 0x80),
        byteTokens(model, 0xe0, 0x80),
        byteTokens(model, 0xed, 0xa0, 0x80),
        // a lead where a continuation is owed: for the grammar itself to refuse
        byteTokens(model, 0xe4)
      ]
      for (const push of pushes) expect(push.every((t) => t >= 0)).toBe(true)

      // the premise: the first push, unguarded, gives a string the decoder makes longer than 3
      const unguarded = await constrained(model, pushes[0]!, false)
      expect(unguarded).toContain("\uFFFD")
      expect([...(JSON.parse(unguarded) as string)].length).toBeGreaterThan(3)

      for (const push of pushes) {
        const text = await constrained(model, push, true)
        const value = JSON.parse(text) as string
        expect(text, `pushed ${push.join(",")}`).not.toContain("\uFFFD")
        expect([...value].length, `pushed ${push.join(",")}: ${JSON.stringify(value)}`).toBeLessThanOrEqual(3)
      }
    }, 60_000)
  }
})
