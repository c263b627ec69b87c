import { HumanMessage, ToolMessage } from "@langchain/core/messages"
import { tool as langchainTool } from "@langchain/core/tools"
import { ChatOpenAI } from "@langchain/openai"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import OpenAI, { BadRequestError } from "openai"
import { zodResponsesFunction } from "openai/helpers/zod"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { z } from "zod"
import { SHARED_MODELS } from "./support/models.js"
import { checkLifecycle } from "./support/responses.js"
import { type RunningServer, startServer } from "./support/server.js"
import { makeTemplateModels } from "./support/templates.js"

/**
 * Function calls and reasoning on /v1/responses through the official `openai` SDK, over synthetic
 * models (random weights, real tokenizers and real families' templates). Random weights never call
 * a tool or close a thought by themselves, so calls are forced ("required" or a named function,
 * enforced by grammar) and thoughts run to max_output_tokens.
 */

let dir: string
let server: RunningServer & { readonly close: () => Promise<void> }
let openai: OpenAI

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "shimmy-responses-tools-"))
  await makeTemplateModels(dir, ["qwen25", "llama31", "qwen3", "r1"])
  server = await startServer({ modelPaths: [dir, path.join(SHARED_MODELS, "stories260K.gguf")], parallel: 2 })
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 })
}, 120_000)

afterAll(async () => {
  await server?.close()
  await fs.rm(dir, { recursive: true, force: true })
})

