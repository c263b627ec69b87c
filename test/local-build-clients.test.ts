import Anthropic from "@anthropic-ai/sdk"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { Ollama } from "ollama"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { findLocalBuild } from "../src/services/LlamaRuntime.js"
import { SHARED_MODELS } from "./support/models.js"
import { type RunningServer, startServer } from "./support/server.js"
import { makeTemplateModels } from "./support/templates.js"

/**
 * The official clients on the build `SHIMMY_BUILD=auto` chooses, as `shimmy serve` runs it by
 * default: on a CPU machine where setup compiled llama.cpp, the local OpenMP build on its threads
 * (the other in-process suites pin the prebuilt binary). In CI that build is required: setup makes it.
 */

let dir: string
let server: RunningServer & { readonly close: () => Promise<void> }
let local: string | undefined
let openai: OpenAI

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "shimmy-local-build-"))
  await makeTemplateModels(dir, ["qwen25"])
  local = await findLocalBuild()
  server = await startServer({
    modelPaths: [dir, path.join(SHARED_MODELS, "stories260K.gguf")],
    build: "auto",
    threads: "auto",
    parallel: 4
  })
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 })
}, 120_000)

afterAll(async () => {
  await server?.close()
  await fs.rm(dir, { recursive: true, force: true })
})

const health = async () => (await fetch(`${server.url}/api/health`)).json() as Promise<any>

describe("the build auto chooses", () => {
  it("is the local OpenMP build where setup made one (always in CI)", async () => {
    // the runtime is reported once a model has loaded
    await openai.completions.create({ model: "stories260K", prompt: "Once", max_tokens: 1 })
    const { runtime } = await health()
    if (process.env["CI"] === "true") expect(local).toBeDefined()
    expect(runtime).toMatchObject(
      local === undefined
        ? { build: "prebuilt", openmp: false }
        : { build: "local", openmp: true }
    )
  })

  it("openai: a streamed chat answer is the JSON one, token for token, with its usage", async () => {
    const body = {
      model: "stories260K",
      messages: [{ role: "user" as const, content: "Once upon a time" }],
      max_tokens: 24,
      temperature: 0
    }
    const whole = await openai.chat.completions.create(body)
    const stream = await openai.chat.completions.create({
      ...body,
      stream: true,
      stream_options: { include_usage: true }
    })
    let text = ""
    let usage: OpenAI.CompletionUsage | undefined
    let finish: string | null = null
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? ""
      finish = chunk.choices[0]?.finish_reason ?? finish
      usage = chunk.usage ?? usage
    }
    expect(whole.choices[0]!.message.content!.length).toBeGreaterThan(20)
    expect(text).toBe(whole.choices[0]!.message.content)
    expect(finish).toBe("length")
    expect(usage?.completion_tokens).toBe(24)
  })

  it("openai: four streams at once each get all their tokens, and every sequence is given back", async () => {
    const counts = await Promise.all([0, 1, 2, 3].map(async (i) => {
      const stream = await openai.completions.create({
        model: "stories260K",
        prompt: `${i} Once upon a time`,
        max_tokens: 48,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true }
      })
      let tokens = 0
      for await (const chunk of stream) tokens = chunk.usage?.completion_tokens ?? tokens
      return tokens
    }))
    expect(counts).toEqual([48, 48, 48, 48])
    const { sequences } = await health()
    expect(sequences.free).toBe(sequences.total)
  })

  it("openai: a required tool call is a call whose arguments validate (grammar on this build)", async () => {
    const answer = await openai.chat.completions.create({
      model: "qwen25",
      messages: [{ role: "user", content: "What's the weather in Paris?" }],
      tools: [{
        type: "function",
        function: {
          name: "get_weather",
          parameters: {
            type: "object",
            properties: { city: { type: "string", maxLength: 12 } },
            required: ["city"],
            additionalProperties: false
          }
        }
      }],
      tool_choice: "required",
      max_tokens: 64
    })
    const call = answer.choices[0]!.message.tool_calls?.[0]
    expect(answer.choices[0]!.finish_reason).toBe("tool_calls")
    expect(call?.type === "function" && call.function.name).toBe("get_weather")
    const args = JSON.parse(call?.type === "function" ? call.function.arguments : "null")
    expect(args).toEqual({ city: expect.any(String) })
    expect([...args.city].length).toBeLessThanOrEqual(12)
  })

  it("ollama and anthropic: each answers in its own shape, its tokens counted", async () => {
    const ollama = new Ollama({ host: `${server.url}/ollama` })
    const generated = await ollama.generate({
      model: "stories260K",
      prompt: "Once upon a time",
      raw: true,
      options: { num_predict: 16, temperature: 0 }
    })
    expect(generated.done_reason).toBe("length")
    expect(generated.eval_count).toBe(16)
    const anthropic = new Anthropic({ baseURL: server.url, apiKey: "unused", maxRetries: 0 })
    const message = await anthropic.messages.create({
      model: "stories260K",
      max_tokens: 16,
      messages: [{ role: "user", content: "Once upon a time" }]
    })
    expect(message.stop_reason).toBe("max_tokens")
    expect(message.usage.output_tokens).toBe(16)
    expect(message.content[0]?.type === "text" && message.content[0].text.length).toBeGreaterThan(10)
  })
})
