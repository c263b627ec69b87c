import Anthropic, {
  AuthenticationError,
  BadRequestError,
  NotFoundError,
  ServiceUnavailableError
} from "@anthropic-ai/sdk"
import { Chunk, Effect, Option, Redacted, Schema, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Wire from "../../src/domain/Anthropic.js"
import { GenerationFailed } from "../../src/domain/Errors.js"
import { type DoneEvent, doneEvent, tokenEvent, Usage } from "../../src/domain/Generation.js"
import * as Render from "../../src/http/anthropic/Render.js"
import * as Sse from "../../src/http/Sse.js"
import { postJson, sleep } from "../support/clients.js"
import { sharedModel } from "../support/models.js"
import { type RunningServer, startServer } from "../support/server.js"

/**
 * Anthropic's Messages API on the real server, through the official `@anthropic-ai/sdk` (its
 * typed errors and `messages.stream()` helper) and plain fetch. The models are tiny: their text
 * is gibberish, so the tests check structure, counts and stop reasons, and compare runs with
 * each other (greedy decoding is deterministic), never wording.
 */

type Server = RunningServer & { readonly close: () => Promise<void> }

const MODEL = "stories260K"
let server: Server
let client: Anthropic

beforeAll(async () => {
  server = await startServer(
    { modelPaths: [sharedModel("stories260K.gguf"), sharedModel("llama-2-tiny-random.gguf")], parallel: 2 },
    { anthropicModel: Option.some(MODEL) }
  )
  client = new Anthropic({ baseURL: server.url, apiKey: "unused", maxRetries: 0 })
}, 60_000)

afterAll(async () => {
  await server?.close()
})

/**
 * Greedy decoding, so two runs of a request agree. The SDK's types no longer list the sampling
 * fields (newer Claude models refuse them); the API and Shimmy still take them.
 */
const greedy: object = { temperature: 0 }

const ask: Array<Anthropic.MessageParam> = [{ role: "user", content: "Once upon a time" }]

/** Decodes with no field left over (the SDK adds `_request_id` to what it returns). */
const strictly = <A, I>(schema: Schema.Schema<A, I>, value: unknown) => {
  const { _request_id, ...wire } = value as Record<string, unknown>
  return Schema.decodeUnknownSync(schema, { onExcessProperty: "error" })(wire)
}

const textOf = (message: Anthropic.Message) =>
  message.content.flatMap((b) => (b.type === "text" ? [b.text] : [])).join("")

describe("POST /v1/messages", () => {
  it("answers a message object: id, the echoed model, one text block, stop reason and usage", async () => {
    const { data: message, response } = await client.messages.create({
      model: MODEL,
      max_tokens: 8,
      ...greedy,
      system: "You tell stories.",
      messages: ask
    }).withResponse()
    strictly(Wire.Message, message)
    expect(message.id).toMatch(/^msg_/)
    expect(message).toMatchObject({ type: "message", role: "assistant", model: MODEL, stop_sequence: null })
    expect(message.content).toHaveLength(1)
    expect(message.content[0]!.type).toBe("text")
    expect(message.stop_reason).toBe("max_tokens")
    expect(message.usage).toEqual({
      input_tokens: expect.any(Number),
      output_tokens: 8,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0
    })
    expect(message.usage.input_tokens).toBeGreaterThan(3)
    expect(response.headers.get("x-shimmy-model")).toBe(MODEL)
  })

  it("takes the system prompt as text blocks (cache_control ignored) as it takes the string", async () => {
    const base = { model: MODEL, max_tokens: 6, ...greedy, messages: ask }
    const asString = await client.messages.create({ ...base, system: "You tell stories.\n\nShort ones." })
    const asBlocks = await client.messages.create({
      ...base,
      system: [
        { type: "text", text: "You tell stories." },
        { type: "text", text: "Short ones.", cache_control: { type: "ephemeral" } }
      ]
    })
    const without = await client.messages.create(base)
    expect(asBlocks.usage.input_tokens).toBe(asString.usage.input_tokens)
    expect(textOf(asBlocks)).toBe(textOf(asString))
    expect(asString.usage.input_tokens).toBeGreaterThan(without.usage.input_tokens)
  })

  it("continues a conversation with tool_use and tool_result history (text and block results, is_error)", async () => {
    const history: Array<Anthropic.MessageParam> = [
      { role: "user", content: [{ type: "text", text: "What is the weather in Paris?" }] },
      {
        role: "assistant",
        content: [
          { type: "thinking", thinking: "I should look it up.", signature: "opaque" },
          { type: "redacted_thinking", data: "opaque" },
          { type: "text", text: "Let me look." },
          { type: "tool_use", id: "toolu_01", name: "get_weather", input: { city: "Paris" } },
          { type: "tool_use", id: "toolu_02", name: "get_time", input: { zone: "CET" } }
        ]
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "toolu_01", content: "21 degrees and sunny" },
          {
            type: "tool_result",
            tool_use_id: "toolu_02",
            content: [{ type: "text", text: "no clock" }],
            is_error: true
          },
          { type: "text", text: "And tomorrow?" }
        ]
      }
    ]
    const short = await client.messages.create({ model: MODEL, max_tokens: 4, ...greedy, messages: ask })
    const long = await client.messages.create({ model: MODEL, max_tokens: 4, ...greedy, messages: history })
    expect(long.stop_reason).toBe("max_tokens")
    expect(long.usage.input_tokens).toBeGreaterThan(short.usage.input_tokens + 20)
  })

  it("names the stop sequence that ended the answer, and ends the text before it", async () => {
    const request = { model: MODEL, max_tokens: 40, ...greedy, messages: ask }
    const whole = textOf(await client.messages.create(request))
    const words = whole.split(" ").filter((w) => w.length > 2)
    // a word from the middle of the greedy answer: the same answer stops there
    const stop = words[Math.floor(words.length / 2)]!
    expect(stop).toBeDefined()
    const stopped = await client.messages.create({ ...request, stop_sequences: ["never-generated-zzz", stop] })
    expect(stopped.stop_reason).toBe("stop_sequence")
    expect(stopped.stop_sequence).toBe(stop)
    expect(textOf(stopped)).toBe(whole.slice(0, whole.indexOf(stop)))
    const streamed = await client.messages.stream({ ...request, stop_sequences: [stop] }).finalMessage()
    expect(streamed.stop_reason).toBe("stop_sequence")
    expect(streamed.stop_sequence).toBe(stop)
    expect(textOf(streamed)).toBe(textOf(stopped))
  })
})

