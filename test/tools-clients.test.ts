import { createOpenAICompatible } from "@ai-sdk/openai-compatible"
import { tool as langchainTool } from "@langchain/core/tools"
import { ChatOpenAI } from "@langchain/openai"
import { generateText, tool } from "ai"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import OpenAI, { BadRequestError } from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { z } from "zod"
import { SHARED_MODELS } from "./support/models.js"
import { type RunningServer, startServer } from "./support/server.js"
import { makeTemplateModels } from "./support/templates.js"

/**
 * Tool calling and reasoning on /v1/chat/completions through the clients agents run: the official
 * `openai` SDK (its stream helper and tool runner too), the Vercel AI SDK and LangChain's
 * `bindTools`. The models are synthetic (random weights, real tokenizers and real families'
 * templates), so calls are forced with "required" or a named choice, enforced by grammar.
 */

let dir: string
let server: RunningServer & { readonly close: () => Promise<void> }
let openai: OpenAI

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "shimmy-tools-clients-"))
  await makeTemplateModels(dir, ["qwen25", "llama31", "qwen3"])
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
} as const

const tools: Array<OpenAI.Chat.Completions.ChatCompletionTool> = [
  {
    type: "function",
    function: { name: "get_weather", description: "Current weather in a city", parameters: weatherParameters }
  },
  {
    type: "function",
    function: {
      name: "get_time",
      description: "Local time in a timezone",
      parameters: { type: "object", properties: { zone: { type: "string", maxLength: 16 } }, required: ["zone"] }
    }
  }
]

const ask = [{ role: "user" as const, content: "What's the weather in Paris?" }]

/** The arguments of a weather call parse and satisfy its schema. */
const expectWeather = (args: unknown) => {
  expect(args).toEqual({ city: expect.any(String), unit: expect.stringMatching(/^(celsius|fahrenheit)$/) })
  expect([...(args as { city: string }).city].length).toBeLessThanOrEqual(12)
}

