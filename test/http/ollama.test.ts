import { Schema } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Ollama } from "ollama"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Wire from "../../src/domain/Ollama.js"
import { freshDir } from "../support/env.js"
import { readGguf, withMetadata, writeGguf } from "../support/gguf.js"
import { sharedModel } from "../support/models.js"
import { type RunningServer, startServer } from "../support/server.js"

/**
 * Ollama's API through the official client (ollama-js), against the real server over sockets:
 * under `/ollama` on the main port, at the root of the main port, and on the Ollama-only
 * listener. Tiny models write gibberish: the tests check structure, counts and reasons.
 */

let server: RunningServer & { readonly close: () => Promise<void> }
let dir: string

/** Token ids as the FIM tokens of a copy of llama-2-tiny-random: a model that can fill in the middle. */
const FIM = { prefix: 32_000 - 3, suffix: 32_000 - 2, middle: 32_000 - 1 }

beforeAll(async () => {
  dir = freshDir("ollama")
  const id = (value: number) => ({ type: "u32", value }) as const
  await fs.writeFile(
    path.join(dir, "fim-tiny.gguf"),
    writeGguf(withMetadata(readGguf(sharedModel("llama-2-tiny-random.gguf")), {
      "tokenizer.ggml.fim_pre_token_id": id(FIM.prefix),
      "tokenizer.ggml.fim_suf_token_id": id(FIM.suffix),
      "tokenizer.ggml.fim_mid_token_id": id(FIM.middle)
    }))
  )
  // a file whose header would abort llama.cpp: listed as unusable, so unknown to Ollama's clients
  await fs.writeFile(
    path.join(dir, "broken.gguf"),
    writeGguf(withMetadata(readGguf(sharedModel("stories260K.gguf")), { "llama.attention.head_count": id(0) }))
  )
  server = await startServer(
    {
      modelPaths: [
        sharedModel("stories260K.gguf"),
        sharedModel("llama-2-tiny-random.gguf"),
        sharedModel("TinyStories-656K-Q8_0.gguf"),
        dir
      ],
      parallel: 2
    },
    {},
    { ollama: true }
  )
}, 60_000)

afterAll(async () => {
  await server?.close()
  await fs.rm(dir, { recursive: true, force: true })
})

const hosts = () => ({
  "/ollama on the main port": `${server.url}/ollama`,
  "the root of the main port": server.url,
  "the Ollama-only listener": server.ollamaUrl!
})

const strictly = <A, I>(schema: Schema.Schema<A, I>, value: unknown) =>
  Schema.decodeUnknownSync(schema, { onExcessProperty: "error" })(JSON.parse(JSON.stringify(value)))

const ask = [{ role: "user", content: "Once upon a time" }]

/** What ollama-js raises for an error answer (its class is not exported). */
interface ResponseError extends Error {
  readonly error: string
  readonly status_code: number
}

/** The ResponseError a call raises (fails the test if it succeeds). */
const refusal = async (call: () => Promise<unknown>): Promise<ResponseError> => {
  try {
    await call()
  } catch (e) {
    expect((e as Error).name).toBe("ResponseError")
    return e as ResponseError
  }
  throw new Error("the call succeeded")
}