const weatherParameters = {
  type: "object",
  properties: { city: { type: "string", maxLength: 12 }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
  required: ["city", "unit"],
  additionalProperties: false
}

const tools: Array<OpenAI.Responses.FunctionTool> = [
  {
    type: "function",
    name: "get_weather",
    description: "Current weather in a city",
    parameters: weatherParameters,
    strict: true
  },
  {
    type: "function",
    name: "get_time",
    description: "Local time in a timezone",
    parameters: { type: "object", properties: { zone: { type: "string", maxLength: 16 } }, required: ["zone"] },
    strict: null
  }
]

const ask = "What's the weather in Paris?"

// the first request to each model loads it; on a loaded 2-core machine that alone can take a minute
const SLOW = { timeout: 240_000 }

const expectWeather = (args: unknown) => {
  expect(args).toEqual({ city: expect.any(String), unit: expect.stringMatching(/^(celsius|fahrenheit)$/) })
  expect([...(args as { city: string }).city].length).toBeLessThanOrEqual(12)
}

const calls = (response: OpenAI.Responses.Response) =>
  response.output.filter((item): item is OpenAI.Responses.ResponseFunctionToolCall => item.type === "function_call")

type Event = OpenAI.Responses.ResponseStreamEvent

/** Every event of a streamed request, through the SDK's stream helper, and its final response. */
const streamed = async (body: OpenAI.Responses.ResponseCreateParamsStreaming | Record<string, unknown>) => {
  const stream = openai.responses.stream(body as OpenAI.Responses.ResponseCreateParamsStreaming)
  const events: Array<Event> = []
  stream.on("event", (event) => events.push(event))
  const final = await stream.finalResponse()
  checkLifecycle(events, final)
  return { events, final }
}

describe("function calls", SLOW, () => {
  it("'required' makes every family call one of the tools: function_call items whose arguments validate", async () => {
    for (const model of ["qwen25", "llama31", "qwen3"]) {
      const response = await openai.responses.create({
        model,
        input: ask,
        tools,
        tool_choice: "required",
        parallel_tool_calls: false,
        max_output_tokens: 120,
        temperature: 0.8
      })
      expect(response.status, model).toBe("completed")
      // a forced call is the whole answer: no message item
      expect(response.output.map((item) => item.type), `${model}: ${JSON.stringify(response.output)}`).toEqual([
        "function_call"
      ])
      const call = calls(response)[0]!
      expect(call).toMatchObject({
        id: expect.stringMatching(/^fc_/),
        call_id: expect.stringMatching(/^call_/),
        status: "completed"
      })
      expect(["get_weather", "get_time"]).toContain(call.name)
      const args = JSON.parse(call.arguments)
      if (call.name === "get_weather") expectWeather(args)
      else expect(args).toEqual({ zone: expect.any(String) })
      expect(response.output_text).toBe("")
      expect(response.tool_choice).toBe("required")
      expect(response.parallel_tool_calls).toBe(false)
      expect(response.tools).toEqual([
        { ...tools[0], strict: true },
        { ...tools[1], strict: true }
      ])
    }
  })

  it("a named choice calls that function; streamed, the argument deltas reassemble to the JSON answer's call", async () => {
    const request = {
      model: "qwen25",
      input: ask,
      tools,
      tool_choice: { type: "function" as const, name: "get_weather" },
      parallel_tool_calls: false,
      max_output_tokens: 120,
      temperature: 0
    }
    const whole = calls(await openai.responses.create(request))[0]!
    expect(whole.name).toBe("get_weather")
    expectWeather(JSON.parse(whole.arguments))
    const { events, final } = await streamed(request)
    const types = events.map((e) => e.type)
    expect(types[0]).toBe("response.created")
    expect(types.at(-1)).toBe("response.completed")
    const added = events.find((e) => e.type === "response.output_item.added")!
    expect(added.type === "response.output_item.added" && added.item).toMatchObject({
      type: "function_call",
      name: "get_weather",
      arguments: "",
      status: "in_progress"
    })
    const deltas = events.flatMap((e) => e.type === "response.function_call_arguments.delta" ? [e.delta] : [])
    const done = events.find((e) => e.type === "response.function_call_arguments.done")!
    expect(done.type === "response.function_call_arguments.done" && done.arguments).toBe(deltas.join(""))
    expect(deltas.join("")).toBe(whole.arguments)
    const call = calls(final)[0]!
    expect(call).toMatchObject({ name: "get_weather", arguments: whole.arguments, status: "completed" })
    expect(types.indexOf("response.output_item.done")).toBeGreaterThan(
      types.indexOf("response.function_call_arguments.done")
    )
  })

  it("the SDK's responses.parse with a zod function tool parses the call's arguments", async () => {
    const Weather = z.object({ city: z.string().max(12), unit: z.enum(["celsius", "fahrenheit"]) })
    const response = await openai.responses.parse({
      model: "llama31",
      input: ask,
      tools: [zodResponsesFunction({ name: "get_weather", description: "Current weather", parameters: Weather })],
      tool_choice: "required",
      max_output_tokens: 120,
      temperature: 0
    })
    const call = response.output.find((item) => item.type === "function_call")
    expect(call?.type === "function_call" && call.name).toBe("get_weather")
    if (call?.type !== "function_call") return
    expectWeather(call.parsed_arguments)
    expect(Weather.parse(call.parsed_arguments)).toEqual(JSON.parse(call.arguments))
  })

  it("an agent loop: the call and its output go back as items, and the next turn is answered", async () => {
    const first = await openai.responses.create({
      model: "llama31",
      input: [{ role: "user", content: ask }],
      tools,
      tool_choice: { type: "function", name: "get_weather" },
      max_output_tokens: 120,
      temperature: 0
    })
    const call = calls(first)[0]!
    const history: Array<OpenAI.Responses.ResponseInputItem> = [
      { role: "user", content: ask },
      call,
      { type: "function_call_output", call_id: call.call_id, output: "{\"temperature\":21,\"sky\":\"clear\"}" }
    ]
    const second = await openai.responses.create({
      model: "llama31",
      input: history,
      tools,
      max_output_tokens: 6,
      temperature: 0
    })
    expect(second.status).toBe("incomplete")
    expect(second.output_text.length).toBeGreaterThan(0)
    // the call and its result were rendered into the prompt
    const without = await openai.responses.create({
      model: "llama31",
      input: ask,
      tools,
      max_output_tokens: 1
    })
    expect(second.usage!.input_tokens).toBeGreaterThan(without.usage!.input_tokens + 15)
    // a call made by hand, with its output as parts, renders as well
    const parts = await openai.responses.create({
      model: "qwen25",
      instructions: "You are a weather bot.",
      input: [
        { role: "user", content: ask },
        { type: "function_call", call_id: "call_1", name: "get_time", arguments: "{\"zone\":\"CET\"}" },
        { type: "function_call_output", call_id: "call_1", output: [{ type: "input_text", text: "12:00" }] }
      ],
      tools,
      max_output_tokens: 2
    })
    expect(parts.usage!.output_tokens).toBe(2)
  })

  it("'none' never calls, and 'auto' on random weights answers in text", async () => {
    for (const tool_choice of ["none", "auto"] as const) {
      const response = await openai.responses.create({
        model: "qwen25",
        input: ask,
        tools,
        tool_choice,
        max_output_tokens: 8,
        temperature: 0
      })
      expect(calls(response), tool_choice).toEqual([])
      expect(response.status).toBe("incomplete")
      expect(response.output_text.length).toBeGreaterThan(0)
    }
  })

  it("refuses what cannot be done, in this API's field names", async () => {
    const refused = async (body: Record<string, unknown>) => {
      const error = await openai.responses.create(
        { model: "qwen25", input: ask, max_output_tokens: 4, ...body } as never
      )
        .then(() => undefined, (e: unknown) => e)
      expect(error, JSON.stringify(body)).toBeInstanceOf(BadRequestError)
      return error as BadRequestError
    }
    expect((await refused({ tools, tool_choice: { type: "function", name: "nope" } })).param).toBe("tool_choice")
    expect((await refused({ tools: [tools[0], tools[0]] })).param).toBe("tools.1.name")
    const pattern = await refused({
      tools: [{
        type: "function",
        name: "f",
        parameters: { type: "object", properties: { a: { type: "string", pattern: "^x" } } }
      }]
    })
    expect(pattern.message).toMatch(/pattern/)
    const both = await refused({
      tools,
      tool_choice: "required",
      text: { format: { type: "json_object" } }
    })
    expect(both.param).toBe("text.format")
    const template = await refused({ model: "stories260K", tools })
    expect(template.param).toBe("tools")
    expect(template.message).toMatch(/no tool support/)
  })
})

describe("several calls in one turn", SLOW, () => {
  it("with parallel_tool_calls each call is its own item, streamed in order", async () => {
    // random weights decide how many (unseeded): the stream's invariants hold for whatever comes;
    // several calls rendered through the SDK are checked deterministically in responses.test.ts
    for (const temperature of [0.6, 0.9, 1.2]) {
      const { final } = await streamed({
        model: "qwen25",
        input: "Weather in Paris, and the time in Tokyo?",
        tools,
        tool_choice: "required",
        parallel_tool_calls: true,
        max_output_tokens: 160,
        temperature
      })
      const made = calls(final)
      expect(made.length).toBeGreaterThanOrEqual(1)
      expect(new Set(made.map((c) => c.call_id)).size).toBe(made.length)
      for (const call of made) expect(() => JSON.parse(call.arguments) as unknown).not.toThrow()
    }
  })
})

describe("the request shapes agents send", SLOW, () => {
  const events = async (body: Record<string, unknown>) => {
    const stream = await openai.responses.create(
      { ...body, stream: true } as OpenAI.Responses.ResponseCreateParamsStreaming
    )
    const all: Array<Event> = []
    for await (const event of stream) all.push(event)
    return all
  }

  it("the Agents SDK's: a turn after a tool call, with its fields left undefined", async () => {
    const call = {
      type: "function_call",
      id: "__fake_id__",
      call_id: "call_7",
      name: "get_weather",
      status: "completed"
    }
    const all = await events({
      model: "qwen25",
      instructions: "You are a weather agent.",
      input: [
        { role: "user", content: ask },
        { ...call, arguments: "{\"city\":\"Paris\",\"unit\":\"celsius\"}" },
        { type: "function_call_output", call_id: "call_7", output: [{ type: "input_text", text: "21 degrees" }] }
      ],
      include: [],
      tools: tools.map((tool) => ({ ...tool, strict: true })),
      conversation: undefined,
      previous_response_id: undefined,
      prompt: undefined,
      temperature: undefined,
      top_p: undefined,
      truncation: undefined,
      max_output_tokens: 6,
      tool_choice: undefined,
      parallel_tool_calls: undefined,
      text: { format: { type: "text" } },
      store: undefined,
      prompt_cache_retention: undefined
    })
    expect(all.at(-1)!.type).toBe("response.incomplete")
    expect(all.filter((e) => e.type === "response.output_text.delta").length).toBeGreaterThan(0)
  })

  it("Codex's: developer and user messages as parts, reasoning on, store false, encrypted reasoning asked for", async () => {
    const all = await events({
      model: "qwen3",
      instructions: "You are a coding agent.",
      input: [
        { type: "message", role: "developer", content: [{ type: "input_text", text: "Sandbox: read-only." }] },
        { type: "message", role: "user", content: [{ type: "input_text", text: "List the files." }] }
      ],
      tools: [{
        type: "function",
        name: "shell",
        description: "Runs a command",
        strict: false,
        parameters: {
          type: "object",
          properties: { command: { type: "array", items: { type: "string" } } },
          required: ["command"],
          additionalProperties: false
        }
      }],
      tool_choice: "auto",
      parallel_tool_calls: false,
      reasoning: { effort: "medium", summary: "auto" },
      store: false,
      include: ["reasoning.encrypted_content"],
      prompt_cache_key: "0f8e3c1a-session",
      text: { verbosity: "medium" },
      max_output_tokens: 12
    })
    const last = all.at(-1)!
    expect(last.type).toBe("response.incomplete")
    if (last.type !== "response.incomplete") return
    expect(last.response.output[0]!.type).toBe("reasoning")
    expect(last.response.reasoning).toEqual({ effort: "medium", summary: "auto" })
  })
})

describe("LangChain's ChatOpenAI on the Responses API (useResponsesApi)", SLOW, () => {
  const chat = (maxTokens: number) =>
    new ChatOpenAI({
      model: "qwen25",
      apiKey: "unused",
      temperature: 0,
      maxTokens,
      useResponsesApi: true,
      configuration: { baseURL: `${server.url}/v1` }
    })
  const getWeather = langchainTool(async () => "21 degrees", {
    name: "get_weather",
    description: "Current weather in a city",
    schema: z.object({ city: z.string().max(12), unit: z.enum(["celsius", "fahrenheit"]) })
  })

  it("bindTools with a named choice gives parsed tool_calls; the call and its ToolMessage continue the turn", async () => {
    const model = chat(120).bindTools([getWeather], { tool_choice: "get_weather", parallel_tool_calls: false })
    const first = await model.invoke([new HumanMessage(ask)])
    expect(first.tool_calls).toHaveLength(1)
    const toolCall = first.tool_calls![0]!
    expect(toolCall.name).toBe("get_weather")
    expectWeather(toolCall.args)
    const next = await chat(4).bindTools([getWeather]).invoke([
      new HumanMessage(ask),
      first,
      new ToolMessage({ tool_call_id: toolCall.id!, content: "21 degrees and sunny" })
    ])
    expect(next.text.length).toBeGreaterThan(0)
    expect(next.usage_metadata!.output_tokens).toBe(4)
    expect(next.usage_metadata!.input_tokens).toBeGreaterThan(first.usage_metadata!.input_tokens)
  })

  it("streams text chunks that add up to the answer", async () => {
    const model = new ChatOpenAI({
      model: "stories260K",
      apiKey: "unused",
      temperature: 0,
      maxTokens: 12,
      useResponsesApi: true,
      configuration: { baseURL: `${server.url}/v1` }
    })
    let text = ""
    let chunks = 0
    for await (const chunk of await model.stream("Once upon a time")) {
      // on the Responses API LangChain's chunks hold content blocks; `text` joins their text
      text += chunk.text
      chunks++
    }
    expect(chunks).toBeGreaterThan(2)
    const whole = await model.invoke("Once upon a time")
    expect(text).toBe(whole.text)
    expect(whole.usage_metadata!.output_tokens).toBe(12)
  })
})

describe("reasoning", SLOW, () => {
  for (const model of ["qwen3", "r1"]) {
    it(`${model}: the thought is a reasoning item before the message, in JSON and streamed alike`, async () => {
      const request = { model, input: ask, max_output_tokens: 24, temperature: 0 }
      const response = await openai.responses.create(request)
      expect(response.status).toBe("incomplete")
      // random weights never close the thought: all of it is reasoning, and the message is empty
      expect(response.output.map((item) => item.type)).toEqual(["reasoning", "message"])
      const reasoning = response.output[0] as OpenAI.Responses.ResponseReasoningItem
      expect(reasoning.id).toMatch(/^rs_/)
      expect(reasoning.summary).toEqual([])
      expect(reasoning.content).toHaveLength(1)
      const thought = reasoning.content![0]!
      expect(thought.type).toBe("reasoning_text")
      expect(thought.text.length).toBeGreaterThan(0)
      expect(response.output_text).toBe("")
      // the thought's tokens as the engine counts them (tokens the parser held back may go uncounted)
      const { output_tokens, output_tokens_details } = response.usage!
      expect(output_tokens_details.reasoning_tokens).toBeGreaterThan(output_tokens / 2)
      expect(output_tokens_details.reasoning_tokens).toBeLessThanOrEqual(output_tokens)

      const { events, final } = await streamed(request)
      const deltas = events.flatMap((e) => e.type === "response.reasoning_text.delta" ? [e.delta] : [])
      expect(deltas.join("")).toBe(thought.text)
      const done = events.find((e) => e.type === "response.reasoning_text.done")!
      expect(done.type === "response.reasoning_text.done" && done.text).toBe(thought.text)
      expect(final.output).toMatchObject([
        { type: "reasoning", content: [{ type: "reasoning_text", text: thought.text }] },
        { type: "message", content: [{ type: "output_text", text: "" }] }
      ])
      expect(events.at(-1)!.type).toBe("response.incomplete")
    })
  }

  it("reasoning.effort 'none' turns the thought off; the effort is echoed", async () => {
    const response = await openai.responses.create({
      model: "qwen3",
      input: ask,
      max_output_tokens: 8,
      temperature: 0,
      reasoning: { effort: "none" }
    })
    expect(response.output.map((item) => item.type)).toEqual(["message"])
    expect(response.output_text.length).toBeGreaterThan(0)
    expect(response.usage!.output_tokens_details.reasoning_tokens).toBe(0)
    expect(response.reasoning).toEqual({ effort: "none", summary: null })
  })

  it("a reasoning item sent back in the history is accepted", async () => {
    const response = await openai.responses.create({
      model: "qwen3",
      input: [
        { role: "user", content: ask },
        {
          type: "reasoning",
          id: "rs_1",
          summary: [{ type: "summary_text", text: "Think about Paris." }],
          content: [{ type: "reasoning_text", text: "Paris is in France." }],
          encrypted_content: null
        },
        {
          type: "message",
          id: "msg_1",
          status: "completed",
          role: "assistant",
          content: [{ type: "output_text", text: "It is sunny.", annotations: [] }]
        },
        { role: "user", content: "And tomorrow?" }
      ],
      max_output_tokens: 4,
      reasoning: { effort: "high", summary: "auto" }
    })
    expect(response.usage!.output_tokens).toBe(4)
    expect(response.reasoning).toEqual({ effort: "high", summary: "auto" })
  })
})