describe("stop reasons", () => {
  // the tiny models never end a turn on their own (greedy decoding loops), so the mapping of an
  // end-of-turn is checked on the renderer itself, with the events the engine gives
  const done = (stopSequence?: string) => doneEvent("stop", Usage.of(5, 3), stopSequence)
  const answer = (event: DoneEvent) => ({ text: "Once", reasoning: "", toolCalls: [], done: event })
  const lily = { stops: ["Lily"], maxTokens: 100 }

  it("an end-of-turn is end_turn; a template's own stop string is not named; the request's is", () => {
    expect(Render.message(MODEL, answer(done()), lily)).toMatchObject({
      stop_reason: "end_turn",
      stop_sequence: null
    })
    expect(Render.message(MODEL, answer(done("\nUser:")), lily)).toMatchObject({
      stop_reason: "end_turn",
      stop_sequence: null
    })
    expect(Render.message(MODEL, answer(done("Lily")), lily)).toMatchObject({
      stop_reason: "stop_sequence",
      stop_sequence: "Lily"
    })
    const stream = Render.events(MODEL, 5, lily)
    const last = [...stream.frames(tokenEvent("Once", 1)), ...stream.frames(done())]
    expect(last.find((e) => e.type === "message_delta")).toMatchObject({
      delta: { stop_reason: "end_turn", stop_sequence: null },
      usage: { input_tokens: 5, output_tokens: 3 }
    })
  })

  it("a full context short of max_tokens is model_context_window_exceeded", async () => {
    // stories260K's context is 2048 tokens: less than it is asked to write
    const message = await client.messages.create({ model: MODEL, max_tokens: 4000, ...greedy, messages: ask })
    expect(message.usage.input_tokens + message.usage.output_tokens).toBe(2048)
    expect(message.stop_reason).toBe("model_context_window_exceeded")
    const exact = await client.messages.create({ model: MODEL, max_tokens: 5, ...greedy, messages: ask })
    expect(exact.stop_reason).toBe("max_tokens")
  })
})

