import { Effect, ManagedRuntime, Schema } from "effect"
import * as fs from "node:fs/promises"
import { Ollama } from "ollama"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Wire from "../../src/domain/Ollama.js"
import { chatGeneration } from "../../src/http/ollama/Decode.js"
import { renderPrompt } from "../../src/services/LlamaEngine.js"
import { freshDir } from "../support/env.js"
import { type RunningServer, TestServer } from "../support/server.js"
import { makeTemplateModels } from "../support/templates.js"

/**
 * Tools, thinking and `format` through Ollama's `/api/chat` with ollama-js, on synthetic models
 * (random weights, real tokenizers and real families' templates). Ollama has no `tool_choice`, so
 * a random model never calls on its own: the tests show the tools and a tool-calling history
 * reach the model's template as Ollama's clients send them, and that the answer keeps its shape.
 */

let dir: string
let runtime: ManagedRuntime.ManagedRuntime<TestServer | Effect.Effect.Context<ReturnType<typeof renderPrompt>>, unknown>
let server: RunningServer
let ollama: Ollama

beforeAll(async () => {
  dir = freshDir("ollama-tools")
  await makeTemplateModels(dir, ["qwen25", "qwen3", "gptoss"])
  runtime = ManagedRuntime.make(TestServer.layerWith({ modelPaths: [dir], parallel: 1 }, {}, { ollama: true }))
  server = await runtime.runPromise(TestServer)
  ollama = new Ollama({ host: server.ollamaUrl! })
}, 120_000)

afterAll(async () => {
  await runtime?.dispose()
  await fs.rm(dir, { recursive: true, force: true })
})

const weather = {
  type: "object",
  properties: { city: { type: "string", maxLength: 12 } },
  required: ["city"],
  additionalProperties: false
}

const tools = [{
  type: "function",
  function: { name: "get_weather", description: "Weather in a city", parameters: weather }
}]

/** An agent loop's history as Ollama clients send it: arguments as an object, the result with tool_name. */
const history = [
  { role: "user", content: "What is the weather in Paris?" },
  {
    role: "assistant",
    content: "",
    tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }]
  },
  { role: "tool", content: "{\"temperature\": 21}", tool_name: "get_weather" }
]

describe("tools", () => {
  it("the tool definitions and a tool-calling history reach the model's template", async () => {
    const request = Schema.decodeUnknownSync(Wire.ChatRequest)({ model: "qwen25", messages: history, tools })
    const generation = await Effect.runPromise(chatGeneration(request, request.messages!))
    const prompt = await runtime.runPromise(renderPrompt(generation))
    // Qwen2.5 lists the tools in its system turn and writes calls and results in its own tags
    expect(prompt.text).toContain("<tools>")
    expect(prompt.text).toContain("\"name\": \"get_weather\"")
    expect(prompt.text).toContain("Weather in a city")
    expect(prompt.text).toMatch(
      /<tool_call>\s*\{"name": "get_weather", "arguments": \{"city": "Paris"\}\}\s*<\/tool_call>/
    )
    expect(prompt.text).toMatch(/<tool_response>\s*\{"temperature": 21\}\s*<\/tool_response>/)
  }, 120_000)

  it("ollama-js chat with tools and that history answers in Ollama's shape, streamed and not", async () => {
    const answer = await ollama.chat({
      model: "qwen25",
      messages: history,
      tools,
      stream: false,
      options: { num_predict: 6, temperature: 0 }
    })
    Schema.decodeUnknownSync(Wire.ChatResponse, { onExcessProperty: "error" })(answer)
    expect(answer.prompt_eval_count).toBeGreaterThan(100)
    let done: unknown
    for await (
      const part of await ollama.chat({
        model: "qwen25",
        messages: history,
        tools,
        stream: true,
        options: { num_predict: 6, temperature: 0 }
      })
    ) done = part
    expect(done).toMatchObject({
      done: true,
      eval_count: answer.eval_count,
      prompt_eval_count: answer.prompt_eval_count
    })
  }, 120_000)
})

