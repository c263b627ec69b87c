import Anthropic, { BadRequestError } from "@anthropic-ai/sdk"
import { Option, Schema } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Wire from "../src/domain/Anthropic.js"
import { sharedModel } from "./support/models.js"
import { type RunningServer, startServer } from "./support/server.js"
import { makeTemplateModels } from "./support/templates.js"

/**
 * Tools and thinking on /v1/messages with the official `@anthropic-ai/sdk`, on synthetic models
 * (random weights, real tokenizers and real families' templates): the weights never call a tool
 * or close a thought on their own, so calls are forced (`tool_choice` any / tool, enforced by
 * grammar) and thoughts run to max_tokens. Last, a replay of what Claude Code sends.
 */

let dir: string
let server: RunningServer & { readonly close: () => Promise<void> }
let client: Anthropic

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "shimmy-anthropic-tools-"))
  await makeTemplateModels(dir, ["qwen25", "qwen3", "r1"])
  server = await startServer(
    { modelPaths: [dir, sharedModel("stories260K.gguf")], parallel: 2, contextSize: 2048 },
    { anthropicModel: Option.some("qwen25") }
  )
  client = new Anthropic({ baseURL: server.url, apiKey: "unused", maxRetries: 0 })
}, 120_000)

afterAll(async () => {
  await server?.close()
  await fs.rm(dir, { recursive: true, force: true })
})

/** Greedy decoding (the SDK's types no longer list the sampling fields; the API takes them). */
const greedy: object = { temperature: 0 }