describe("streaming", () => {
  it("messages.stream() assembles the same message the JSON answer has", async () => {
    const request = { model: MODEL, max_tokens: 12, ...greedy, messages: ask }
    const whole = await client.messages.create(request)
    const stream = client.messages.stream(request)
    let deltas = ""
    stream.on("text", (text) => (deltas += text))
    const final = await stream.finalMessage()
    expect(final.id).toMatch(/^msg_/)
    expect(final.model).toBe(MODEL)
    expect(textOf(final)).toBe(textOf(whole))
    expect(deltas).toBe(textOf(whole))
    expect(final.stop_reason).toBe("max_tokens")
    expect(final.usage).toMatchObject({ input_tokens: whole.usage.input_tokens, output_tokens: 12 })
  })

  it("sends the raw events in Anthropic's order, each named by its type", async () => {
    const response = await fetch(`${server.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ model: MODEL, max_tokens: 6, ...greedy, messages: ask, stream: true })
    })
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/)
    const text = await response.text()
    const blocks = text.trim().split("\n\n")
    const events = blocks.map((block) => {
      const [name, data] = block.split("\n")
      const event = JSON.parse(data!.replace(/^data: /, ""))
      // the event's name is its type
      expect(name).toBe(`event: ${event.type}`)
      return strictly(Wire.StreamEvent, event)
    })
    const types = events.map((e) => e.type)
    expect(types.slice(0, 3)).toEqual(["message_start", "ping", "content_block_start"])
    expect(types.slice(-3)).toEqual(["content_block_stop", "message_delta", "message_stop"])
    expect(new Set(types.slice(3, -3))).toEqual(new Set(["content_block_delta"]))
    const start = events[0] as Extract<Wire.StreamEvent, { type: "message_start" }>
    expect(start.message).toMatchObject({ content: [], stop_reason: null, usage: { output_tokens: 0 } })
    const delta = events.at(-2) as Extract<Wire.StreamEvent, { type: "message_delta" }>
    expect(delta.delta).toEqual({ stop_reason: "max_tokens", stop_sequence: null })
    expect(delta.usage.output_tokens).toBe(6)
    expect(delta.usage.input_tokens).toBe(start.message.usage.input_tokens)
    for (const e of events.slice(2, -2)) expect((e as { index: number }).index).toBe(0)
  })
})

describe("POST /v1/messages/count_tokens", () => {
  it("counts what the same request's usage reports, and grows with the system prompt", async () => {
    const body = { model: MODEL, messages: ask, system: "You tell stories." }
    const counted = await client.messages.countTokens(body)
    strictly(Wire.MessageTokensCount, counted)
    const used = await client.messages.create({ ...body, max_tokens: 1 })
    expect(counted.input_tokens).toBe(used.usage.input_tokens)
    const bare = await client.messages.countTokens({ model: MODEL, messages: ask })
    expect(bare.input_tokens).toBeLessThan(counted.input_tokens)
  })
})

describe("models and errors", () => {
  it("an unknown claude-* model is served by SHIMMY_ANTHROPIC_MODEL, and the name is echoed", async () => {
    const { data, response } = await client.messages.create({
      model: "claude-sonnet-4-5-20250929",
      max_tokens: 3,
      messages: ask
    }).withResponse()
    expect(data.model).toBe("claude-sonnet-4-5-20250929")
    expect(response.headers.get("x-shimmy-model")).toBe(MODEL)
    const counted = await client.messages.countTokens({ model: "claude-haiku-4-5", messages: ask })
    expect(counted.input_tokens).toBe(data.usage.input_tokens)
  })

  it("the SDK lists and retrieves models in Anthropic's shape; OpenAI's clients still get theirs", async () => {
    const page = await client.models.list()
    expect(page.data.map((m) => m.id).sort()).toEqual(["llama-2-tiny-random", MODEL])
    for (const model of page.data) {
      expect(model).toMatchObject({ type: "model", display_name: expect.any(String), created_at: expect.any(String) })
    }
    const one = await client.models.retrieve(MODEL)
    expect(strictly(Wire.ModelInfo, one).id).toBe(MODEL)
    const missing = await client.models.retrieve("no-such-model").catch((e) => e)
    expect(missing).toBeInstanceOf(NotFoundError)
    expect(missing.error.error.type).toBe("not_found_error")
    const openAi: any = await (await fetch(`${server.url}/v1/models`)).json()
    expect(openAi.object).toBe("list")
    expect(openAi.data[0].object).toBe("model")
  })

  it("an unknown model of another name is NotFoundError, in Anthropic's shape", async () => {
    const error = await client.messages.create({ model: "no-such-model", max_tokens: 3, messages: ask }).catch((
      e
    ) => e)
    expect(error).toBeInstanceOf(NotFoundError)
    expect(error.status).toBe(404)
    strictly(Wire.ErrorBody, error.error)
    expect(error.error.error.type).toBe("not_found_error")
    expect(error.error.error.message).toMatch(/no-such-model/)
  })

  it("bad requests are BadRequestError with invalid_request_error, naming what is wrong", async () => {
    const refused = async (body: Record<string, unknown>) => {
      const error = await client.messages.create({ model: MODEL, max_tokens: 4, messages: ask, ...body } as never)
        .then(() => undefined, (e: unknown) => e)
      expect(error, JSON.stringify(body)).toBeInstanceOf(BadRequestError)
      const apiError = error as BadRequestError
      strictly(Wire.ErrorBody, apiError.error)
      expect((apiError.error as Wire.ErrorBody).error.type).toBe("invalid_request_error")
      return (apiError.error as Wire.ErrorBody).error.message
    }
    expect(await refused({ max_tokens: undefined })).toMatch(/max_tokens/)
    expect(await refused({ max_tokens: 0 })).toMatch(/max_tokens/)
    expect(await refused({ temperature: 1.5 })).toMatch(/temperature/)
    expect(await refused({ messages: [] })).toMatch(/messages/)
    expect(await refused({ messages: [{ role: "robot", content: "hi" }] })).toMatch(/messages\.0\.role/)
    const image = await refused({
      messages: [{
        role: "user",
        content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: "AAAA" } }]
      }]
    })
    expect(image).toMatch(/image.*not supported/)
    const document = await refused({
      messages: [{
        role: "user",
        content: [{
          type: "tool_result",
          tool_use_id: "t",
          content: [{ type: "document", source: { type: "text", media_type: "text/plain", data: "x" } }]
        }]
      }]
    })
    expect(document).toMatch(/document.*not supported/)
    expect(await refused({ stop_sequences: [""] })).toMatch(/stop sequence/)
    expect(await refused({ tool_choice: { type: "any" } })).toMatch(/tool_choice/)
    expect(await refused({ tools: [{ name: "f" }] })).toMatch(/tools\.0\.input_schema/)
    expect(
      await refused({ messages: [{ role: "user", content: [{ type: "tool_use", id: "x", name: "f", input: {} }] }] })
    )
      .toMatch(/assistant/)
  })

  it("a prompt past the context is refused in Anthropic's words, which clients read to compact", async () => {
    // stories260K's context is 2048 tokens; this is more, in JSON and in a stream alike
    const long = [{ role: "user" as const, content: "Once upon a time there was a cat. ".repeat(300) }]
    for (const stream of [false, true]) {
      const error = await client.messages.create({ model: MODEL, max_tokens: 4, messages: long, stream }).then(
        () => undefined,
        (e: unknown) => e
      )
      expect(error).toBeInstanceOf(BadRequestError)
      const body = (error as BadRequestError).error as Wire.ErrorBody
      expect(body.error.type).toBe("invalid_request_error")
      expect(body.error.message).toMatch(/^prompt is too long: \d+ tokens > 2047 maximum$/)
    }
    const counted = await client.messages.countTokens({ model: MODEL, messages: long })
    expect(counted.input_tokens).toBeGreaterThan(2047)
  })

  it("unknown top-level fields, metadata, service_tier, betas and ?beta=true are accepted", async () => {
    const answer = await postJson(`${server.url}/v1/messages?beta=true`, {
      model: MODEL,
      max_tokens: 3,
      messages: ask,
      metadata: { user_id: "user_abc" },
      service_tier: "auto",
      context_management: { edits: [] },
      some_future_field: { anything: true }
    }, { headers: { "anthropic-version": "2023-06-01", "anthropic-beta": "interleaved-thinking-2025-05-14" } })
    expect(answer.status).toBe(200)
    expect(answer.body.type).toBe("message")
  })

  it("paths under /v1/messages that do not exist are 404s, and a wrong method is a 405, in Anthropic's shape", async () => {
    const missing = await postJson(`${server.url}/v1/messages/batches_nope`, {})
    expect(missing.status).toBe(404)
    expect(strictly(Wire.ErrorBody, missing.body).error.type).toBe("not_found_error")
    const wrong = await fetch(`${server.url}/v1/messages`)
    expect(wrong.status).toBe(405)
    expect(strictly(Wire.ErrorBody, await wrong.json()).error.type).toBe("invalid_request_error")
    const malformed = await postJson(`${server.url}/v1/messages`, "{not json")
    expect(malformed.status).toBe(400)
    expect(strictly(Wire.ErrorBody, malformed.body).error.type).toBe("invalid_request_error")
  })
})

describe("claude-* names with several models and none chosen", () => {
  let several: Server
  beforeAll(async () => {
    several = await startServer({
      modelPaths: [sharedModel("stories260K.gguf"), sharedModel("llama-2-tiny-random.gguf")],
      parallel: 1
    })
  }, 60_000)
  afterAll(async () => {
    await several?.close()
  })

  it("are a 404 listing the models until one is in memory, then served by it (while it is the only one)", async () => {
    const sdk = new Anthropic({ baseURL: several.url, apiKey: "unused", maxRetries: 0 })
    const haiku = () =>
      sdk.messages.create({ model: "claude-haiku-4-5", max_tokens: 2, messages: ask }).withResponse().then(
        ({ response }) => response.headers.get("x-shimmy-model"),
        (e: unknown) => e
      )
    const before = await haiku()
    expect(before).toBeInstanceOf(NotFoundError)
    expect((before as NotFoundError).message).toMatch(/stories260K/)
    await sdk.messages.create({ model: MODEL, max_tokens: 2, messages: ask })
    expect(await haiku()).toBe(MODEL)
    await sdk.messages.create({ model: "llama-2-tiny-random", max_tokens: 2, messages: ask })
    expect(await haiku()).toBeInstanceOf(NotFoundError)
  })
})

describe("hostile input", () => {
  const valid = {
    model: MODEL,
    max_tokens: 2,
    system: [{ type: "text", text: "Be brief." }],
    messages: [
      { role: "user", content: [{ type: "text", text: "Hi" }] },
      { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "f", input: { a: 1 } }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: "ok" }] }
    ],
    tools: [{ name: "f", input_schema: { type: "object", properties: { a: { type: "number" } } } }],
    tool_choice: { type: "auto" },
    stop_sequences: ["zz"]
  }
  const values: ReadonlyArray<unknown> = [
    null,
    0,
    -1,
    1e308,
    "",
    "x",
    true,
    [],
    [null],
    {},
    { type: 5 },
    { type: "tool" },
    { type: "image" },
    [{ type: "text" }],
    "\u0000\ud800"
  ]

  /** Every place of a JSON value, as a path of keys. */
  const paths = (value: unknown, at: ReadonlyArray<string | number> = []): Array<ReadonlyArray<string | number>> =>
    typeof value !== "object" || value === null
      ? [at]
      : [at, ...Object.entries(value).flatMap(([k, v]) => paths(v, [...at, Array.isArray(value) ? Number(k) : k]))]

  const replaced = (value: unknown, path: ReadonlyArray<string | number>, by: unknown): unknown => {
    if (path.length === 0) return by
    const copy: any = Array.isArray(value) ? [...value] : { ...(value as object) }
    copy[path[0]!] = replaced(copy[path[0]!], path.slice(1), by)
    return copy
  }

  it(
    "any field of a valid request replaced by a wrong value is a 200 or a 4xx in Anthropic's shape, never a 500",
    async () => {
      let refused = 0
      for (const path of paths(valid).filter((p) => p.length > 0)) {
        for (const value of values) {
          const body = replaced(valid, path, value)
          const answer = await postJson(`${server.url}/v1/messages`, body)
          const where = `${path.join(".")} = ${JSON.stringify(value)}`
          expect([200, 400, 404], where).toContain(answer.status)
          if (answer.status !== 200) {
            refused++
            expect(strictly(Wire.ErrorBody, answer.body).error.message.length, where).toBeGreaterThan(0)
          } else expect(answer.body.type, where).toBe("message")
        }
      }
      expect(refused).toBeGreaterThan(100)
      const health: any = await (await fetch(`${server.url}/api/health`)).json()
      expect(health.status).toBe("healthy")
    },
    120_000
  )
})

describe("with an API key, one model and one sequence", () => {
  let guarded: Server
  beforeAll(async () => {
    guarded = await startServer(
      { modelPaths: [sharedModel("stories260K.gguf")], parallel: 1, maxQueue: 0 },
      { apiKey: Option.some(Redacted.make("sk-test")) }
    )
  }, 60_000)
  afterAll(async () => {
    await guarded?.close()
  })

  it("a wrong key is AuthenticationError; the right one in x-api-key is served", async () => {
    const wrong = new Anthropic({ baseURL: guarded.url, apiKey: "sk-wrong", maxRetries: 0 })
    const error = await wrong.messages.create({ model: MODEL, max_tokens: 2, messages: ask }).catch((e) => e)
    expect(error).toBeInstanceOf(AuthenticationError)
    expect(error.error.error.type).toBe("authentication_error")
    const right = new Anthropic({ baseURL: guarded.url, apiKey: "sk-test", maxRetries: 0 })
    const message = await right.messages.create({ model: MODEL, max_tokens: 2, messages: ask })
    expect(message.usage.output_tokens).toBe(2)
  })

  it("with one model, any claude-* name is served by it", async () => {
    const right = new Anthropic({ baseURL: guarded.url, apiKey: "sk-test", maxRetries: 0 })
    const message = await right.messages.create({ model: "claude-opus-4-1", max_tokens: 2, messages: ask })
    expect(message.model).toBe("claude-opus-4-1")
    expect(message.usage.output_tokens).toBe(2)
  })

  it("busy is overloaded_error with retry-after; an aborted stream frees its sequence at once", async () => {
    const sdk = new Anthropic({ baseURL: guarded.url, apiKey: "sk-test", maxRetries: 0 })
    const long = sdk.messages.stream({ model: MODEL, max_tokens: 2000, messages: ask })
    // the SDK rejects the aborted stream's promises: they are expected here
    long.on("error", () => undefined)
    const ended = long.done().catch(() => "aborted")
    // wait until it is generating
    await new Promise<void>((resolve) => long.once("text", () => resolve()))
    const busy = await sdk.messages.create({ model: MODEL, max_tokens: 2, messages: ask }).catch((e) => e)
    expect(busy).toBeInstanceOf(ServiceUnavailableError)
    expect(busy.status).toBe(503)
    expect(busy.headers.get("retry-after")).toMatch(/^\d+$/)
    expect(busy.error.error.type).toBe("overloaded_error")
    long.abort()
    expect(await ended).toBe("aborted")
    const started = performance.now()
    for (;;) {
      const next = await sdk.messages.create({ model: MODEL, max_tokens: 2, messages: ask }).catch((e) => e)
      if (!(next instanceof ServiceUnavailableError)) {
        expect(next.usage.output_tokens).toBe(2)
        break
      }
      expect(performance.now() - started).toBeLessThan(1500)
      await sleep(25)
    }
  })
})

describe("a failure after the stream started", () => {
  it("ends the stream with `event: error` in Anthropic's shape, after the blocks so far", async () => {
    const stream = Render.events(MODEL, 5, { stops: [], maxTokens: 100 })
    const failing = Stream.concat(
      Stream.make(tokenEvent("Once", 1), tokenEvent(" upon", 1)),
      Stream.fail(new GenerationFailed({ model: MODEL, reason: "the context broke" }))
    )
    const frames = await Effect.runPromise(
      Stream.runCollect(
        Sse.render(failing, stream.frames, Render.dialect, { method: "POST", path: "/v1/messages" }, {
          framing: Sse.namedEvents
        })
      )
    )
    // the events of a chunk are written as one string: the stream is read as the client parses it
    const events = Chunk.toReadonlyArray(frames).join("").split("\n\n").filter((e) => e.length > 0)
    const last = events.at(-1)!
    expect(last.startsWith("event: error\ndata: ")).toBe(true)
    const body = strictly(Wire.ErrorBody, JSON.parse(last.split("\n")[1]!.slice("data: ".length)))
    expect(body.error.type).toBe("api_error")
    expect(body.error.message).toMatch(/the context broke/)
    expect(events.slice(0, -1).map((f) => f.split("\n")[0])).toEqual([
      "event: content_block_start",
      "event: content_block_delta",
      "event: content_block_delta"
    ])
  })
})
