import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { renderPrompt } from "../../src/services/LlamaEngine.js"
import { postJson } from "../support/clients.js"
import { TestServer } from "../support/server.js"

/**
 * llama-server's `/tokenize`, `/detokenize` and `/apply-template` over a real socket, with fetch
 * (llama-server has no client package of its own), on the real tiny models.
 */

const post = (url: string, body: unknown) => Effect.promise(() => postJson(url, body))

const expectSeedError = (answer: { status: number; body: any }, status: number, details: RegExp) => {
  expect(answer.status).toBe(status)
  expect(answer.body.error).toMatchObject({ code: expect.any(String), message: expect.any(String) })
  expect(answer.body.error.details).toMatch(details)
}

layer(TestServer.layer, { timeout: 60_000 })("tokenizer endpoints", (it) => {
  it.effect("without a model, and several available, a 400 lists them", () =>
    Effect.gen(function*() {
      const { url } = yield* TestServer
      const answer = yield* post(`${url}/tokenize`, { content: "Once" })
      expectSeedError(answer, 400, /'model' is required: no model is loaded and 5 are available: .*stories260K/)
      expect(answer.body.error.code).toBe("invalid_request")
    }))

  it.effect("tokenize then detokenize round-trips; add_special puts BOS first", () =>
    Effect.gen(function*() {
      const { url } = yield* TestServer
      const text = "Once upon a time, there was a little girl named Lily."
      const plain = yield* post(`${url}/tokenize`, { model: "stories260K", content: text })
      expect(plain.status).toBe(200)
      const tokens: Array<number> = plain.body.tokens
      expect(tokens.length).toBeGreaterThan(5)
      expect(tokens.every((t) => Number.isInteger(t) && t >= 0 && t < 512)).toBe(true)
      // stories260K's BOS is 1
      expect(tokens).not.toContain(1)
      const special = yield* post(`${url}/tokenize`, { model: "stories260K", content: text, add_special: true })
      expect(special.body.tokens).toEqual([1, ...tokens])
      const back = yield* post(`${url}/detokenize`, { model: "stories260K", tokens })
      expect(back).toMatchObject({ status: 200, body: { content: text } })
      // llama-2's tokenizer, 32,000 tokens, the same way
      const llama = yield* post(`${url}/tokenize`, { model: "llama-2-tiny-random", content: "Hello, wörld! 🙂" })
      expect(llama.status).toBe(200)
      const again = yield* post(`${url}/detokenize`, { model: "llama-2-tiny-random", tokens: llama.body.tokens })
      expect(again.body.content).toBe("Hello, wörld! 🙂")
    }))

  it.effect("with_pieces: each token's text, or its bytes where they are not UTF-8 on their own", () =>
    Effect.gen(function*() {
      const { url } = yield* TestServer
      // llama-server's README gives these two byte pieces for 'á' on stories260K; this llama.cpp's
      // SPM tokenizer writes the space it puts before the text as a token of its own first
      const accent = yield* post(`${url}/tokenize`, { model: "stories260K", content: "á", with_pieces: true })
      expect(accent.body.tokens).toEqual([{ id: 410, piece: " " }, { id: 198, piece: [195] }, {
        id: 164,
        piece: [161]
      }])
      const words = yield* post(`${url}/tokenize`, {
        model: "stories260K",
        content: "Once upon a time",
        with_pieces: true
      })
      const pieces: Array<{ id: number; piece: string }> = words.body.tokens
      const ids = (yield* post(`${url}/tokenize`, { model: "stories260K", content: "Once upon a time" })).body.tokens
      expect(pieces.map((p) => p.id)).toEqual(ids)
      expect(pieces.every((p) => typeof p.piece === "string")).toBe(true)
      // a piece keeps the space SPM writes before a word, as llama.cpp's token_to_piece does
      expect(pieces.map((p) => p.piece).join("")).toBe(" Once upon a time")
      // an emoji is four byte tokens in llama-2's vocabulary: their bytes make it up again
      const emoji = yield* post(`${url}/tokenize`, { model: "llama-2-tiny-random", content: "🙂", with_pieces: true })
      const bytes = emoji.body.tokens.flatMap((p: { piece: string | Array<number> }) =>
        typeof p.piece === "string" ? [...Buffer.from(p.piece, "utf8")] : p.piece
      )
      expect(emoji.body.tokens.some((p: { piece: unknown }) => Array.isArray(p.piece))).toBe(true)
      expect(Buffer.from(bytes).toString("utf8")).toBe(" 🙂")
    }))

  it.effect("parse_special: special-token text is the token, or plain text when off", () =>
    Effect.gen(function*() {
      const { url } = yield* TestServer
      const parsed = yield* post(`${url}/tokenize`, { model: "llama-2-tiny-random", content: "</s>" })
      expect(parsed.body.tokens).toContain(2)
      const plain = yield* post(`${url}/tokenize`, {
        model: "llama-2-tiny-random",
        content: "</s>",
        parse_special: false
      })
      expect(plain.body.tokens).not.toContain(2)
      expect(plain.body.tokens.length).toBeGreaterThan(1)
    }))

  it.effect("ids outside the vocabulary, non-integers and huge arrays get a 400; the server lives", () =>
    Effect.gen(function*() {
      const { url } = yield* TestServer
      const detokenize = (tokens: unknown) => post(`${url}/detokenize`, { model: "stories260K", tokens })
      expectSeedError(yield* detokenize([5, 512]), 400, /'tokens\.1': token 512 is not in the vocabulary .*0 to 511/)
      expectSeedError(yield* detokenize([2_147_483_648]), 400, /not in the vocabulary/)
      expectSeedError(yield* detokenize([-1]), 400, /tokens\.0/)
      expectSeedError(yield* detokenize([1.5]), 400, /tokens\.0/)
      expectSeedError(yield* detokenize(["7"]), 400, /tokens\.0/)
      expectSeedError(yield* detokenize("7"), 400, /tokens/)
      expectSeedError(yield* detokenize(Array.from({ length: 131_073 }, () => 5)), 400, /tokens/)
      expectSeedError(yield* post(`${url}/detokenize`, { model: "nope", tokens: [1] }), 404, /nope/)
      expectSeedError(yield* post(`${url}/tokenize`, { model: "stories260K", content: 5 }), 400, /content/)
      // TinyStories-656K has no token for 'é': llama.cpp would abort the process on it
      expectSeedError(
        yield* post(`${url}/tokenize`, { model: "TinyStories-656K-f32", content: "café" }),
        400,
        /no tokens for these characters: "é"/
      )
      const alive = yield* post(`${url}/detokenize`, { model: "stories260K", tokens: [] })
      expect(alive).toMatchObject({ status: 200, body: { content: "" } })
      const guarded = yield* post(`${url}/tokenize`, { model: "TinyStories-656K-f32", content: "Once" })
      expect(guarded.status).toBe(200)
      expect(guarded.body.tokens.length).toBeGreaterThan(0)
    }))

  it.effect("apply-template answers what the engine renders", () =>
    Effect.gen(function*() {
      const { url } = yield* TestServer
      const messages = [
        { role: "system", content: "You tell stories." },
        { role: "user", content: "Tell me one." }
      ]
      const answer = yield* post(`${url}/apply-template`, { model: "llama-2-tiny-random", messages })
      expect(answer.status).toBe(200)
      const rendered = yield* renderPrompt({
        model: "llama-2-tiny-random",
        prompt: {
          _tag: "Chat",
          messages: [{ role: "system", content: "You tell stories." }, {
            role: "user",
            content: "Tell me one."
          }]
        },
        sampling: { maxTokens: 1, temperature: 0, stop: [] }
      })
      expect(answer.body).toEqual({ prompt: rendered.text })
      expect(answer.body.prompt).toContain("Tell me one.")
      expectSeedError(yield* post(`${url}/apply-template`, { model: "stories260K", messages: [] }), 400, /messages/)
      expectSeedError(yield* post(`${url}/apply-template`, { model: "stories260K" }), 400, /messages/)
      expectSeedError(yield* post(`${url}/apply-template`, [1]), 400, /JSON object/)
    }))

  it.effect("without a model, several loaded: a 400 naming the loaded ones", () =>
    Effect.gen(function*() {
      const { url } = yield* TestServer
      const answer = yield* post(`${url}/apply-template`, { messages: [{ role: "user", content: "Hi" }] })
      expectSeedError(answer, 400, /'model' is required: 3 models are loaded: .*llama-2-tiny-random/)
    }))
})

layer(TestServer.layer, { timeout: 60_000 })("tokenizer endpoints, one model loaded", (it) => {
  it.effect("without a model, the only one loaded is used", () =>
    Effect.gen(function*() {
      const { url } = yield* TestServer
      const named = yield* post(`${url}/tokenize`, { model: "stories260K", content: "Once upon" })
      const unnamed = yield* post(`${url}/tokenize`, { content: "Once upon" })
      expect(unnamed).toMatchObject({ status: 200, body: { tokens: named.body.tokens } })
      const back = yield* post(`${url}/detokenize`, { tokens: named.body.tokens })
      expect(back.body).toEqual({ content: "Once upon" })
      const template = yield* post(`${url}/apply-template`, { messages: [{ role: "user", content: "Hi" }] })
      expect(template.status).toBe(200)
      expect(template.body.prompt).toContain("Hi")
    }))
})
