import { Chunk, Effect, Option, Redacted, Schema, Stream, type Types } from "effect"
import OpenAI, { APIError, APIUserAbortError, AuthenticationError, BadRequestError, NotFoundError } from "openai"
import { zodTextFormat } from "openai/helpers/zod"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { z } from "zod"
import { type EngineError, GenerationFailed } from "../../src/domain/Errors.js"
import {
  doneEvent,
  type GenerationEvent,
  reasoningEvent,
  tokenEvent,
  toolCallEvent,
  Usage
} from "../../src/domain/Generation.js"
import { ResponseObject, StreamEvent } from "../../src/domain/ResponseObject.js"
import { ResponseRequest } from "../../src/domain/Responses.js"
import { outputBuilder } from "../../src/http/responses/Output.js"
import * as Render from "../../src/http/responses/Render.js"
import * as Sse from "../../src/http/Sse.js"
import { postJson, sleep } from "../support/clients.js"
import { checkLifecycle } from "../support/responses.js"
import { type RunningServer, startServer } from "../support/server.js"

/**
 * OpenAI's Responses API through the official `openai` SDK: `responses.create` (JSON and raw
 * events), the `responses.stream` helper (which checks every index and rebuilds the response),
 * its typed errors, and a client that goes away. Tiny models write gibberish: the assertions are
 * on structure, token counts and statuses.
 */

const MODEL = "stories260K"

type Server = RunningServer & { readonly close: () => Promise<void> }
let server: Server
let openai: OpenAI

beforeAll(async () => {
  server = await startServer()
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 })
})
afterAll(() => server?.close())

const strictly = <A, I>(schema: Schema.Schema<A, I>, value: unknown) =>
  Schema.decodeUnknownSync(schema, { onExcessProperty: "error" })(value)

interface ErrorJson {
  readonly error: { readonly message: string; readonly type: string; readonly code: string }
}

const failure = (promise: PromiseLike<unknown>): Promise<unknown> =>
  Promise.resolve(promise)
    .then(() => undefined, (e: unknown) => e)