const weather: Anthropic.Tool = {
  name: "get_weather",
  description: "Current weather in a city",
  input_schema: {
    type: "object",
    properties: { city: { type: "string", maxLength: 12 }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
    required: ["city", "unit"],
    additionalProperties: false
  }
}
const time: Anthropic.Tool = {
  name: "get_time",
  description: "Local time in a timezone",
  input_schema: { type: "object", properties: { zone: { type: "string", maxLength: 16 } }, required: ["zone"] }
}
const tools = [weather, time]

const ask: Array<Anthropic.MessageParam> = [{ role: "user", content: "What's the weather in Paris?" }]

const expectWeather = (input: unknown) => {
  expect(input).toEqual({ city: expect.any(String), unit: expect.stringMatching(/^(celsius|fahrenheit)$/) })
  expect([...(input as { city: string }).city].length).toBeLessThanOrEqual(12)
}

const toolUses = (message: Anthropic.Message) =>
  message.content.filter((b): b is Anthropic.ToolUseBlock => b.type === "tool_use")

const strictly = <A, I>(schema: Schema.Schema<A, I>, value: unknown) => {
  const { _request_id, ...wire } = value as Record<string, unknown>
  return Schema.decodeUnknownSync(schema, { onExcessProperty: "error" })(wire)
}

describe("forced tool use", () => {
  it("tool_choice any: tool_use blocks with toolu_ ids and object input that validates; stop_reason tool_use", async () => {
    for (const model of ["qwen25", "qwen3"]) {
      const message = await client.messages.create({
        model,
        max_tokens: 120,
        ...greedy,
        messages: ask,
        tools,
        tool_choice: { type: "any", disable_parallel_tool_use: true },
        // qwen3 would think first: the call is asked for at once
        thinking: { type: "disabled" }
      })
      strictly(Wire.Message, message)
      expect(message.stop_reason, model).toBe("tool_use")
      const calls = toolUses(message)
      expect(calls, model).toHaveLength(1)
      const call = calls[0]!
      expect(call.id).toMatch(/^toolu_/)
      expect(["get_weather", "get_time"]).toContain(call.name)
      if (call.name === "get_weather") expectWeather(call.input)
      else expect(call.input).toEqual({ zone: expect.any(String) })
    }
  })

  it("a named tool is called; streamed input_json_delta reassembles to the JSON answer's input", async () => {
    const request = {
      model: "qwen25",
      max_tokens: 120,
      ...greedy,
      messages: ask,
      tools,
      tool_choice: { type: "tool" as const, name: "get_weather", disable_parallel_tool_use: true }
    }
    const whole = await client.messages.create(request)
    const call = toolUses(whole)[0]!
    expect(call.name).toBe("get_weather")
    expectWeather(call.input)
    // the SDK's helper parses the partial JSON into input
    const final = await client.messages.stream(request).finalMessage()
    expect(final.stop_reason).toBe("tool_use")
    expect(toolUses(final).map((b) => [b.name, b.input])).toEqual([["get_weather", call.input]])
    // and on the wire: the block starts with empty input, then its JSON in input_json_delta
    const events: Array<Anthropic.RawMessageStreamEvent> = []
    for await (const event of await client.messages.create({ ...request, stream: true })) events.push(event)
    const start = events.find((e) => e.type === "content_block_start" && e.content_block.type === "tool_use")
    expect(start).toMatchObject({ content_block: { type: "tool_use", name: "get_weather", input: {} } })
    const index = (start as Anthropic.RawContentBlockStartEvent).index
    const json = events.flatMap((e) =>
      e.type === "content_block_delta" && e.index === index && e.delta.type === "input_json_delta"
        ? [e.delta.partial_json]
        : []
    ).join("")
    expect(JSON.parse(json)).toEqual(call.input)
    expect(events.findIndex((e) => e.type === "content_block_stop" && e.index === index)).toBeGreaterThan(
      events.indexOf(start!)
    )
    expect(events.at(-2)).toMatchObject({ type: "message_delta", delta: { stop_reason: "tool_use" } })
  })

  it("a conversation with a call and its result (and an earlier thought) renders and continues", async () => {
    const message = await client.messages.create({
      model: "qwen3",
      max_tokens: 6,
      ...greedy,
      tools,
      messages: [
        ...ask,
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "Look it up.", signature: "c2ln" },
            { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris", unit: "celsius" } }
          ]
        },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "{\"temperature\":21}" }] }
      ]
    })
    expect(message.stop_reason).toBe("max_tokens")
    expect(message.usage.input_tokens).toBeGreaterThan(60)
  })

  it("tool_choice none and auto (random weights never call) answer in text", async () => {
    for (const tool_choice of [{ type: "none" as const }, { type: "auto" as const }]) {
      const message = await client.messages.create({
        model: "qwen25",
        max_tokens: 8,
        ...greedy,
        messages: ask,
        tools,
        tool_choice
      })
      expect(message.content.map((b) => b.type), tool_choice.type).toEqual(["text"])
      expect(message.stop_reason).toBe("max_tokens")
    }
  })

  it("output_config.format json_schema makes the text JSON that matches the schema", async () => {
    const message = await client.messages.create({
      model: "qwen25",
      max_tokens: 60,
      ...greedy,
      messages: ask,
      output_config: { format: { type: "json_schema", schema: weather.input_schema } }
    })
    const text = message.content.flatMap((b) => (b.type === "text" ? [b.text] : [])).join("")
    expectWeather(JSON.parse(text))
  })

  it("thinking with a forced call is refused, as Anthropic does", async () => {
    const error = await client.messages.create({
      model: "qwen3",
      max_tokens: 40,
      messages: ask,
      tools,
      tool_choice: { type: "any" },
      thinking: { type: "enabled", budget_tokens: 1024 }
    }).catch((e) => e)
    expect(error).toBeInstanceOf(BadRequestError)
    expect(error.error.error.message).toMatch(/thinking may not be enabled/)
  })

  it("count_tokens counts the tools the template renders, as usage does", async () => {
    const body = { model: "qwen25", messages: ask, tools, tool_choice: { type: "auto" as const } }
    const withTools = await client.messages.countTokens(body)
    const without = await client.messages.countTokens({ model: "qwen25", messages: ask })
    expect(withTools.input_tokens).toBeGreaterThan(without.input_tokens + 40)
    const used = await client.messages.create({ ...body, max_tokens: 1 })
    expect(used.usage.input_tokens).toBe(withTools.input_tokens)
  })

  it("a model without tool calls answers in text when it may call (auto), and refuses a forced call", async () => {
    const message = await client.messages.create({ model: "stories260K", max_tokens: 4, messages: ask, tools })
    expect(message.content.map((b) => b.type)).toEqual(["text"])
    const error = await client.messages.create({
      model: "stories260K",
      max_tokens: 4,
      messages: ask,
      tools,
      tool_choice: { type: "any" }
    }).catch((e) => e)
    expect(error).toBeInstanceOf(BadRequestError)
    expect(error.error.error.message).toMatch(/cannot call tools/)
  })
})