describe("tool calls with the official openai SDK", () => {
  it("'required' makes every model family call one of the tools, with arguments that validate", async () => {
    for (const model of ["qwen25", "llama31", "qwen3"]) {
      const chat = await openai.chat.completions.create({
        model,
        messages: ask,
        tools,
        tool_choice: "required",
        parallel_tool_calls: false,
        max_tokens: 120,
        temperature: 0.8,
        seed: 7
      })
      const choice = chat.choices[0]!
      expect(choice.finish_reason, model).toBe("tool_calls")
      expect(choice.message.tool_calls, model).toHaveLength(1)
      const call = choice.message.tool_calls![0]!
      expect(call.type).toBe("function")
      if (call.type !== "function") continue
      expect(call.id).toMatch(/^call_/)
      expect(["get_weather", "get_time"]).toContain(call.function.name)
      const args = JSON.parse(call.function.arguments)
      if (call.function.name === "get_weather") expectWeather(args)
      else expect(args).toEqual({ zone: expect.any(String) })
    }
  })

  it("a named choice calls that function; the stream helper reassembles exactly what the JSON answer holds", async () => {
    const request = {
      model: "qwen25",
      messages: ask,
      tools,
      tool_choice: { type: "function" as const, function: { name: "get_weather" } },
      parallel_tool_calls: false,
      max_tokens: 120,
      temperature: 0,
      seed: 1
    }
    const whole = await openai.chat.completions.create(request)
    const call = whole.choices[0]!.message.tool_calls![0]!
    expect(call.type === "function" && call.function.name).toBe("get_weather")
    const final = await openai.chat.completions.stream(request).finalChatCompletion()
    const streamed = final.choices[0]!.message.tool_calls![0]!
    expect(final.choices[0]!.finish_reason).toBe("tool_calls")
    expect(streamed.type === "function" && streamed.function).toEqual(call.type === "function" && call.function)
    // OpenAI's fragments on the wire: index, id, type and name first, then the arguments
    const chunks: Array<OpenAI.Chat.Completions.ChatCompletionChunk> = []
    for await (const chunk of await openai.chat.completions.create({ ...request, stream: true })) chunks.push(chunk)
    const fragments = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])
    expect(fragments[0]).toMatchObject({
      index: 0,
      id: expect.stringMatching(/^call_/),
      type: "function",
      function: { name: "get_weather" }
    })
    expect(fragments.slice(1).every((f) => f.id === undefined && f.function?.name === undefined)).toBe(true)
    expectWeather(JSON.parse(fragments.map((f) => f.function?.arguments ?? "").join("")))
  })

  it("runTools, streaming, runs an agent loop: the call, its result in the history, and the next turn", async () => {
    const seen: Array<unknown> = []
    const runner = openai.chat.completions.runTools({
      stream: true,
      model: "qwen25",
      messages: ask,
      // "required" forces a call on every turn (a named choice would end the runner after one)
      tool_choice: "required",
      parallel_tool_calls: false,
      max_tokens: 60,
      temperature: 0,
      tools: [{
        type: "function",
        function: {
          name: "get_weather",
          description: "Current weather in a city",
          parameters: weatherParameters as unknown as Record<string, unknown>,
          parse: JSON.parse,
          function: (args: unknown) => {
            seen.push(args)
            return { temperature: 21, sky: "clear" }
          }
        }
      }]
    }, { maxChatCompletions: 2 })
    await runner.done()
    const messages = runner.messages
    expect(seen.length).toBeGreaterThanOrEqual(1)
    expectWeather(seen[0])
    // the second request carried the assistant's call and the tool's answer, and was answered
    expect(messages.some((m) => m.role === "tool" && String(m.content).includes("clear"))).toBe(true)
    expect(messages.filter((m) => m.role === "assistant").length).toBeGreaterThanOrEqual(2)
  })

  it("'none' never calls, and 'auto' on random weights answers in text", async () => {
    for (const tool_choice of ["none", "auto"] as const) {
      const chat = await openai.chat.completions.create({
        model: "qwen25",
        messages: ask,
        tools,
        tool_choice,
        max_tokens: 8,
        temperature: 0
      })
      expect(chat.choices[0]!.message.tool_calls, tool_choice).toBeUndefined()
      expect(chat.choices[0]!.finish_reason).toBe("length")
      expect(typeof chat.choices[0]!.message.content).toBe("string")
    }
  })

  it("a conversation with earlier calls and results renders and continues", async () => {
    const chat = await openai.chat.completions.create({
      model: "llama31",
      messages: [
        ...ask,
        {
          role: "assistant",
          content: null,
          tool_calls: [{
            id: "call_1",
            type: "function",
            function: { name: "get_weather", arguments: "{\"city\":\"Paris\",\"unit\":\"celsius\"}" }
          }]
        },
        { role: "tool", tool_call_id: "call_1", content: [{ type: "text", text: "{\"temperature\":21}" }] }
      ],
      tools,
      max_tokens: 6,
      temperature: 0
    })
    expect(chat.choices[0]!.finish_reason).toBe("length")
    expect(chat.usage!.prompt_tokens).toBeGreaterThan(40)
  })

  it("refuses what it cannot do, naming the part", async () => {
    const refused = async (body: Record<string, unknown>) => {
      const error = await openai.chat.completions.create(
        { model: "qwen25", messages: ask, max_tokens: 4, ...body } as never
      ).then(
        () => undefined,
        (e: unknown) => e
      )
      expect(error).toBeInstanceOf(BadRequestError)
      return error as BadRequestError
    }
    expect((await refused({ tools: [{ type: "web_search" }] })).param).toBe("tools.0.type")
    const pattern = await refused({
      tools: [{
        type: "function",
        function: { name: "f", parameters: { type: "object", properties: { a: { type: "string", pattern: "^x" } } } }
      }]
    })
    expect(pattern.param).toBe("tools.0.function.parameters")
    expect(pattern.message).toMatch(/pattern/)
    expect((await refused({ tools, tool_choice: { type: "function", function: { name: "nope" } } })).param).toBe(
      "tool_choice"
    )
    const template = await openai.chat.completions.create({ model: "stories260K", messages: ask, tools, max_tokens: 4 })
      .catch((e) => e)
    expect(template).toBeInstanceOf(BadRequestError)
    expect(template.param).toBe("tools")
    expect(template.message).toMatch(/no tool support/)
  })
})

