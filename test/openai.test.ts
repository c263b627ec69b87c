import { describe, expect, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import OpenAI, { BadRequestError, NotFoundError } from "openai"
import { TestServer } from "./support/server.js"

/**
 * The OpenAI-compatible API through the official `openai` SDK, unchanged, against the real server
 * and real models. stories260K writes coherent stories; llama-2-tiny-random takes any text.
 */

const MODEL = "stories260K"
const PROMPT = "Once upon a time"

const client = Effect.map(
  TestServer,
  ({ url }) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 })
)

/** Runs an SDK call; a rejection fails the effect with the SDK's typed error. */
const sdk = <A>(call: (openai: OpenAI) => Promise<A>) =>
  Effect.flatMap(client, (openai) => Effect.tryPromise({ try: () => call(openai), catch: (e) => e }))

/** The SDK's error for a call that must fail. */
const sdkError = <A>(call: (openai: OpenAI) => Promise<A>) => Effect.flip(sdk(call))

const collectStream = <C>(call: (openai: OpenAI) => Promise<AsyncIterable<C>>) =>
  sdk(async (openai) => {
    const chunks: Array<C> = []
    for await (const chunk of await call(openai)) chunks.push(chunk)
    return chunks
  })

layer(TestServer.layer)("OpenAI API with the official SDK", (it) => {
  describe("chat completions", () => {
    it.effect("a template-less model is chatted with through the generic template, exactly like the rendered prompt", () =>
      Effect.gen(function*() {
        const chat = yield* sdk((openai) =>
          openai.chat.completions.create({
            model: MODEL,
            messages: [{ role: "system", content: "Tell stories." }, {
              role: "user",
              content: [{ type: "text", text: PROMPT }]
            }],
            max_tokens: 12,
            temperature: 0
          })
        )
        expect(chat.object).toBe("chat.completion")
        expect(chat.choices).toHaveLength(1)
        const choice = chat.choices[0]!
        expect(choice.message.role).toBe("assistant")
        expect(choice.message.content!.length).toBeGreaterThan(0)
        // the same prompt as the generic template renders it, sent as a plain completion
        const rendered = yield* sdk((openai) =>
          openai.completions.create({
            model: MODEL,
            prompt: `System: Tell stories.\nUser: ${PROMPT}\nAssistant:`,
            max_tokens: 12,
            temperature: 0,
            stop: ["\nUser:", "\nSystem:", "\nAssistant:"]
          })
        )
        expect(choice.message.content).toBe(rendered.choices[0]!.text)
        expect(choice.finish_reason).toBe(rendered.choices[0]!.finish_reason)
        expect(chat.usage).toEqual({
          prompt_tokens: rendered.usage!.prompt_tokens,
          completion_tokens: rendered.usage!.completion_tokens,
          total_tokens: rendered.usage!.prompt_tokens + rendered.usage!.completion_tokens
        })
      }))

    it.effect("streams the role, then content deltas, then finish_reason, then usage, ending like the JSON answer", () =>
      Effect.gen(function*() {
        const request = {
          model: MODEL,
          messages: [{ role: "user" as const, content: PROMPT }],
          max_tokens: 16,
          temperature: 0
        }
        const whole = yield* sdk((openai) => openai.chat.completions.create(request))
        const chunks = yield* collectStream((openai) =>
          openai.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } })
        )
        expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0]!.id)).toBe(true)
        expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant")
        const last = chunks.at(-1)!
        expect(last.choices).toEqual([])
        expect(last.usage).toEqual(whole.usage)
        const finish = chunks.at(-2)!
        expect(finish.choices[0]!.finish_reason).toBe("length")
        expect(chunks.slice(0, -2).every((c) => c.choices[0]!.finish_reason === null && c.usage === null)).toBe(true)
        const deltas = chunks.slice(1, -2).map((c) => c.choices[0]!.delta.content)
        expect(deltas.length).toBeGreaterThan(1)
        expect(deltas.join("")).toBe(whole.choices[0]!.message.content)
        expect(whole.usage!.completion_tokens).toBe(16)
      }))

    it.effect("the same seed and request give the same text; the seed changes it", () =>
      Effect.gen(function*() {
        const ask = (seed: number) =>
          sdk((openai) =>
            openai.chat.completions.create({
              model: MODEL,
              messages: [{ role: "user", content: PROMPT }],
              max_tokens: 24,
              temperature: 1.2,
              seed
            })
          ).pipe(Effect.map((c) => c.choices[0]!.message.content))
        const first = yield* ask(7)
        expect(yield* ask(7)).toBe(first)
        const others = yield* Effect.forEach([8, 9, 10], ask)
        expect(others.some((text) => text !== first)).toBe(true)
      }))

    it.effect("stop ends the text before the stop string with finish_reason stop; max_tokens gives length", () =>
      Effect.gen(function*() {
        // the greedy story goes on "... there was a little girl named Lily"
        const stopped = yield* sdk((openai) =>
          openai.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 40, temperature: 0, stop: "girl" })
        )
        expect(stopped.choices[0]!.finish_reason).toBe("stop")
        expect(stopped.choices[0]!.text).toMatch(/little $/)
        const chatStopped = yield* sdk((openai) =>
          openai.chat.completions.create({
            model: MODEL,
            messages: [{ role: "user", content: PROMPT }],
            max_tokens: 60,
            temperature: 0,
            stop: ["a", "e"]
          })
        )
        expect(chatStopped.choices[0]!.finish_reason).toBe("stop")
        expect(chatStopped.choices[0]!.message.content).not.toMatch(/[ae]/)
        const cut = yield* sdk((openai) =>
          openai.chat.completions.create({
            model: MODEL,
            messages: [{ role: "user", content: PROMPT }],
            max_completion_tokens: 3,
            temperature: 0
          })
        )
        expect(cut.choices[0]!.finish_reason).toBe("length")
        expect(cut.usage!.completion_tokens).toBe(3)
      }))

    it.effect("json_schema output always parses and validates against its schema", () =>
      Effect.gen(function*() {
        const jsonSchema = {
          type: "object",
          properties: {
            name: { type: "string", maxLength: 12 },
            age: { type: "integer" },
            kind: { enum: ["cat", "dog"] },
            tags: { type: "array", items: { type: "boolean" }, maxItems: 3 }
          },
          required: ["name", "age", "kind", "tags"],
          additionalProperties: false
        }
        const Expected = Schema.Struct({
          name: Schema.String.pipe(Schema.maxLength(12)),
          age: Schema.Int,
          kind: Schema.Literal("cat", "dog"),
          tags: Schema.Array(Schema.Boolean).pipe(Schema.maxItems(3))
        })
        for (const [model, seed] of [[MODEL, 1], [MODEL, 2], ["llama-2-tiny-random", 3]] as const) {
          const chat = yield* sdk((openai) =>
            openai.chat.completions.create({
              model,
              messages: [{ role: "user", content: "Describe a pet as JSON." }],
              max_tokens: 300,
              temperature: 1,
              seed,
              response_format: { type: "json_schema", json_schema: { name: "pet", schema: jsonSchema, strict: true } }
            })
          )
          expect(chat.choices[0]!.finish_reason, chat.choices[0]!.message.content!).toBe("stop")
          const parsed: unknown = JSON.parse(chat.choices[0]!.message.content!)
          expect(Schema.decodeUnknownEither(Expected, { onExcessProperty: "error" })(parsed)._tag).toBe("Right")
        }
        // these models write strings without end, so a json_object answer is cut at max_tokens;
        // what shows the grammar applies is that the same seeded request starts otherwise without it
        const ask = (format: { readonly type: "json_object" } | undefined) =>
          sdk((openai) =>
            openai.chat.completions.create({
              model: MODEL,
              messages: [{ role: "user", content: "JSON please" }],
              max_tokens: 8,
              seed: 4,
              ...(format !== undefined ? { response_format: format } : {})
            })
          ).pipe(Effect.map((c) => c.choices[0]!.message.content!))
        expect(yield* ask({ type: "json_object" })).toMatch(/^\{\s*"/)
        expect(yield* ask(undefined)).not.toMatch(/^\{/)
      }))

    it.effect("a guarded vocabulary chats through the generic template and refuses characters it cannot tokenize", () =>
      Effect.gen(function*() {
        const ok = yield* sdk((openai) =>
          openai.chat.completions.create({
            model: "TinyStories-656K-Q8_0",
            messages: [{ role: "system", content: "Be kind." }, { role: "user", content: "Tell me about a dog." }],
            max_tokens: 8,
            temperature: 0
          })
        )
        expect(ok.usage!.completion_tokens).toBeGreaterThan(0)
        const refused = yield* sdkError((openai) =>
          openai.chat.completions.create({
            model: "TinyStories-656K-Q8_0",
            messages: [{ role: "user", content: "caf\u00e9 #1" }]
          })
        )
        expect(refused).toBeInstanceOf(BadRequestError)
        expect((refused as BadRequestError).param).toBe("messages")
        expect((refused as BadRequestError).message).toContain("\"\u00e9\"")
      }))

    it.effect("a model whose vocabulary cannot write JSON fails that request with a 400, and its sequence comes back", () =>
      Effect.gen(function*() {
        // TinyStories-656K has no token for "{", so the grammar accepts none of its tokens
        const request = {
          model: "TinyStories-656K-Q8_0",
          messages: [{ role: "user" as const, content: "Tell me about a dog." }],
          max_tokens: 8,
          response_format: { type: "json_object" as const }
        }
        // more requests than the model has sequences: a sequence kept by a failure would hang one
        for (let i = 0; i < 6; i++) {
          const refused = yield* sdkError((openai) => openai.chat.completions.create(request))
          expect(refused).toBeInstanceOf(BadRequestError)
          expect((refused as BadRequestError).param).toBe("response_format")
          expect((refused as BadRequestError).message).toMatch(
            /'TinyStories-656K-Q8_0' cannot write output in the requested format/
          )
        }
        const streamed = yield* sdkError((openai) =>
          openai.chat.completions.create({ ...request, stream: true }).then(async (stream) => {
            for await (const _ of stream) {
              // the error arrives as an event of the stream
            }
          })
        )
        expect(String(streamed)).toMatch(/cannot write output in the requested format/)
        const { response_format: _, ...plain } = request
        const ok = yield* sdk((openai) => openai.chat.completions.create(plain))
        expect(ok.usage!.completion_tokens).toBeGreaterThan(0)
      }))
  })

  describe("completions", () => {
    it.effect("non-streaming and streaming give the same text, finish_reason and usage", () =>
      Effect.gen(function*() {
        const request = { model: MODEL, prompt: [PROMPT] as [string], max_tokens: 10, temperature: 0 }
        const whole = yield* sdk((openai) => openai.completions.create(request))
        expect(whole.object).toBe("text_completion")
        expect(whole.choices[0]!.finish_reason).toBe("length")
        expect(whole.usage!.completion_tokens).toBe(10)
        expect(whole.choices[0]!.text).toMatch(/^, there was a little girl/)
        const chunks = yield* collectStream((openai) =>
          openai.completions.create({ ...request, stream: true, stream_options: { include_usage: true } })
        )
        expect(chunks.at(-1)!.choices).toEqual([])
        expect(chunks.at(-1)!.usage).toEqual(whole.usage)
        expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe("length")
        expect(chunks.map((c) => c.choices[0]?.text ?? "").join("")).toBe(whole.choices[0]!.text)
        const plain = yield* collectStream((openai) => openai.completions.create({ ...request, stream: true }))
        expect(plain.every((c) => c.usage === undefined && c.choices.length === 1)).toBe(true)
      }))
  })

  describe("models", () => {
    it.effect("lists the usable models and retrieves one; an unknown id is NotFoundError model_not_found", () =>
      Effect.gen(function*() {
        const list = yield* sdk((openai) => openai.models.list())
        const ids = list.data.map((m) => m.id)
        expect(ids).toEqual(expect.arrayContaining([MODEL, "llama-2-tiny-random", "TinyStories-656K-f32"]))
        expect(list.data.every((m) => m.object === "model" && typeof m.created === "number" && m.owned_by === "shimmy"))
          .toBe(true)
        const one = yield* sdk((openai) => openai.models.retrieve(MODEL))
        expect(one).toEqual({ id: MODEL, object: "model", created: 0, owned_by: "shimmy" })
        const missing = yield* sdkError((openai) => openai.models.retrieve("no-such-model"))
        expect(missing).toBeInstanceOf(NotFoundError)
        expect((missing as NotFoundError).code).toBe("model_not_found")
      }))
  })

  describe("embeddings", () => {
    it.effect("float and base64 encodings decode to the same vectors, with usage", () =>
      Effect.gen(function*() {
        const input = ["Once upon a time", "The cat sat on the mat."]
        const floats = yield* sdk((openai) =>
          openai.embeddings.create({ model: MODEL, input, encoding_format: "float" })
        )
        expect(floats.data.map((d) => d.index)).toEqual([0, 1])
        const vectors = floats.data.map((d) => d.embedding)
        // stories260K has 64-dimensional embeddings
        expect(vectors.every((v) => v.length === 64 && v.every(Number.isFinite))).toBe(true)
        expect(vectors[0]).not.toEqual(vectors[1])
        expect(floats.usage.prompt_tokens).toBeGreaterThan(input.length)
        expect(floats.usage.total_tokens).toBe(floats.usage.prompt_tokens)
        // the SDK asks for base64 when no format is given and decodes it itself
        const sdkDecoded = yield* sdk((openai) => openai.embeddings.create({ model: MODEL, input }))
        expect(sdkDecoded.data.map((d) => d.embedding)).toEqual(vectors)
        const raw = yield* sdk((openai) =>
          openai.embeddings.create({ model: MODEL, input: input[0]!, encoding_format: "base64" })
        )
        const bytes = Buffer.from(raw.data[0]!.embedding as unknown as string, "base64")
        expect([...new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)]).toEqual(vectors[0])
      }))

    it.effect("embeddings use the server's engine: the model they load is the one the server reports loaded", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        const loaded = () =>
          Effect.promise(() =>
            fetch(`${url}/api/health`).then((r) => r.json() as Promise<{ loaded_models: Array<string> }>)
          )
        // no other test uses this model
        expect((yield* loaded()).loaded_models).not.toContain("TinyStories-656K-f32")
        const result = yield* sdk((openai) =>
          openai.embeddings.create({ model: "TinyStories-656K-f32", input: "a dog", encoding_format: "float" })
        )
        expect(result.data[0]!.embedding.length).toBeGreaterThan(0)
        expect((yield* loaded()).loaded_models).toContain("TinyStories-656K-f32")
        // a guarded vocabulary is checked before tokenization, not aborted on
        const refused = yield* sdkError((openai) =>
          openai.embeddings.create({ model: "TinyStories-656K-f32", input: ["ok", "\u00e9t\u00e9"] })
        )
        expect(refused).toBeInstanceOf(BadRequestError)
        expect((refused as BadRequestError).param).toBe("input[1]")
      }))
  })

  describe("errors", () => {
    it.effect("an unknown model is NotFoundError model_not_found; bad parameters are BadRequestError naming them", () =>
      Effect.gen(function*() {
        const unknown = yield* sdkError((openai) =>
          openai.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] })
        )
        expect(unknown).toBeInstanceOf(NotFoundError)
        expect((unknown as NotFoundError).code).toBe("model_not_found")
        expect((unknown as NotFoundError).type).toBe("invalid_request_error")

        const cases: ReadonlyArray<readonly [string, Record<string, unknown>, RegExp]> = [
          ["temperature", { temperature: 5 }, /temperature/],
          ["n", { n: 2 }, /must be 1/],
          [
            "tools",
            { tools: [{ type: "function", function: { name: "f" } }] },
            /cannot call tools: its chat template .* has no tool support/
          ],
          ["logprobs", { logprobs: true }, /not supported/],
          ["frobnicate", { frobnicate: 1 }, /unrecognized/],
          ["response_format", {
            response_format: {
              type: "json_schema",
              json_schema: { name: "x", schema: { type: "string", pattern: "^a+$" } }
            }
          }, /'pattern'/]
        ]
        for (const [param, extra, message] of cases) {
          const error = yield* sdkError((openai) =>
            openai.chat.completions.create(
              { model: MODEL, messages: [{ role: "user", content: "hi" }], ...extra } as never
            )
          )
          expect(error, param).toBeInstanceOf(BadRequestError)
          const bad = error as BadRequestError
          expect(bad.param, param).toBe(param)
          expect(bad.type).toBe("invalid_request_error")
          expect(bad.message).toMatch(message)
        }
      }))

    it.effect("unknown /v1 routes and wrong methods answer in OpenAI's error shape", () =>
      Effect.gen(function*() {
        const { url } = yield* TestServer
        const missing = yield* Effect.promise(() => fetch(`${url}/v1/nothing`))
        expect(missing.status).toBe(404)
        expect(yield* Effect.promise(() => missing.json())).toEqual({
          error: {
            message: expect.stringContaining("/v1/nothing"),
            type: "invalid_request_error",
            param: null,
            code: "not_found"
          }
        })
        const wrong = yield* Effect.promise(() => fetch(`${url}/v1/chat/completions`))
        expect(wrong.status).toBe(405)
        expect(wrong.headers.get("allow")).toBe("POST")
      }))
  })
})