describe("thinking", () => {
  it("a thinking template's thought is a thinking block with a signature, never text; disabled turns it off", async () => {
    for (const model of ["qwen3", "r1"]) {
      const request = {
        model,
        max_tokens: 24,
        ...greedy,
        messages: ask,
        thinking: { type: "enabled" as const, budget_tokens: 1024 }
      }
      const message = await client.messages.create(request)
      // random weights never close the thought: all of it is thinking
      expect(message.content.map((b) => b.type), model).toEqual(["thinking"])
      const thought = message.content[0] as Anthropic.ThinkingBlock
      expect(thought.thinking.length).toBeGreaterThan(0)
      expect(thought.signature.length).toBeGreaterThan(0)
      const events: Array<Anthropic.RawMessageStreamEvent> = []
      for await (const event of await client.messages.create({ ...request, stream: true })) events.push(event)
      const deltas = events.flatMap((e) => (e.type === "content_block_delta" ? [e.delta] : []))
      expect(deltas.filter((d) => d.type === "thinking_delta").map((d) => d.thinking).join("")).toBe(thought.thinking)
      // the signature comes last, just before the block stops
      const stop = events.findIndex((e) => e.type === "content_block_stop")
      expect(events[stop - 1]).toMatchObject({ type: "content_block_delta", delta: { type: "signature_delta" } })
      const final = await client.messages.stream(request).finalMessage()
      expect(final.content).toEqual(message.content)
    }
    const off = await client.messages.create({
      model: "qwen3",
      max_tokens: 8,
      ...greedy,
      messages: ask,
      thinking: { type: "disabled" }
    })
    expect(off.content.map((b) => b.type)).toEqual(["text"])
  })

  it("adaptive thinking thinks on a thinking template, as enabled does", async () => {
    const message = await client.messages.create({
      model: "qwen3",
      max_tokens: 8,
      ...greedy,
      messages: ask,
      thinking: { type: "adaptive" }
    })
    expect(message.content.map((b) => b.type)).toEqual(["thinking"])
  })

  it("a model that cannot think answers without thinking, not with an error", async () => {
    const message = await client.messages.create({
      model: "stories260K",
      max_tokens: 4,
      messages: ask,
      thinking: { type: "enabled", budget_tokens: 2048 }
    })
    expect(message.content.map((b) => b.type)).toEqual(["text"])
    expect(message.usage.output_tokens).toBe(4)
  })
})

