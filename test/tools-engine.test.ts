import { expect, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Stream } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type {
  ChatMessage,
  GenerationEvent,
  GenerationRequest,
  Thinking,
  ToolCall,
  Tools
} from "../src/domain/Generation.js"
import { Live } from "../src/services/Live.js"
import { chatCapabilities, LlamaEngine, renderPrompt } from "../src/services/LlamaEngine.js"
import { SHARED_MODELS, testConfigLayer } from "./support/models.js"

/**
 * Tool calling and thinking through the engine, on synthetic models (random weights, a real
 * tokenizer and a real family's chat template) made in a temporary directory. Random weights never
 * call a tool on their own, so calls are forced with "required" or a named choice (grammar).
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const shared = (...parts: Array<string>) => path.resolve(repoRoot, "../shared", ...parts)

const MODELS = {
  qwen25: ["ggml-vocab-qwen2.gguf", "Qwen-Qwen2.5-7B-Instruct.jinja"],
  hermes: ["ggml-vocab-llama-bpe.gguf", "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja"],
  llama31: ["ggml-vocab-llama-bpe.gguf", "meta-llama-Llama-3.1-8B-Instruct.jinja"],
  llama32: ["ggml-vocab-llama-bpe.gguf", "meta-llama-Llama-3.2-3B-Instruct.jinja"],
  // Mistral's Tekken vocabulary is not among the shared ones; Llama 3's BPE tokenizes its template's
  // markers ([INST], [TOOL_CALLS]) as text
  mistral: ["ggml-vocab-llama-bpe.gguf", "mistralai-Mistral-Nemo-Instruct-2407.jinja"],
  qwen3: ["ggml-vocab-qwen2.gguf", "Qwen-Qwen3-0.6B.jinja"],
  r1: ["ggml-vocab-qwen2.gguf", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"],
  // gpt-oss's o200k vocabulary is not among the shared ones; its harmony markers become text
  gptoss: ["ggml-vocab-llama-bpe.gguf", "openai-gpt-oss-120b.jinja"]
} as const
type Family = keyof typeof MODELS
const FAMILIES = Object.keys(MODELS) as ReadonlyArray<Family>

const make = (dir: string, name: string, options: ReadonlyArray<string>) =>
  new Promise<void>((resolve, reject) =>
    execFile(
      process.execPath,
      [
        shared("tools/make-model.mjs"),
        "--preset",
        "chat-tiny",
        ...options,
        "--out",
        path.join(dir, `${name}.gguf`),
        "--quiet"
      ],
      (e) => (e ? reject(e) : resolve())
    )
  )

const modelDir = Effect.acquireRelease(
  Effect.promise(async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "shimmy-tools-"))
    for (const [name, [vocab, template]] of Object.entries(MODELS)) {
      await make(dir, name, [
        "--tokenizer-from",
        shared("models/vocab", vocab),
        "--chat-template-file",
        shared("models/templates", template)
      ])
    }
    await fs.symlink(path.join(SHARED_MODELS, "stories260K.gguf"), path.join(dir, "stories260K.gguf"))
    // chat-tiny's own template: plain ChatML, which says nothing of tools
    await make(dir, "chatml", [])
    return dir
  }),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)

const EngineLive = Layer.unwrapScoped(Effect.map(modelDir, (dir) =>
  Live.pipe(
    Layer.provideMerge(testConfigLayer({ modelPaths: [dir], parallel: 1, contextSize: 2048 }))
  )))

const weather = {
  name: "get_weather",
  description: "Current weather in a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string", maxLength: 12 }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
    required: ["city", "unit"],
    additionalProperties: false
  }
} as const
const time = {
  name: "get_time",
  parameters: {
    type: "object",
    properties: { zone: { type: "string", maxLength: 8 } },
    required: ["zone"],
    additionalProperties: false
  }
} as const

const tools = (choice: Tools["choice"], parallel = true): Tools => ({ definitions: [weather, time], choice, parallel })

const ask: ReadonlyArray<ChatMessage> = [{ role: "user", content: "What is the weather in Paris?" }]

const request = (
  model: string,
  options: { tools?: Tools; thinking?: Thinking; messages?: ReadonlyArray<ChatMessage>; maxTokens?: number } = {}
): GenerationRequest => ({
  model,
  prompt: { _tag: "Chat", messages: options.messages ?? ask },
  sampling: { maxTokens: options.maxTokens ?? 120, temperature: 0, stop: [] },
  tools: options.tools,
  thinking: options.thinking
})

const run = (req: GenerationRequest) =>
  Effect.gen(function*() {
    const engine = yield* LlamaEngine
    const events = Chunk.toReadonlyArray(yield* Stream.runCollect(engine.generate(req)))
    return {
      events,
      text: events.flatMap((e) => (e._tag === "Token" ? [e.text] : [])).join(""),
      reasoning: events.flatMap((e) => (e._tag === "Reasoning" ? [e.text] : [])).join(""),
      calls: events.flatMap((e) => (e._tag === "ToolCall" ? [e] : [])),
      done: events.at(-1)
    }
  })

/** The arguments of a call to `get_weather` or `get_time`, checked by hand against their schemas. */
const checkArguments = (call: ToolCall) => {
  expect(call.id).toMatch(/^call_[0-9a-f]{24}$/)
  const args = JSON.parse(call.arguments) as Record<string, unknown>
  if (call.name === "get_weather") {
    expect(Object.keys(args).sort()).toEqual(["city", "unit"])
    expect(typeof args.city).toBe("string")
    // JSON Schema counts characters, not UTF-16 units
    expect([...(args.city as string)].length).toBeLessThanOrEqual(12)
    expect(["celsius", "fahrenheit"]).toContain(args.unit)
  } else {
    expect(call.name).toBe("get_time")
    expect(Object.keys(args)).toEqual(["zone"])
    expect(typeof args.zone).toBe("string")
  }
}