describe("responses.create", () => {
  it("a string input answers a response whose output_text is its message's text", async () => {
    const ask = { model: MODEL, input: "Once upon a time", temperature: 0, max_output_tokens: 24 }
    const response = await openai.responses.create(ask)
    // the wire answer itself, before the SDK adds output_text: exactly the Schema's fields
    const raw = await postJson(`${server.url}/v1/responses`, ask)
    expect(raw.status).toBe(200)
    strictly(ResponseObject, raw.body)
    expect(raw.body.output[0].content).toEqual(response.output[0]!.type === "message" && response.output[0]!.content)
    expect(response.id).toMatch(/^resp_[0-9a-f]{32}$/)
    expect(response.object).toBe("response")
    // this model writes on past any limit: it stops at max_output_tokens
    expect(response.status).toBe("incomplete")
    expect(response.error).toBeNull()
    expect(response.output).toHaveLength(1)
    const message = response.output[0]!
    expect(message.type).toBe("message")
    if (message.type !== "message") return
    expect(message).toMatchObject({ role: "assistant", status: "incomplete", id: expect.stringMatching(/^msg_/) })
    const part = message.content[0]!
    expect(part.type === "output_text" && part.annotations).toEqual([])
    expect(response.output_text.length).toBeGreaterThan(0)
    expect(part.type === "output_text" && part.text).toBe(response.output_text)
    const usage = response.usage!
    expect(usage.input_tokens).toBeGreaterThan(3)
    expect(usage.output_tokens).toBeGreaterThan(0)
    expect(usage.total_tokens).toBe(usage.input_tokens + usage.output_tokens)
    expect(usage.output_tokens_details.reasoning_tokens).toBe(0)
    expect(usage.input_tokens_details.cached_tokens).toBe(0)
    // the request's settings, with OpenAI's defaults; nothing was stored
    expect(response).toMatchObject({
      model: MODEL,
      instructions: null,
      tools: [],
      tool_choice: "auto",
      parallel_tool_calls: true,
      temperature: 0,
      top_p: 1,
      max_output_tokens: 24,
      text: { format: { type: "text" } },
      store: false,
      metadata: {}
    })
  })

  it("max_output_tokens cuts the answer: status incomplete, the reason, exactly that many tokens", async () => {
    const response = await openai.responses.create({ model: MODEL, input: "Once upon a time", max_output_tokens: 3 })
    expect(response.status).toBe("incomplete")
    expect(response.incomplete_details).toEqual({ reason: "max_output_tokens" })
    expect(response.usage!.output_tokens).toBe(3)
    expect(response.output[0]).toMatchObject({ type: "message", status: "incomplete" })
    expect(response.max_output_tokens).toBe(3)
  })

  it("items with instructions and a multi-turn history render, longer than the same question alone", async () => {
    const single = await openai.responses.create({ model: MODEL, input: "Who is Lily?", max_output_tokens: 2 })
    const response = await openai.responses.create({
      model: MODEL,
      instructions: "You tell short stories.",
      input: [
        { role: "developer", content: "Keep it short." },
        { type: "message", role: "user", content: [{ type: "input_text", text: "Once upon a time" }] },
        {
          type: "message",
          id: "msg_1",
          status: "completed",
          role: "assistant",
          content: [{ type: "output_text", text: "there was a girl named Lily.", annotations: [] }]
        },
        { role: "assistant", content: "She had a dog." },
        { role: "user", content: "Who is Lily?" }
      ],
      max_output_tokens: 2,
      store: true,
      metadata: { run: "7" },
      user: "someone",
      truncation: "disabled",
      include: ["reasoning.encrypted_content"],
      service_tier: "auto",
      prompt_cache_key: "k",
      safety_identifier: "s"
    })
    expect(response.instructions).toBe("You tell short stories.")
    expect(response.usage!.input_tokens).toBeGreaterThan(single.usage!.input_tokens + 15)
    expect(response.metadata).toEqual({ run: "7" })
    // accepted, not honoured: the answer says so
    expect(response).toHaveProperty("store", false)
    // an earlier response's output goes back as input, as agent loops do
    const next = await openai.responses.create({
      model: MODEL,
      input: [
        { role: "user", content: "Once upon a time" },
        ...response.output as Array<OpenAI.Responses.ResponseInputItem>,
        { role: "user", content: "And?" }
      ],
      max_output_tokens: 2
    })
    expect(next.usage!.input_tokens).toBeGreaterThan(response.usage!.output_tokens + 6)
  })

  it("raw events: created, in_progress, the item's lifecycle, the end; sequence numbers count from 0", async () => {
    const events: Array<OpenAI.Responses.ResponseStreamEvent> = []
    const stream = await openai.responses.create({
      model: MODEL,
      input: "Once upon a time",
      max_output_tokens: 30,
      stream: true
    })
    for await (const event of stream) events.push(event)
    for (const event of events) strictly(StreamEvent, event)
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i))
    const types = events.map((e) => e.type)
    expect(types.slice(0, 4)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added"
    ])
    expect(types.slice(-4)).toEqual([
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.incomplete"
    ])
    const deltas = events.filter((e) => e.type === "response.output_text.delta")
    expect(deltas.length).toBe(types.length - 8)
    const last = events.at(-1)!
    if (last.type !== "response.incomplete") throw new Error("no response.incomplete")
    const text = deltas.map((d) => d.delta).join("")
    const done = events.find((e) => e.type === "response.output_text.done")!
    expect(done.type === "response.output_text.done" && done.text).toBe(text)
    const created = events[0]!
    expect(created.type === "response.created" && created.response).toMatchObject({
      id: last.response.id,
      status: "in_progress",
      output: [],
      usage: null
    })
    const message = last.response.output[0]!
    expect(message.type === "message" && message.content[0]).toMatchObject({ type: "output_text", text })
    // a delta is one or more tokens that decode to whole characters
    expect(last.response.usage!.output_tokens).toBeGreaterThanOrEqual(deltas.length)
  })

  it("the stream helper rebuilds the response from the deltas; finalResponse equals the last event's", async () => {
    const stream = openai.responses.stream({ model: MODEL, input: "Once upon a time", max_output_tokens: 20 })
    let text = ""
    stream.on("response.output_text.delta", (event) => {
      text += event.delta
      expect(event.snapshot).toBe(text)
    })
    const final = await stream.finalResponse()
    expect(final.status).toBe("incomplete")
    expect(final.output_text).toBe(text)
    expect(final.usage!.output_tokens).toBe(20)
  })
})