describe.each(["/ollama on the main port", "the root of the main port", "the Ollama-only listener"] as const)(
  "ollama-js on %s",
  (where) => {
    let ollama: Ollama
    let host: string
    beforeAll(() => {
      host = hosts()[where]
      ollama = new Ollama({ host })
    })

    it("GET and HEAD / say Ollama is running; /api/version answers a version", async () => {
      const root = await fetch(`${host}/`)
      expect(root.status).toBe(200)
      expect(root.headers.get("content-type")).toMatch(/^text\/plain/)
      expect(await root.text()).toBe("Ollama is running")
      expect((await fetch(`${host}/`, { method: "HEAD" })).status).toBe(200)
      expect((await ollama.version()).version).toMatch(/^\d+\.\d+\.\d+$/)
    })

    it("list names every usable model as name:tag, with its size, sha256 digest and details", async () => {
      const { models } = await ollama.list()
      strictly(Wire.ListResponse, { models })
      const stories = models.find((m) => m.name === "stories260K:latest")!
      expect(stories).toBeDefined()
      expect(stories.model).toBe("stories260K:latest")
      expect(stories.size).toBe(1_185_376)
      expect(stories.digest).toMatch(/^270cba1b[0-9a-f]{56}$/)
      expect(stories.details).toMatchObject({ format: "gguf", family: "llama", families: ["llama"] })
      expect(stories.details.parameter_size).toMatch(/^\d+(\.\d+)?[KMB]$/)
      expect(stories.details.quantization_level).toBe("F32")
      expect(new Date(stories.modified_at).getTime()).toBeGreaterThan(0)
      expect(models.map((m) => m.name)).toContain("llama-2-tiny-random:latest")
    })

    it("chat (stream false) with the listed name answers the whole message and measured metrics", async () => {
      const answer = await ollama.chat({
        model: "stories260K:latest",
        messages: ask,
        stream: false,
        options: { num_predict: 6, temperature: 0 }
      })
      strictly(Wire.ChatResponse, answer)
      expect(answer.model).toBe("stories260K:latest")
      expect(answer.message.role).toBe("assistant")
      expect(answer.message.content.length).toBeGreaterThan(0)
      expect(answer.done).toBe(true)
      expect(answer.done_reason).toBe("length")
      expect(answer.eval_count).toBe(6)
      expect(answer.prompt_eval_count).toBeGreaterThan(0)
      expect(answer.eval_duration).toBeGreaterThan(0)
      expect(answer.prompt_eval_duration).toBeGreaterThan(0)
      expect(answer.total_duration).toBeGreaterThanOrEqual(answer.eval_duration + answer.prompt_eval_duration)
    })

    it("chat streams NDJSON chunks whose text is the whole answer, then done with the metrics", async () => {
      const options = { num_predict: 8, temperature: 0, seed: 1 }
      const whole = await ollama.chat({ model: "stories260K", messages: ask, stream: false, options })
      const parts = await ollama.chat({ model: "stories260K", messages: ask, stream: true, options })
      let text = ""
      const chunks: Array<unknown> = []
      for await (const part of parts) {
        chunks.push(part)
        text += part.message.content
      }
      const last = chunks.at(-1) as Wire.ChatResponse
      for (const chunk of chunks.slice(0, -1)) strictly(Wire.ChatChunk, chunk)
      strictly(Wire.ChatResponse, last)
      expect(chunks.length).toBeGreaterThan(2)
      expect(text).toBe(whole.message.content)
      expect(last).toMatchObject({ done: true, done_reason: "length", eval_count: 8 })
    })

    it("a multi-turn chat with a system message is rendered whole: it takes more prompt tokens", async () => {
      const one = await ollama.chat({ model: "stories260K", messages: ask, options: { num_predict: 1 } })
      const three = await ollama.chat({
        model: "stories260K",
        messages: [
          { role: "system", content: "Tell a story" },
          ...ask,
          { role: "assistant", content: "there was a cat" },
          { role: "user", content: "and then" }
        ],
        options: { num_predict: 1 }
      })
      expect(three.prompt_eval_count).toBeGreaterThan(one.prompt_eval_count + 8)
    })

    it("errors are ResponseErrors with Ollama's status and message", async () => {
      const missing = await refusal(() => ollama.chat({ model: "nope", messages: ask }))
      expect(missing.status_code).toBe(404)
      expect(missing.error).toBe("model 'nope' not found")
      const show = await refusal(() => ollama.show({ model: "nope" }))
      expect(show.status_code).toBe(404)
      expect(show.error).toBe("model 'nope' not found")
      const images = await refusal(() =>
        ollama.chat({ model: "stories260K", messages: [{ role: "user", content: "look", images: ["aGk="] }] })
      )
      expect(images.status_code).toBe(400)
      expect(images.error).toContain("images are not supported")
      const options = await refusal(() =>
        ollama.chat({ model: "stories260K", messages: ask, options: { temperature: -1 } })
      )
      expect(options.status_code).toBe(400)
      expect(options.error).toContain("temperature")
      const keep = await refusal(() => ollama.chat({ model: "stories260K", messages: ask, keep_alive: "soon" }))
      expect(keep.status_code).toBe(400)
      expect(keep.error).toContain("keep_alive")
      const tools = await refusal(() =>
        ollama.chat({
          model: "stories260K",
          messages: ask,
          tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: {} } } }]
        })
      )
      expect(tools.status_code).toBe(400)
      expect(tools.error).toBe("model 'stories260K' does not support tools")
      const think = await refusal(() => ollama.chat({ model: "stories260K", messages: ask, think: true }))
      expect(think.status_code).toBe(400)
      expect(think.error).toBe("model 'stories260K' does not support thinking")
      const malformed = await fetch(`${host}/api/chat`, { method: "POST", body: "{not json" })
      expect(malformed.status).toBe(400)
      expect(Object.keys((await malformed.json()) as object)).toEqual(["error"])
    })

    it("the model store's endpoints say clearly that Shimmy does not manage models (501)", async () => {
      for (
        const call of [
          () => ollama.push({ model: "x" }),
          () => ollama.create({ model: "x", from: "stories260K" }),
          () => ollama.copy({ source: "stories260K", destination: "x" }),
          () => ollama.delete({ model: "stories260K" })
        ]
      ) {
        const error = await refusal(call)
        expect(error.status_code).toBe(501)
        expect(error.error).toContain("does not manage them")
      }
      const blob = await fetch(`${host}/api/blobs/sha256-${"0".repeat(64)}`, { method: "HEAD" })
      expect(blob.status).toBe(501)
    })

    it("embed answers unit vectors of the model's dimension; embeddings the older single vector", async () => {
      const embedded = await ollama.embed({ model: "llama-2-tiny-random", input: ["a story", "another one"] })
      strictly(Wire.EmbedResponse, embedded)
      expect(embedded.embeddings).toHaveLength(2)
      for (const vector of embedded.embeddings) {
        expect(vector).toHaveLength(8)
        expect(Math.hypot(...vector)).toBeCloseTo(1, 5)
      }
      expect(embedded.prompt_eval_count).toBeGreaterThan(2)
      const one = await ollama.embed({ model: "llama-2-tiny-random", input: "a story", dimensions: 4 })
      expect(one.embeddings[0]).toHaveLength(4)
      expect(Math.hypot(...one.embeddings[0]!)).toBeCloseTo(1, 5)
      if (where === "the Ollama-only listener") {
        // longer than the context (2,048): cut to fit by default (truncate), refused without
        const long = "Once upon a time ".repeat(1000)
        const cut = await ollama.embed({ model: "stories260K", input: long })
        expect(cut.embeddings[0]).toHaveLength(64)
        expect(cut.prompt_eval_count).toBeLessThan(2048)
        expect(cut.prompt_eval_count).toBeGreaterThan(2000)
        const refused = await refusal(() => ollama.embed({ model: "stories260K", input: long, truncate: false }))
        expect(refused.status_code).toBe(400)
      }
      const old = await ollama.embeddings({ model: "llama-2-tiny-random", prompt: "a story" })
      strictly(Wire.EmbeddingsResponse, old)
      expect(old.embedding).toHaveLength(8)
      const norm = Math.hypot(...old.embedding)
      // the same direction as the normalized one
      expect(old.embedding[0]! / norm).toBeCloseTo(embedded.embeddings[0]![0]!, 5)
    })

    it("show tells the details, GGUF metadata, capabilities and a Modelfile", async () => {
      const shown = await ollama.show({ model: "llama-2-tiny-random" })
      strictly(Wire.ShowResponse, shown)
      const info = shown.model_info as unknown as Record<string, unknown>
      expect(info["general.architecture"]).toBe("llama")
      expect(info["llama.context_length"]).toBeTypeOf("number")
      expect(info["llama.embedding_length"]).toBe(8)
      // the vocabulary's 32,000 tokens are left out
      expect(info["tokenizer.ggml.tokens"]).toBeUndefined()
      expect(shown.capabilities).toEqual(["completion"])
      expect(shown.details).toMatchObject({ format: "gguf", family: "llama", quantization_level: "F16" })
      expect(shown.modelfile).toContain("FROM ")
      // the older request field
      const byName = await fetch(`${host}/api/show`, {
        method: "POST",
        body: JSON.stringify({ name: "stories260K" })
      })
      expect(byName.status).toBe(200)
      expect(((await byName.json()) as { details: { family: string } }).details.family).toBe("llama")
    })
  }
)