const doneOf = (e: GenerationEvent | undefined) => (e?._tag === "Done" ? e : undefined)

const history: ReadonlyArray<ChatMessage> = [
  { role: "user", content: "Weather in Paris?" },
  {
    role: "assistant",
    content: "",
    toolCalls: [{ id: "call_1", name: "get_weather", arguments: "{\"city\":\"Paris\",\"unit\":\"celsius\"}" }]
  },
  { role: "tool", content: "{\"temperature\":21}", toolCallId: "call_1" },
  { role: "assistant", content: "It is 21 degrees." },
  { role: "user", content: "And tomorrow?" }
]

layer(EngineLive, { timeout: 120_000 })("tool calls and thinking through the engine", (it) => {
  for (const family of FAMILIES) {
    it.effect(`${family}: the template supports tools; "required" forces a valid call`, () =>
      Effect.gen(function*() {
        const capabilities = yield* chatCapabilities(family)
        expect(capabilities.tools).toBe(true)
        const result = yield* run(request(family, { tools: tools({ _tag: "Required" }, false) }))
        expect(result.calls.length).toBe(1)
        checkArguments(result.calls[0]!.call)
        expect(result.calls[0]!.index).toBe(0)
        expect(result.text).toBe("")
        expect(doneOf(result.done)?.finishReason).toBe("tool_calls")
      }))

    it.effect(`${family}: a named choice calls that function`, () =>
      Effect.gen(function*() {
        const result = yield* run(request(family, { tools: tools({ _tag: "Named", name: "get_time" }) }))
        expect(result.calls.length).toBeGreaterThanOrEqual(1)
        for (const { call } of result.calls) {
          expect(call.name).toBe("get_time")
          checkArguments(call)
        }
        expect(doneOf(result.done)?.finishReason).toBe("tool_calls")
      }))
  }

  it.effect("qwen25: parallel calls are each complete and valid, with distinct ids", () =>
    Effect.gen(function*() {
      const result = yield* run(request("qwen25", { tools: tools({ _tag: "Required" }, true), maxTokens: 160 }))
      expect(result.calls.length).toBeGreaterThanOrEqual(1)
      result.calls.forEach((e, i) => {
        expect(e.index).toBe(i)
        checkArguments(e.call)
      })
      expect(new Set(result.calls.map((e) => e.call.id)).size).toBe(result.calls.length)
      expect(doneOf(result.done)?.finishReason).toBe("tool_calls")
    }))

  it.effect("qwen25: tool_choice none renders no tools and never calls", () =>
    Effect.gen(function*() {
      const rendered = yield* renderPrompt(request("qwen25", { tools: tools({ _tag: "None" }) }))
      expect(rendered.text).not.toContain("<tools>")
      const offered = yield* renderPrompt(request("qwen25", { tools: tools({ _tag: "Auto" }) }))
      expect(offered.text).toContain("<tools>")
      expect(offered.text).toContain("\"name\": \"get_weather\"")
      const result = yield* run(request("qwen25", { tools: tools({ _tag: "None" }), maxTokens: 24 }))
      expect(result.calls).toEqual([])
      expect(result.text.length).toBeGreaterThan(0)
      expect(doneOf(result.done)?.finishReason).toBe("length")
    }))

  it.effect("qwen25: auto with random weights answers in text", () =>
    Effect.gen(function*() {
      const result = yield* run(request("qwen25", { tools: tools({ _tag: "Auto" }), maxTokens: 24 }))
      expect(result.calls).toEqual([])
      expect(result.text.length).toBeGreaterThan(0)
      expect(doneOf(result.done)?.usage.completion_tokens).toBe(24)
    }))

  const markup: Record<string, ReadonlyArray<string>> = {
    qwen25: [
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>",
      "<tool_response>\n{\"temperature\": 21}\n</tool_response>"
    ],
    hermes: [
      // the template's own tool list, not node-llama-cpp's stand-in documentation
      "Here are the available tools: <tools> {\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"get_weather(city: str, unit: str) - Current weather in a city",
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>",
      "<tool_response>\n{\"temperature\": 21}\n</tool_response>"
    ],
    llama31: [
      "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}",
      "<|start_header_id|>ipython<|end_header_id|>\n\n{\"temperature\": 21}<|eot_id|>"
    ],
    mistral: [
      "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}]",
      "[TOOL_RESULTS]"
    ],
    qwen3: [
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>",
      "<tool_response>\n{\"temperature\": 21}\n</tool_response>"
    ]
  }
  for (const [family, expected] of Object.entries(markup)) {
    it.effect(`${family}: history with a call and its result renders in the template's markup`, () =>
      Effect.gen(function*() {
        const rendered = yield* renderPrompt(request(family, { tools: tools({ _tag: "Auto" }), messages: history }))
        for (const piece of expected) expect(rendered.text).toContain(piece)
        expect(rendered.text).not.toContain("||call")
        expect(rendered.text).toContain("It is 21 degrees.")
        expect(rendered.text).toContain("And tomorrow?")
        // and the turn after the results generates
        const result = yield* run(request(family, { tools: tools({ _tag: "Required" }, false), messages: history }))
        expect(result.calls.length).toBe(1)
      }))
  }

  it.effect("hermes: a schema its template's macros cannot list is documented by node-llama-cpp instead", () =>
    Effect.gen(function*() {
      const untyped: Tools = {
        definitions: [{
          name: "pick",
          parameters: { type: "object", properties: { colour: { enum: ["red", "blue"] } } }
        }],
        choice: { _tag: "Auto" },
        parallel: true
      }
      const rendered = yield* renderPrompt(request("hermes", { tools: untyped }))
      expect(rendered.text).toContain("<tools>  </tools>")
      expect(rendered.text).toContain("function pick(")
      expect(rendered.text).toContain("<tool_call>\n{\"name\": \"getSomeInfo\"")
    }))

  it.effect("qwen3: thinking on opens a thought, off closes it; the thought is reasoning, never content", () =>
    Effect.gen(function*() {
      expect((yield* chatCapabilities("qwen3")).thinking).toBe(true)
      const on = yield* renderPrompt(request("qwen3", { thinking: { enabled: true } }))
      const off = yield* renderPrompt(request("qwen3", { thinking: { enabled: false } }))
      const byDefault = yield* renderPrompt(request("qwen3"))
      expect(on.text.endsWith("<|im_start|>assistant\n<think>\n")).toBe(true)
      expect(off.text.endsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n")).toBe(true)
      expect(byDefault.text).toBe(on.text)
      const thought = yield* run(request("qwen3", { thinking: { enabled: true }, maxTokens: 16 }))
      expect(thought.reasoning.length).toBeGreaterThan(0)
      expect(thought.text).toBe("")
      const answer = yield* run(request("qwen3", { thinking: { enabled: false }, maxTokens: 16 }))
      expect(answer.reasoning).toBe("")
      expect(answer.text.length).toBeGreaterThan(0)
    }))

  it.effect("qwen3: a forced call with thinking on starts the answer with the call", () =>
    Effect.gen(function*() {
      const result = yield* run(
        request("qwen3", { thinking: { enabled: true }, tools: tools({ _tag: "Required" }, false) })
      )
      expect(result.calls.length).toBe(1)
      checkArguments(result.calls[0]!.call)
    }))

  it.effect("r1: the thought is opened for the model and goes to reasoning", () =>
    Effect.gen(function*() {
      expect((yield* chatCapabilities("r1")).thinking).toBe(true)
      const on = yield* renderPrompt(request("r1", { thinking: { enabled: true } }))
      const off = yield* renderPrompt(request("r1", { thinking: { enabled: false } }))
      expect(on.text.endsWith("<think>")).toBe(true)
      expect(off.text.endsWith("</think>")).toBe(true)
      const thought = yield* run(request("r1", { maxTokens: 12 }))
      expect(thought.reasoning.length).toBeGreaterThan(0)
      expect(thought.text).toBe("")
    }))

  it.effect("gptoss: the harmony format takes the reasoning effort", () =>
    Effect.gen(function*() {
      expect(yield* chatCapabilities("gptoss")).toMatchObject({ thinking: true, reasoningEffort: true, tools: true })
      const high = yield* renderPrompt(request("gptoss", { thinking: { enabled: true, effort: "high" } }))
      const low = yield* renderPrompt(request("gptoss", { thinking: { enabled: true, effort: "low" } }))
      expect(high.text).toContain("Reasoning: high")
      expect(low.text).toContain("Reasoning: low")
      expect((yield* chatCapabilities("qwen3")).reasoningEffort).toBe(false)
    }))

  it.effect("qwen25 cannot think: asking it to is an InvalidRequest", () =>
    Effect.gen(function*() {
      expect((yield* chatCapabilities("qwen25")).thinking).toBe(false)
      const failed = yield* Effect.either(run(request("qwen25", { thinking: { enabled: true, effort: "high" } })))
      expect(Either.isLeft(failed) && failed.left).toMatchObject({ _tag: "InvalidRequest", param: "reasoning_effort" })
      // thinking off asks nothing of a template that never thinks
      const plain = yield* run(request("qwen25", { thinking: { enabled: false }, maxTokens: 4 }))
      expect(plain.text.length).toBeGreaterThan(0)
    }))

  it.effect("a template-less model has no tool support: tools are an InvalidRequest, not ignored", () =>
    Effect.gen(function*() {
      expect(yield* chatCapabilities("stories260K")).toMatchObject({ tools: false, thinking: false })
      const failed = yield* Effect.either(run(request("stories260K", { tools: tools({ _tag: "Auto" }) })))
      expect(Either.isLeft(failed) && failed.left).toMatchObject({ _tag: "InvalidRequest", param: "tools" })
      expect(Either.isLeft(failed) && failed.left.message).toMatch(/stories260K.*no tool support/)
      // "none" offers nothing, so the chat still works
      const none = yield* run(request("stories260K", { tools: tools({ _tag: "None" }), maxTokens: 4 }))
      expect(none.calls).toEqual([])
    }))

  it.effect("a chat template that says nothing of tools (plain ChatML) has no tool support either", () =>
    Effect.gen(function*() {
      expect(yield* chatCapabilities("chatml")).toMatchObject({ template: "ChatML", tools: false, thinking: false })
      const failed = yield* Effect.either(run(request("chatml", { tools: tools({ _tag: "Required" }) })))
      expect(Either.isLeft(failed) && failed.left).toMatchObject({ _tag: "InvalidRequest", param: "tools" })
      const plain = yield* run(request("chatml", { maxTokens: 4 }))
      expect(plain.events.every((e) => e._tag === "Token" || e._tag === "Done")).toBe(true)
      expect(plain.text.length).toBeGreaterThan(0)
    }))

  it.effect("a schema the grammar cannot enforce names the tool; an unknown named tool names tool_choice", () =>
    Effect.gen(function*() {
      const bad: Tools = {
        definitions: [weather, {
          name: "lookup",
          parameters: { type: "object", properties: { q: { type: "string", pattern: "^a" } } }
        }],
        choice: { _tag: "Auto" },
        parallel: true
      }
      const failed = yield* Effect.either(run(request("qwen25", { tools: bad })))
      expect(Either.isLeft(failed) && failed.left).toMatchObject({
        _tag: "InvalidRequest",
        param: "tools.1.function.parameters"
      })
      expect(Either.isLeft(failed) && failed.left.message).toMatch(/lookup.*pattern/)
      const unknown = yield* Effect.either(run(request("qwen25", { tools: tools({ _tag: "Named", name: "nope" }) })))
      expect(Either.isLeft(unknown) && unknown.left).toMatchObject({ _tag: "InvalidRequest", param: "tool_choice" })
    }))
})