describe("text.format", () => {
  it("json_schema output parses and validates; the format is echoed", async () => {
    const schema = {
      type: "object",
      properties: {
        name: { type: "string", maxLength: 12 },
        kind: { enum: ["cat", "dog"] },
        tags: { type: "array", items: { type: "boolean" }, maxItems: 3 }
      },
      required: ["name", "kind", "tags"],
      additionalProperties: false
    }
    const Expected = Schema.Struct({
      name: Schema.String.pipe(Schema.maxLength(12)),
      kind: Schema.Literal("cat", "dog"),
      tags: Schema.Array(Schema.Boolean).pipe(Schema.maxItems(3))
    })
    const format = { type: "json_schema" as const, name: "pet", schema, strict: true }
    for (const temperature of [0, 1]) {
      const response = await openai.responses.create({
        model: MODEL,
        input: "Describe a pet as JSON.",
        text: { format },
        max_output_tokens: 300,
        temperature
      })
      expect(response.status, response.output_text).toBe("completed")
      expect(Schema.decodeUnknownEither(Expected, { onExcessProperty: "error" })(JSON.parse(response.output_text))._tag)
        .toBe("Right")
      expect(response.text!.format).toEqual(format)
      expect(response.incomplete_details).toBeNull()
      expect(response.output[0]).toMatchObject({ type: "message", status: "completed" })
    }
    // streamed, it ends with response.completed, and the helper's response is that event's
    const stream = openai.responses.stream({
      model: MODEL,
      input: "Describe a pet as JSON.",
      text: { format },
      max_output_tokens: 300,
      temperature: 0
    })
    const events: Array<OpenAI.Responses.ResponseStreamEvent> = []
    stream.on("event", (event) => events.push(event))
    const final = await stream.finalResponse()
    const last = events.at(-1)!
    expect(last.type).toBe("response.completed")
    expect(final.status).toBe("completed")
    // the helper adds `parsed` to each part
    expect(final.output).toMatchObject(last.type === "response.completed" ? last.response.output : [])
    expect(Schema.decodeUnknownEither(Expected)(JSON.parse(final.output_text))._tag).toBe("Right")
    // the SDK's own structured-output helper: a zod schema in, the parsed object out
    const Pet = z.object({ name: z.string().max(12), kind: z.enum(["cat", "dog"]), tags: z.array(z.boolean()).max(3) })
    const parsed = await openai.responses.parse({
      model: MODEL,
      input: "Describe a pet as JSON.",
      text: { format: zodTextFormat(Pet, "pet") },
      max_output_tokens: 300,
      temperature: 0
    })
    expect(parsed.status).toBe("completed")
    expect(Pet.parse(parsed.output_parsed)).toEqual(parsed.output_parsed)
    const object = await openai.responses.create({
      model: MODEL,
      input: "JSON please",
      text: { format: { type: "json_object" } },
      max_output_tokens: 8
    })
    expect(object.output_text).toMatch(/^\{\s*"/)
  })
})

describe("refusals, as the SDK's typed errors", () => {
  const refused = async (body: Record<string, unknown>) => {
    const error = await failure(openai.responses.create({ model: MODEL, input: "Hi", ...body } as never))
    expect(error, JSON.stringify(body)).toBeInstanceOf(BadRequestError)
    return error as BadRequestError
  }

  it("an unknown model is a NotFoundError naming the models there are", async () => {
    const error = await failure(openai.responses.create({ model: "nope", input: "Hi" }))
    expect(error).toBeInstanceOf(NotFoundError)
    expect((error as NotFoundError).message).toMatch(/stories260K/)
    expect((error as NotFoundError).code).toBe("model_not_found")
    // streamed too: the failure comes before the first event, so it still has its status
    const streamed = await failure(openai.responses.stream({ model: "nope", input: "Hi" }).finalResponse())
    expect(streamed).toBeInstanceOf(NotFoundError)
    const raw = await fetch(`${server.url}/v1/responses`, {
      method: "POST",
      body: JSON.stringify({ model: "nope", input: "Hi", stream: true })
    })
    expect(raw.status).toBe(404)
    expect(raw.headers.get("content-type")).toMatch(/application\/json/)
    await raw.arrayBuffer()
  })

  it("no request body, however wrong, gets a 500 or takes the server down", { timeout: 180_000 }, async () => {
    const valid = {
      model: MODEL,
      input: [{ role: "user", content: [{ type: "input_text", text: "Hi" }] }],
      tools: [{ type: "function", name: "f", parameters: { type: "object", properties: {} } }],
      tool_choice: "none",
      text: { format: { type: "text" } },
      reasoning: { effort: null },
      max_output_tokens: 2
    }
    const odd = [null, true, 0, -1, 1.5, "", "x", [], [null], {}, { type: "x" }, 1e308, "\u0000"]
    // every field, and every field of the first input item, replaced by each odd value
    const paths: Array<ReadonlyArray<string | number>> = [
      ...Object.keys(valid).map((k) => [k]),
      ["input", 0, "role"],
      ["input", 0, "content"],
      ["input", 0, "content", 0, "type"],
      ["input", 0, "content", 0, "text"],
      ["tools", 0, "name"],
      ["tools", 0, "parameters"],
      ["text", "format", "type"],
      ["reasoning", "effort"]
    ]
    const statuses = new Map<number, number>()
    for (const at of paths) {
      for (const value of odd) {
        const body = structuredClone(valid) as Record<string | number, any>
        let node = body
        for (const key of at.slice(0, -1)) node = node[key]
        node[at.at(-1)!] = value
        const answer = await postJson(`${server.url}/v1/responses`, body)
        // 404: an odd model name
        expect([200, 400, 404], `${at.join(".")} = ${JSON.stringify(value)}`).toContain(answer.status)
        if (answer.status !== 200) expect(typeof answer.body.error.message).toBe("string")
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
      }
    }
    expect(statuses.get(400)).toBeGreaterThan(50)
    for (const body of ["", "[]", "null", "{", "\"x\""]) {
      const answer = await fetch(`${server.url}/v1/responses`, { method: "POST", body })
      expect(answer.status, body).toBe(400)
      expect(((await answer.json()) as ErrorJson).error.type).toBe("invalid_request_error")
    }
  })

  it("what Shimmy cannot do is refused by field, saying why", async () => {
    const stateless = await refused({ previous_response_id: "resp_123" })
    expect(stateless.param).toBe("previous_response_id")
    expect(stateless.message).toMatch(/stateless/)
    expect((await refused({ conversation: "conv_1" })).param).toBe("conversation")
    expect((await refused({ background: true })).param).toBe("background")
    const image = await refused({
      input: [{
        role: "user",
        content: [{ type: "input_text", text: "What is this?" }, { type: "input_image", image_url: "https://x/y.png" }]
      }]
    })
    expect(image.param).toBe("input.0.content.1.type")
    expect(image.message).toMatch(/text only/)
    expect((await refused({ input: [{ role: "user", content: [{ type: "input_file", file_id: "f" }] }] })).param).toBe(
      "input.0.content.0.type"
    )
    const web = await refused({ tools: [{ type: "web_search" }] })
    expect(web.param).toBe("tools.0.type")
    expect(web.message).toMatch(/"web_search" tools are not supported/)
    expect((await refused({ input: [{ type: "item_reference", id: "msg_1" }] })).message).toMatch(/stateless/)
    expect((await refused({ input: [{ type: "computer_call_output", call_id: "c" }] })).param).toBe("input.0.type")
    expect((await refused({ input: [] })).param).toBe("input")
    expect((await refused({ input: 5 })).param).toBe("input")
    expect((await refused({ include: ["message.output_text.logprobs"] })).message).toMatch(/log probabilities/)
    expect((await refused({ top_logprobs: 5 })).param).toBe("top_logprobs")
    expect((await refused({ frobnicate: 1 })).message).toMatch(/unrecognized request argument supplied: frobnicate/)
    expect((await refused({ max_output_tokens: 0 })).param).toBe("max_output_tokens")
    expect((await refused({ tool_choice: "required" })).param).toBe("tool_choice")
    const orphan = await refused({ input: [{ type: "function_call_output", call_id: "call_9", output: "21" }] })
    expect(orphan.param).toBe("input.0.call_id")
    // the engine's checks, in this API's field names
    expect((await refused({ reasoning: { effort: "high" } })).param).toBe("reasoning.effort")
    const pattern = await refused({
      text: {
        format: { type: "json_schema", name: "x", schema: { type: "string", pattern: "^a" } }
      }
    })
    expect(pattern.param).toBe("text.format")
  })

  it("the endpoints that would look a response up answer 404: nothing is stored", async () => {
    for (
      const call of [
        () => openai.responses.retrieve("resp_1"),
        () => openai.responses.delete("resp_1"),
        () => openai.responses.cancel("resp_1"),
        () => openai.responses.inputItems.list("resp_1")
      ]
    ) {
      const error = await failure(call())
      expect(error).toBeInstanceOf(NotFoundError)
      expect((error as NotFoundError).message).toMatch(/keeps no responses/)
    }
    const raw = await fetch(`${server.url}/v1/responses/resp_1`)
    expect(raw.status).toBe(404)
    expect(await raw.json()).toEqual({
      error: {
        message: expect.stringMatching(/stateless/),
        type: "invalid_request_error",
        param: null,
        code: "not_found"
      }
    })
  })
})

/**
 * The SDK's stream helper over what the renderer writes for `events`, served by a fake fetch:
 * sequences the real engine cannot be made to produce on demand (a failure in mid-stream, text
 * then several calls) still go through the SDK's own accumulation and checks.
 */
const sdkStream = async (events: Stream.Stream<GenerationEvent, EngineError>) => {
  const request = Schema.decodeUnknownSync(ResponseRequest)({ model: "m", input: "x", stream: true })
  const builder = outputBuilder(Render.envelopeOf(request))
  const body = [
    ...builder.opening().map(Sse.namedEvents.frame),
    ...Chunk.toReadonlyArray(
      await Effect.runPromise(Stream.runCollect(
        Sse.render(events, builder.frames, Render.dialect, { method: "POST", path: "/v1/responses" }, {
          framing: Sse.namedEvents,
          failure: builder.failure
        })
      ))
    )
  ].join("")
  const client = new OpenAI({
    apiKey: "unused",
    baseURL: "http://shimmy.invalid/v1",
    maxRetries: 0,
    fetch: async () => new Response(body, { headers: { "content-type": "text/event-stream" } })
  })
  const seen: Array<OpenAI.Responses.ResponseStreamEvent> = []
  const stream = client.responses.stream({ model: "m", input: "x" })
  stream.on("event", (event) => seen.push(event))
  const final = await stream.finalResponse()
  for (const event of seen) strictly(StreamEvent, event)
  return { events: seen, final, builder }
}

const call = (index: number, name: string, args: string) =>
  toolCallEvent(index, { id: `call_${index}`, name, arguments: args })

describe("renderings the engine cannot be made to produce on demand", () => {
  it("a failure after the start ends with response.failed (status failed, the error), as the helper hands back", async () => {
    const failing = Stream.make(reasoningEvent("hmm", 1), tokenEvent("Once", 1)).pipe(
      Stream.concat(Stream.fail(new GenerationFailed({ model: "m", reason: "decode failed" })))
    )
    const { events, final } = await sdkStream(failing)
    expect(events.at(-1)!.type).toBe("response.failed")
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i))
    expect(final.status).toBe("failed")
    expect(final.error).toEqual({ code: "server_error", message: "Generation with 'm' failed: decode failed" })
    expect(final.output.map((item) => [item.type, "status" in item ? item.status : undefined])).toEqual([
      ["reasoning", "completed"],
      ["message", "incomplete"]
    ])
    expect(final.output_text).toBe("Once")
  })

  it("a thought, text, then two calls: four items in order, each with its own events", async () => {
    const { events, final } = await sdkStream(Stream.make(
      reasoningEvent("Let me ", 2),
      reasoningEvent("look.", 1),
      tokenEvent("Checking", 1),
      tokenEvent(" both.", 2),
      call(0, "get_weather", "{\"city\":\"Paris\"}"),
      call(1, "get_time", "{\"zone\":\"CET\"}"),
      doneEvent("tool_calls", Usage.of(10, 9))
    ))
    checkLifecycle(events, final)
    expect(events.at(-1)!.type).toBe("response.completed")
    expect(final.output).toMatchObject([
      { type: "reasoning", status: "completed", content: [{ type: "reasoning_text", text: "Let me look." }] },
      { type: "message", status: "completed", content: [{ type: "output_text", text: "Checking both." }] },
      { type: "function_call", call_id: "call_0", name: "get_weather", arguments: "{\"city\":\"Paris\"}" },
      { type: "function_call", call_id: "call_1", name: "get_time", arguments: "{\"zone\":\"CET\"}" }
    ])
    expect(final.output_text).toBe("Checking both.")
    expect(final.usage).toMatchObject({
      input_tokens: 10,
      output_tokens: 9,
      output_tokens_details: { reasoning_tokens: 3 }
    })
  })

  it("text after a call opens a new message; the builder's final response is the last event's", async () => {
    const request = Schema.decodeUnknownSync(ResponseRequest)({ model: "m", input: "x" })
    const builder = outputBuilder(Render.envelopeOf(request))
    const frames = [
      ...builder.opening(),
      ...[tokenEvent("a", 1), call(0, "f", "{}"), tokenEvent("b", 1), doneEvent("stop", Usage.of(2, 3))]
        .flatMap(builder.frames)
    ]
    const last = frames.at(-1)!
    expect(last.type === "response.completed" && last.response).toEqual(builder.final())
    expect(builder.final()!.output.map((item) => item.type)).toEqual(["message", "function_call", "message"])
    const { events, final } = await sdkStream(
      Stream.make(tokenEvent("a", 1), call(0, "f", "{}"), tokenEvent("b", 1), doneEvent("stop", Usage.of(2, 3)))
    )
    checkLifecycle(events, final)
    expect(final.output_text).toBe("ab")
  })

  it("a generation that writes nothing still answers one empty message", async () => {
    const { events, final } = await sdkStream(Stream.make(doneEvent("stop", Usage.of(4, 0))))
    checkLifecycle(events, final)
    expect(final.output).toMatchObject([{ type: "message", status: "completed", content: [{ text: "" }] }])
    expect(final.output_text).toBe("")
  })
})