describe("format", () => {
  it("a JSON schema format constrains the answer to that schema; \"json\" to any JSON", async () => {
    const answer = await ollama.chat({
      model: "qwen25",
      messages: [{ role: "user", content: "Where?" }],
      format: weather,
      stream: false,
      options: { num_predict: 64, temperature: 0 }
    })
    const parsed = JSON.parse(answer.message.content) as { city: string }
    expect(Object.keys(parsed)).toEqual(["city"])
    expect(parsed.city.length).toBeLessThanOrEqual(12)
    const json = await ollama.generate({
      model: "qwen25",
      prompt: "Give JSON",
      format: "json",
      stream: false,
      options: { num_predict: 48, temperature: 0 }
    })
    expect(json.response!.trim().startsWith("{")).toBe(true)
  }, 120_000)
})

describe("thinking", () => {
  it("think true puts the thought in message.thinking, never in content; think false turns it off", async () => {
    const thinking = await ollama.chat({
      model: "qwen3",
      messages: [{ role: "user", content: "hi" }],
      think: true,
      stream: false,
      options: { num_predict: 12, temperature: 0 }
    })
    // random weights never close the thought: all of it is thinking
    expect(thinking.message.thinking!.length).toBeGreaterThan(0)
    expect(thinking.message.content).toBe("")
    let streamed = ""
    let content = ""
    for await (
      const part of await ollama.chat({
        model: "qwen3",
        messages: [{ role: "user", content: "hi" }],
        think: true,
        stream: true,
        options: { num_predict: 12, temperature: 0 }
      })
    ) {
      streamed += part.message.thinking ?? ""
      content += part.message.content
    }
    expect(streamed).toBe(thinking.message.thinking)
    expect(content).toBe("")
    const off = await ollama.chat({
      model: "qwen3",
      messages: [{ role: "user", content: "hi" }],
      think: false,
      stream: false,
      options: { num_predict: 8, temperature: 0 }
    })
    expect(off.message.thinking).toBeUndefined()
    expect(off.message.content.length).toBeGreaterThan(0)
    // generate renders the prompt with the template too, so it thinks the same way
    const generated = await ollama.generate({
      model: "qwen3",
      prompt: "hi",
      think: true,
      stream: false,
      options: { num_predict: 8, temperature: 0 }
    })
    expect(generated.thinking!.length).toBeGreaterThan(0)
    expect(generated.response).toBe("")
  }, 120_000)

  it("think \"low\" / \"high\" is the reasoning effort where the template takes one (gpt-oss)", async () => {
    const rendered = async (think: "low" | "high") => {
      const request = Schema.decodeUnknownSync(Wire.ChatRequest)({
        model: "gptoss",
        messages: [{ role: "user", content: "hi" }],
        think
      })
      const generation = await Effect.runPromise(chatGeneration(request, request.messages!))
      return (await runtime.runPromise(renderPrompt(generation))).text
    }
    expect(await rendered("high")).toContain("Reasoning: high")
    expect(await rendered("low")).toContain("Reasoning: low")
    const answer = await ollama.chat({
      model: "gptoss",
      messages: [{ role: "user", content: "hi" }],
      think: "high",
      stream: false,
      options: { num_predict: 8, temperature: 0 }
    })
    Schema.decodeUnknownSync(Wire.ChatResponse, { onExcessProperty: "error" })(answer)
    expect(answer.eval_count).toBe(8)
  }, 120_000)

  it("show lists tools and thinking where the template has them", async () => {
    expect((await ollama.show({ model: "qwen3" })).capabilities).toEqual(["completion", "tools", "thinking"])
    const qwen25 = await ollama.show({ model: "qwen25" })
    expect(qwen25.capabilities).toEqual(["completion", "tools"])
    expect(qwen25.template).toContain("<tool_call>")
    const info = qwen25.model_info as unknown as Record<string, unknown>
    expect(info["tokenizer.ggml.tokens"]).toBeUndefined()
    expect(info["general.architecture"]).toBe("llama")
    const unable = await ollama.chat({ model: "qwen25", messages: [{ role: "user", content: "hi" }], think: true })
      .catch((e: Error & { status_code: number }) => e)
    expect(unable).toMatchObject({ status_code: 400, error: "model 'qwen25' does not support thinking" })
  }, 120_000)
})