describe("where each API is served", () => {
  it("the root of the main port keeps the seed API's /api/generate; /ollama and the Ollama port answer Ollama's", async () => {
    const seed = await fetch(`${server.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: "stories260K", prompt: "Once", max_tokens: 2 })
    })
    expect(Object.keys((await seed.json()) as object)).toEqual(["choices", "usage"])
    for (const host of [`${server.url}/ollama`, server.ollamaUrl!]) {
      const answer = await new Ollama({ host }).generate({
        model: "stories260K",
        prompt: "Once",
        stream: false,
        options: { num_predict: 2 }
      })
      strictly(Wire.GenerateResponse, answer)
    }
  })

  it("the Ollama-only listener answers every failure in Ollama's shape, 404s and 405s too", async () => {
    const missing = await fetch(`${server.ollamaUrl}/v1/models`)
    expect(missing.status).toBe(404)
    strictly(Wire.ErrorBody, await missing.json())
    const method = await fetch(`${server.ollamaUrl}/api/chat`)
    expect(method.status).toBe(405)
    expect(method.headers.get("allow")).toBe("POST")
    strictly(Wire.ErrorBody, await method.json())
    const under = await fetch(`${server.url}/ollama/api/nothing`)
    expect(under.status).toBe(404)
    strictly(Wire.ErrorBody, await under.json())
    // the seed API's own paths are not on the Ollama port
    expect((await fetch(`${server.ollamaUrl}/api/health`)).status).toBe(404)
  })
})

describe("hostile requests", () => {
  const bodies: Record<string, ReadonlyArray<unknown>> = {
    "/api/chat": [
      [],
      null,
      1,
      { model: 1 },
      { model: "" },
      { model: "stories260K", messages: "hi" },
      { model: "stories260K", messages: [{ role: "bogus", content: "x" }] },
      { model: "stories260K", messages: [{ role: "user", content: 5 }] },
      { model: "stories260K", messages: [{ role: "assistant", tool_calls: [{ function: { arguments: {} } }] }] },
      { model: "stories260K", messages: [{ role: "user", content: "x" }], options: "fast" },
      { model: "stories260K", messages: [{ role: "user", content: "x" }], options: { num_predict: -5 } },
      { model: "stories260K", messages: [{ role: "user", content: "x" }], options: { top_p: 7 } },
      { model: "stories260K", messages: [{ role: "user", content: "x" }], format: "xml" },
      { model: "stories260K", messages: [{ role: "user", content: "x" }], keep_alive: { minutes: 5 } },
      { model: "stories260K", messages: [{ role: "user", content: "x" }], think: "maximum" },
      { model: "stories260K", messages: [{ role: "user", content: "x" }], tools: [{ type: "web" }] },
      { model: "broken", messages: [{ role: "user", content: "x" }] }
    ],
    "/api/generate": [
      { model: "stories260K", prompt: 5 },
      { model: "stories260K", prompt: "x", raw: "yes" },
      { model: "stories260K", prompt: "x", context: "abc" },
      { model: "broken", prompt: "x" },
      { model: "broken" }
    ],
    "/api/embed": [
      { model: "stories260K" },
      { model: "stories260K", input: [1, 2] },
      { model: "stories260K", input: "" },
      { model: "stories260K", input: "x", dimensions: 0 },
      { model: "stories260K", input: "x", dimensions: 100_000 },
      { model: "stories260K", input: "x".repeat(20_000), truncate: false }
    ],
    "/api/embeddings": [{ model: "stories260K" }, { model: "nope", prompt: "x" }],
    "/api/show": [{}, { model: 3 }, { model: "broken" }]
  }

  it("every malformed or impossible request is a 4xx {\"error\"} in Ollama's shape, never a 500", async () => {
    for (const [endpoint, cases] of Object.entries(bodies)) {
      for (const body of cases) {
        const response = await fetch(`${server.ollamaUrl}${endpoint}`, { method: "POST", body: JSON.stringify(body) })
        const answer = await response.json()
        const label = `${endpoint} ${JSON.stringify(body).slice(0, 80)}`
        expect([400, 404], label).toContain(response.status)
        expect(strictly(Wire.ErrorBody, answer).error.length, label).toBeGreaterThan(0)
      }
    }
    const broken = await new Ollama({ host: server.ollamaUrl! }).chat({
      model: "broken",
      messages: [{ role: "user", content: "x" }]
    }).catch((e: ResponseError) => e)
    expect(broken).toMatchObject({ status_code: 404, error: "model 'broken' not found" })
    expect((await new Ollama({ host: server.ollamaUrl! }).list()).models.map((m) => m.name)).not.toContain(
      "broken:latest"
    )
  })
})

describe("generate in Ollama's shape", () => {
  let ollama: Ollama
  beforeAll(() => {
    ollama = new Ollama({ host: server.ollamaUrl! })
  })

  it("streams response chunks, then done with the metrics; the text is the whole answer's", async () => {
    const options = { num_predict: 7, temperature: 0 }
    const whole = await ollama.generate({ model: "stories260K", prompt: "Once upon a time", stream: false, options })
    let text = ""
    let last: unknown
    for await (
      const part of await ollama.generate({ model: "stories260K", prompt: "Once upon a time", stream: true, options })
    ) {
      text += part.response
      last = part
    }
    expect(text).toBe(whole.response)
    strictly(Wire.GenerateResponse, last)
    expect(last).toMatchObject({ done: true, done_reason: "length", eval_count: 7 })
  })

  it("raw sends the prompt as is; without it the template (and system) are around it", async () => {
    const raw = await ollama.generate({
      model: "stories260K",
      prompt: "Once upon a time",
      raw: true,
      options: { num_predict: 1 }
    })
    const templated = await ollama.generate({
      model: "stories260K",
      prompt: "Once upon a time",
      options: { num_predict: 1 }
    })
    const system = await ollama.generate({
      model: "stories260K",
      prompt: "Once upon a time",
      system: "You tell stories about cats",
      options: { num_predict: 1 }
    })
    // "Once upon a time" and BOS
    expect(raw.prompt_eval_count).toBeLessThan(templated.prompt_eval_count)
    expect(system.prompt_eval_count).toBeGreaterThan(templated.prompt_eval_count)
  })

  it("options are mapped: num_predict, seed (same seed, same text), stop, temperature 0", async () => {
    const prompt = "Once upon a time"
    const a = await ollama.generate({
      model: "stories260K",
      prompt,
      raw: true,
      options: { num_predict: 12, seed: 7, temperature: 1 }
    })
    const b = await ollama.generate({
      model: "stories260K",
      prompt,
      raw: true,
      options: { num_predict: 12, seed: 7, temperature: 1 }
    })
    expect(a.response).toBe(b.response)
    expect(a.eval_count).toBe(12)
    const greedy = await ollama.generate({
      model: "stories260K",
      prompt,
      raw: true,
      options: { temperature: 0, num_predict: 30 }
    })
    // the model's greedy story: ", there was a little girl named Lily..."
    const word = greedy.response!.trim().split(/\s+/)[2]!
    const stopped = await ollama.generate({
      model: "stories260K",
      prompt,
      raw: true,
      options: { temperature: 0, num_predict: 30, stop: [word] }
    })
    expect(stopped.done_reason).toBe("stop")
    expect(stopped.response).not.toContain(word)
    expect(greedy.response!.startsWith(stopped.response!)).toBe(true)
    // an option Ollama knows but Shimmy does not use, and one nobody knows, are ignored
    const ignored = await ollama.generate({
      model: "stories260K",
      prompt,
      options: { num_predict: 2, num_thread: 3, mirostat: 0, ...{ not_an_option: 1 } } as never
    })
    expect(ignored.eval_count).toBe(2)
  })

  it("refuses what it cannot do with a clear 400: images, template overrides, context, a suffix without FIM tokens", async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ images: ["aGk="] }, "images are not supported"],
      [{ template: "{{ .Prompt }}" }, "template overrides are not supported"],
      [{ context: [1, 2, 3] }, "context"],
      // stories260K has no FIM tokens
      [{ suffix: "The end." }, "model 'stories260K' cannot fill in the middle: it has no FIM tokens"]
    ]
    for (const [extra, message] of cases) {
      const error = await refusal(() =>
        ollama.generate({ model: "stories260K", prompt: "Once", stream: false, ...extra } as never)
      )
      expect(error.status_code).toBe(400)
      expect(error.error).toContain(message)
    }
  })

  it("a suffix fills in the middle with the model's FIM tokens; show lists insert", async () => {
    const prefix = "Once upon a time"
    const suffix = "happily ever after."
    const filled = await ollama.generate({
      model: "fim-tiny",
      prompt: prefix,
      suffix,
      stream: false,
      options: { num_predict: 4, temperature: 0 }
    })
    strictly(Wire.GenerateResponse, filled)
    expect(filled.eval_count).toBe(4)
    const raw = await ollama.generate({
      model: "fim-tiny",
      prompt: `${prefix} ${suffix}`,
      raw: true,
      options: { num_predict: 1 }
    })
    // BOS and the text, with the three FIM tokens around its two parts
    expect(Math.abs(filled.prompt_eval_count - (raw.prompt_eval_count + 3))).toBeLessThanOrEqual(1)
    expect((await ollama.show({ model: "fim-tiny" })).capabilities).toEqual(["completion", "insert"])
  })

  it("a failure after the stream began ends it with an {\"error\"} line, which ollama-js raises", async () => {
    // the format asks for a character the model's vocabulary has no token for, after text it can write
    const request = {
      model: "TinyStories-656K-Q8_0",
      prompt: "Once",
      raw: true,
      format: { type: "string", enum: ["Once upon a time \u00e9"] },
      options: { num_predict: 50 }
    }
    const response = await fetch(`${server.ollamaUrl}/api/generate`, { method: "POST", body: JSON.stringify(request) })
    expect(response.status).toBe(200)
    const lines = (await response.text()).split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l))
    expect(lines.length).toBeGreaterThan(1)
    expect(lines.slice(0, -1).every((l) => l.done === false)).toBe(true)
    const last = strictly(Wire.ErrorBody, lines.at(-1))
    expect(last.error).toContain("cannot write output in the requested format")
    let text = ""
    const failure = await (async () => {
      for await (const part of await ollama.generate({ ...request, stream: true })) text += part.response
    })().then(() => undefined, (e: Error) => e)
    expect(failure?.message).toContain("cannot write output in the requested format")
    expect(text.startsWith("\"Once")).toBe(true)
  })

  it("an abort mid-stream frees the sequence at once; the next requests run", async () => {
    const client = new Ollama({ host: server.ollamaUrl! })
    const free = async () =>
      ((await (await fetch(`${server.url}/api/health`)).json()) as { sequences: { total: number; free: number } })
        .sequences
    const running = await client.generate({
      model: "stories260K",
      prompt: "Once upon a time",
      raw: true,
      stream: true,
      options: { num_predict: 100_000, temperature: 1 }
    })
    let seen = 0
    for await (const part of running) {
      void part
      if (++seen === 3) break
    }
    running.abort()
    // the stream could run ~2,000 tokens more; the sequence comes back long before
    let sequences = await free()
    for (let i = 0; i < 40 && sequences.free < sequences.total; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
      sequences = await free()
    }
    expect(sequences.free).toBe(sequences.total)
    const after = await Promise.all(
      [1, 2].map(() => ollama.generate({ model: "stories260K", prompt: "Once", options: { num_predict: 2 } }))
    )
    for (const answer of after) expect(answer.eval_count).toBe(2)
  })
})