describe("authentication", () => {
  let guarded: Server
  beforeAll(async () => {
    guarded = await startServer({}, { apiKey: Option.some(Redacted.make("sekrit")) })
  })
  afterAll(() => guarded?.close())

  it("a wrong key is an AuthenticationError; the right one answers", async () => {
    const wrong = new OpenAI({ baseURL: `${guarded.url}/v1`, apiKey: "wrong", maxRetries: 0 })
    expect(await failure(wrong.responses.create({ model: MODEL, input: "Hi" }))).toBeInstanceOf(AuthenticationError)
    const right = new OpenAI({ baseURL: `${guarded.url}/v1`, apiKey: "sekrit", maxRetries: 0 })
    const response = await right.responses.create({ model: MODEL, input: "Hi", max_output_tokens: 2 })
    expect(response.usage!.output_tokens).toBe(2)
  })
})

describe("a client that goes away", () => {
  let single: Server
  let client: OpenAI
  beforeAll(async () => {
    single = await startServer({ parallel: 1, maxQueue: 0 })
    client = new OpenAI({ baseURL: `${single.url}/v1`, apiKey: "unused", maxRetries: 0 })
  })
  afterAll(() => single?.close())

  const short = () => client.responses.create({ model: MODEL, input: "Once upon a time", max_output_tokens: 4 })

  /** A short request answered within 1.5 s: the abandoned generation no longer holds the sequence. */
  const freedSoon = async () => {
    const started = performance.now()
    for (;;) {
      const answer = await short().then((r) => r, (e: unknown) => e)
      if (!(answer instanceof APIError)) {
        expect((answer as OpenAI.Responses.Response).usage!.output_tokens).toBe(4)
        return
      }
      expect(answer.status).toBe(503)
      expect(performance.now() - started).toBeLessThan(1500)
      await sleep(25)
    }
  }

  it("the premise: while a long generation holds the one sequence, another request is refused with 503", async () => {
    const long = client.responses.create({ model: MODEL, input: "Once upon a time", max_output_tokens: 600 })
    await sleep(200)
    const busy = await failure(short())
    expect(busy).toBeInstanceOf(APIError)
    expect((busy as APIError).status).toBe(503)
    expect((busy as APIError).code).toBe("server_busy")
    expect((await long).status).toBe("incomplete")
  })

  it("a stream aborted after its first delta stops its generation", async () => {
    const stream = client.responses.stream({ model: MODEL, input: "Once upon a time", max_output_tokens: 2000 })
    const ended = stream.finalResponse().then(() => undefined, (e: unknown) => e)
    await new Promise<void>((resolve) => stream.once("response.output_text.delta", () => resolve()))
    stream.abort()
    expect(await ended).toBeInstanceOf(APIUserAbortError)
    await freedSoon()
  })

  it("a JSON request aborted while it generates stops its generation", async () => {
    const controller = new AbortController()
    const pending = failure(
      client.responses.create({ model: MODEL, input: "Once upon a time", max_output_tokens: 2000 }, {
        signal: controller.signal
      })
    )
    await sleep(150)
    controller.abort()
    expect(await pending).toBeInstanceOf(APIUserAbortError)
    await freedSoon()
  })
})

/**
 * Checked by tsc: the wire object is the SDK's `Response`, but for `output_text` (the SDK computes
 * it) and a `usage` that is null until the end (as OpenAI sends it; the SDK's type leaves it out).
 */
export const wireIsSdkResponse = (
  r: Types.DeepMutable<ResponseObject>
): Omit<OpenAI.Responses.Response, "output_text" | "usage"> & { usage: OpenAI.Responses.ResponseUsage | null } => r