/** What Claude Code sends (its shape, much shortened): betas, cache breakpoints, its tools' schemas. */
const claudeCodeBody = {
  model: "claude-sonnet-4-5-20250929",
  max_tokens: 32000,
  stream: true,
  metadata: { user_id: "user_0123abcd_account__session_4567" },
  system: [
    { type: "text", text: "x-anthropic-billing-header: cc_version=2.1.37.0d9; cc_entrypoint=cli; cch=fa690;" },
    {
      type: "text",
      text: "You are Claude Code, Anthropic's official CLI for Claude.",
      cache_control: { type: "ephemeral" }
    },
    { type: "text", text: "You are an interactive CLI tool.", cache_control: { type: "ephemeral" } }
  ],
  messages: [
    {
      role: "user",
      content: [
        { type: "text", text: "<system-reminder>This is a reminder.</system-reminder>" },
        { type: "text", text: "list the files", cache_control: { type: "ephemeral" } }
      ]
    },
    { role: "system", content: "# Environment\nWorking directory: /tmp/project" }
  ],
  tools: [
    {
      name: "Bash",
      description: "Executes a bash command",
      input_schema: {
        $schema: "http://json-schema.org/draft-07/schema#",
        type: "object",
        properties: {
          command: { type: "string", description: "The command to execute" },
          timeout: { type: "number", description: "Optional timeout in milliseconds", maximum: 600000 }
        },
        required: ["command"],
        additionalProperties: false
      }
    },
    {
      name: "WebFetch",
      description: "Fetches a URL",
      input_schema: {
        $schema: "http://json-schema.org/draft-07/schema#",
        type: "object",
        properties: {
          url: { type: "string", format: "uri" },
          prompt: { type: "string", pattern: "^\\S" },
          limit: { type: "integer", exclusiveMinimum: 0 }
        },
        required: ["url", "prompt"],
        additionalProperties: false
      },
      cache_control: { type: "ephemeral" }
    },
    {
      name: "TodoWrite",
      description: "Updates the todo list",
      input_schema: {
        $schema: "http://json-schema.org/draft-07/schema#",
        type: "object",
        properties: {
          todos: {
            type: "array",
            items: {
              type: "object",
              properties: {
                content: { type: "string", minLength: 1 },
                status: { type: "string", enum: ["pending", "in_progress", "completed"] }
              },
              required: ["content", "status"],
              additionalProperties: false
            }
          },
          previous: { type: "array", items: { $ref: "#/properties/todos/items" } }
        },
        required: ["todos"],
        additionalProperties: false
      }
    },
    { type: "web_search_20250305", name: "web_search", max_uses: 8 }
  ],
  thinking: { type: "enabled", budget_tokens: 31999 },
  context_management: { edits: [{ type: "clear_thinking_20251015", keep: "all" }] }
}

describe("a replay of what Claude Code sends", () => {
  it(
    "streams a complete message from the configured model, its tools' schemas relaxed, server tools set aside",
    async () => {
      const response = await fetch(`${server.url}/v1/messages?beta=true`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "anthropic-version": "2023-06-01",
          "anthropic-beta":
            "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14",
          "anthropic-dangerous-direct-browser-access": "true",
          "x-api-key": "sk-ant-unused",
          "x-app": "cli",
          "user-agent": "claude-cli/2.1.37 (external, cli)"
        },
        body: JSON.stringify(claudeCodeBody)
      })
      expect(response.status).toBe(200)
      expect(response.headers.get("x-shimmy-model")).toBe("qwen25")
      const events = (await response.text()).trim().split("\n\n").map((block) => {
        const [name, data] = block.split("\n")
        const event = strictly(Wire.StreamEvent, JSON.parse(data!.slice("data: ".length)))
        expect(name).toBe(`event: ${event.type}`)
        return event
      })
      expect(events[0]).toMatchObject({ type: "message_start", message: { model: "claude-sonnet-4-5-20250929" } })
      expect(events.at(-1)!.type).toBe("message_stop")
      // the context (2048 tokens) ends the answer long before 32000
      expect(events.at(-2)).toMatchObject({
        type: "message_delta",
        delta: { stop_reason: "model_context_window_exceeded" }
      })
      const start = events[0] as Extract<Wire.StreamEvent, { type: "message_start" }>
      const count = await client.messages.countTokens(
        { ...claudeCodeBody, stream: undefined, max_tokens: undefined } as never
      )
      expect(count.input_tokens).toBe(start.message.usage.input_tokens)
      // the varying billing header is not part of the prompt: a request with another one counts the same
      const other = await client.messages.countTokens({
        ...claudeCodeBody,
        stream: undefined,
        max_tokens: undefined,
        system: [{ type: "text", text: "x-anthropic-billing-header: cch=00000;" }, ...claudeCodeBody.system.slice(1)]
      } as never)
      expect(other.input_tokens).toBe(count.input_tokens)
      // the custom tools were rendered for the model (the server tool set aside)
      const toolless = await client.messages.countTokens(
        { ...claudeCodeBody, stream: undefined, max_tokens: undefined, tools: undefined } as never
      )
      expect(count.input_tokens).toBeGreaterThan(toolless.input_tokens + 100)
    },
    120_000
  )
})