describe("reasoning", () => {
  it("a thinking template's thought goes to reasoning_content, never to content; reasoning_effort none turns it off", async () => {
    const thinking = await openai.chat.completions.create({
      model: "qwen3",
      messages: ask,
      max_tokens: 24,
      temperature: 0
    })
    const message = thinking.choices[0]!.message as OpenAI.Chat.Completions.ChatCompletionMessage & {
      reasoning_content?: string
    }
    // random weights never close the thought: all of it is reasoning
    expect(message.reasoning_content!.length).toBeGreaterThan(0)
    expect(message.content).toBe("")
    const chunks = await openai.chat.completions.create({
      model: "qwen3",
      messages: ask,
      max_tokens: 24,
      temperature: 0,
      stream: true
    })
    let reasoning = ""
    let content = ""
    for await (const chunk of chunks) {
      const delta = chunk.choices[0]?.delta as { content?: string; reasoning_content?: string } | undefined
      reasoning += delta?.reasoning_content ?? ""
      content += delta?.content ?? ""
    }
    expect(reasoning).toBe(message.reasoning_content)
    expect(content).toBe("")
    const off = await openai.chat.completions.create({
      model: "qwen3",
      messages: ask,
      max_tokens: 8,
      temperature: 0,
      reasoning_effort: "none" as never
    })
    const plain = off.choices[0]!.message as { content: string | null; reasoning_content?: string }
    expect(plain.reasoning_content).toBeUndefined()
    expect(plain.content!.length).toBeGreaterThan(0)
  })

  it("a model that cannot think says so when asked to", async () => {
    const error = await openai.chat.completions.create({
      model: "stories260K",
      messages: ask,
      reasoning_effort: "high",
      max_tokens: 4
    })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(BadRequestError)
    expect((error as BadRequestError).param).toBe("reasoning_effort")
    expect((error as BadRequestError).message).toMatch(/cannot think/)
  })
})

describe("tool calls with the Vercel AI SDK and LangChain", () => {
  it("AI SDK generateText with toolChoice 'required' runs the tool with validated input", async () => {
    const provider = createOpenAICompatible({ name: "shimmy", baseURL: `${server.url}/v1`, apiKey: "unused" })
    const inputs: Array<unknown> = []
    const result = await generateText({
      model: provider.chatModel("qwen25"),
      prompt: "What's the weather in Paris?",
      maxOutputTokens: 120,
      temperature: 0,
      toolChoice: "required",
      tools: {
        get_weather: tool({
          description: "Current weather in a city",
          inputSchema: z.object({ city: z.string().max(12), unit: z.enum(["celsius", "fahrenheit"]) }),
          execute: async (input) => {
            inputs.push(input)
            return { temperature: 21 }
          }
        })
      }
    })
    // parallel calls are allowed: each is the one tool, with valid input, and each was run
    expect(result.toolCalls.length).toBeGreaterThanOrEqual(1)
    for (const call of result.toolCalls) {
      expect(call.toolName).toBe("get_weather")
      expectWeather(call.input)
    }
    expect(inputs).toEqual(result.toolCalls.map((call) => call.input))
    expect(result.finishReason).toBe("tool-calls")
  })

  it("LangChain's bindTools with tool_choice gives an AIMessage with parsed tool_calls", async () => {
    const chat = new ChatOpenAI({
      model: "llama31",
      apiKey: "unused",
      temperature: 0,
      maxTokens: 120,
      configuration: { baseURL: `${server.url}/v1` }
    })
    const getWeather = langchainTool(async () => "21 degrees", {
      name: "get_weather",
      description: "Current weather in a city",
      schema: z.object({ city: z.string().max(12), unit: z.enum(["celsius", "fahrenheit"]) })
    })
    const answer = await chat.bindTools([getWeather], { tool_choice: "get_weather" }).invoke(
      "What's the weather in Paris?"
    )
    expect(answer.tool_calls).toHaveLength(1)
    expect(answer.tool_calls![0]!.name).toBe("get_weather")
    expectWeather(answer.tool_calls![0]!.args)
    expect(answer.response_metadata["finish_reason"]).toBe("tool_calls")
  })
})
