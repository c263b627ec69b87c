import { describe, expect, it } from "@effect/vitest"
import * as NodeLlamaCpp from "node-llama-cpp"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { HERMES, thoughtOf, toolSyntaxOf } from "../src/services/ChatFormat.js"
import { endsOf, historyOf } from "../src/services/ChatTemplate.js"
import {
  type ParsedEvent,
  type ParserOptions,
  ToolCallParser,
  type ToolSyntax
} from "../src/services/ToolCallParser.js"

/**
 * The parser of each template family on canned model output: random test weights never call a
 * tool by themselves. The syntaxes are derived from node-llama-cpp's wrappers for the real
 * templates, as the engine derives them (Hermes-2-Pro's is explicit: node-llama-cpp cannot
 * extract it).
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const templateText = (file: string) =>
  fs.readFileSync(path.resolve(repoRoot, "../shared/models/templates", file), "utf8")

const fromWrapper = (wrapper: NodeLlamaCpp.ChatWrapper): ToolSyntax =>
  toolSyntaxOf(NodeLlamaCpp, wrapper.settings, endsOf(NodeLlamaCpp)(wrapper))
const jinja = (file: string) => new NodeLlamaCpp.JinjaTemplateChatWrapper({ template: templateText(file) })

const weather = {
  type: "object",
  properties: { city: { type: "string" }, days: { type: "integer" } },
  required: ["city"],
  additionalProperties: false
} as const

// a small stand-in for the schema validation the engine does with node-llama-cpp's grammar
const validate = (name: string, args: unknown) => {
  if (name !== "get_weather" || typeof args !== "object" || args === null || Array.isArray(args)) return undefined
  const record = args as Record<string, unknown>
  if (typeof record.city !== "string") return undefined
  if (Object.keys(record).some((k) => !(k in weather.properties))) return undefined
  return JSON.stringify(args)
}

/** Feeds `text` in chunks of `size` characters (1: character by character) and collects the events. */
const parse = (options: Partial<ParserOptions> & Pick<ParserOptions, "calls">, text: string, size = 1) => {
  const parser = new ToolCallParser({ thinking: false, parallel: true, validate, ...options })
  let events: Array<ParsedEvent> = []
  for (let i = 0; i < text.length && !parser.done; i += size) {
    events = events.concat(parser.push(text.slice(i, i + size)))
  }
  events = events.concat(parser.end())
  return {
    text: events.flatMap((e) => (e._tag === "Text" ? [e.text] : [])).join(""),
    reasoning: events.flatMap((e) => (e._tag === "Reasoning" ? [e.text] : [])).join(""),
    calls: events.flatMap((
      e
    ) => (e._tag === "Call" ? [{ name: e.name, arguments: JSON.parse(e.arguments) as unknown }] : [])),
    done: parser.done
  }
}

const paris = { name: "get_weather", arguments: { city: "Paris" } }
const rome = { name: "get_weather", arguments: { city: "Rome", days: 2 } }

interface Family {
  readonly name: string
  readonly syntax: () => ToolSyntax
  readonly one: string
  readonly several?: string
  readonly malformed: string
}

const families: ReadonlyArray<Family> = [
  {
    name: "Qwen2.5 (<tool_call>, from its Jinja template)",
    syntax: () => fromWrapper(jinja("Qwen-Qwen2.5-7B-Instruct.jinja")),
    one: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
    several:
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Rome\",\"days\":2}}\n</tool_call>",
    malformed: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": Paris}}\n</tool_call>"
  },
  {
    name: "Qwen3 (<tool_call>, from its Jinja template)",
    syntax: () => fromWrapper(jinja("Qwen-Qwen3-0.6B.jinja")),
    one: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
    several:
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\", \"days\": 2}}\n</tool_call>",
    malformed: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"town\": \"Paris\"}}\n</tool_call>"
  },
  {
    name: "Hermes-2-Pro (<tool_call>, explicit)",
    syntax: () => HERMES,
    one: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
    several:
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\", \"days\": 2}}\n</tool_call>",
    malformed: "<tool_call>\n{\"name\": \"get_weather\" \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"
  },
  {
    name: "Llama 3.1 (JSON with parameters, from its Jinja template)",
    syntax: () => fromWrapper(jinja("meta-llama-Llama-3.1-8B-Instruct.jinja")),
    one: "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
    malformed: "{\"name\": \"get_weather\", \"parameters\": [\"Paris\"]}"
  },
  {
    name: "Llama 3.2 (JSON with parameters, from its Jinja template)",
    syntax: () => fromWrapper(jinja("meta-llama-Llama-3.2-3B-Instruct.jinja")),
    one: "{\"name\":\"get_weather\",\"parameters\":{\"city\":\"Paris\"}}",
    malformed: "{\"name\": \"get_forecast\", \"parameters\": {\"city\": \"Paris\"}}"
  },
  {
    name: "Mistral ([TOOL_CALLS], MistralChatWrapper)",
    syntax: () => fromWrapper(new NodeLlamaCpp.MistralChatWrapper()),
    one: "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]",
    several:
      "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\", \"days\": 2}}]",
    malformed: "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\""
  },
  {
    name: "DeepSeek-R1 (<function=...>, DeepSeekChatWrapper)",
    syntax: () => fromWrapper(new NodeLlamaCpp.DeepSeekChatWrapper()),
    one: "<function=get_weather>{\"city\": \"Paris\"}</function>",
    malformed: "<function=get_weather>{\"city\": 7}</function>"
  }
]

describe("ToolCallParser", () => {
  for (const family of families) {
    describe(family.name, () => {
      it("one call, fed character by character and at once", () => {
        for (const size of [1, 7, 10_000]) {
          const result = parse({ calls: family.syntax() }, family.one, size)
          expect(result.calls).toEqual([paris])
          expect(result.text).toBe("")
          expect(result.done).toBe(true)
        }
      })

      it("text before a call is the content", () => {
        const result = parse({ calls: family.syntax() }, `Let me look that up.\n${family.one}`)
        expect(result.text).toBe("Let me look that up.\n")
        expect(result.calls).toEqual([paris])
      })

      if (family.several !== undefined) {
        const several = family.several
        it("several calls in one turn", () => {
          expect(family.syntax().parallel).toBe(true)
          for (const size of [1, 5, 10_000]) {
            expect(parse({ calls: family.syntax() }, several, size).calls).toEqual([paris, rome])
          }
        })

        it("parallel false: the first call only, and the turn ends there", () => {
          const result = parse({ calls: family.syntax(), parallel: false }, several)
          expect(result.calls).toEqual([paris])
          expect(result.done).toBe(true)
        })
      }

      it("a malformed or invalid call is kept as text", () => {
        const result = parse({ calls: family.syntax() }, `Answer: ${family.malformed}`)
        expect(result.calls).toEqual([])
        expect(result.text).toBe(`Answer: ${family.malformed}`)
      })

      it("plain text passes through whole", () => {
        const text = "No tools needed: 2 + 2 = 4, {braces} and <tags> stay."
        expect(parse({ calls: family.syntax() }, text, 3)).toMatchObject({ text, calls: [], reasoning: "" })
      })
    })
  }

  it("syntaxes derived from the wrappers are the families' own", () => {
    expect(fromWrapper(jinja("Qwen-Qwen2.5-7B-Instruct.jinja"))).toMatchObject({
      callPrefix: "<tool_call>\n{\"name\": \"",
      paramsPrefix: "\", \"arguments\": ",
      callSuffix: "}\n</tool_call>",
      sectionSuffix: ""
    })
    expect(fromWrapper(jinja("meta-llama-Llama-3.1-8B-Instruct.jinja"))).toMatchObject({
      callPrefix: "{\"name\": \"",
      paramsPrefix: "\", \"parameters\": ",
      callSuffix: "}",
      parallel: false
    })
    expect(fromWrapper(new NodeLlamaCpp.MistralChatWrapper())).toMatchObject({
      sectionPrefix: "[TOOL_CALLS][",
      betweenCalls: ", ",
      sectionSuffix: "]"
    })
  })

  describe("thoughts", () => {
    const qwen3 = () => jinja("Qwen-Qwen3-0.6B.jinja")
    const thought = () => thoughtOf(NodeLlamaCpp, qwen3().settings).thought

    it("Qwen3's template thinks in <think> ... </think>", () => {
      expect(thought()).toEqual({ prefix: "<think>\n", suffix: "\n</think>\n\n" })
    })

    it("an open thought is reasoning up to its end, then the answer", () => {
      for (const size of [1, 4, 10_000]) {
        const result = parse(
          { calls: undefined, thought: thought(), thinking: true },
          "The user wants 4.\n</think>\n\nIt is 4.",
          size
        )
        expect(result.reasoning).toBe("The user wants 4.")
        expect(result.text).toBe("It is 4.")
      }
    })

    it("a thought never reaches the content, even when it is not closed", () => {
      const result = parse(
        { calls: undefined, thought: thought(), thinking: true },
        "still thinking <tool_call> about it"
      )
      expect(result.reasoning).toBe("still thinking <tool_call> about it")
      expect(result.text).toBe("")
    })

    it("a thought, then a call", () => {
      const calls = fromWrapper(qwen3())
      const result = parse(
        { calls, thought: thought(), thinking: true },
        "I need the weather.</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"
      )
      expect(result).toMatchObject({ reasoning: "I need the weather.", text: "", calls: [paris] })
    })

    it("harmony (gpt-oss): the analysis channel is reasoning, the final channel's header is dropped", () => {
      const harmony = thoughtOf(NodeLlamaCpp, new NodeLlamaCpp.HarmonyChatWrapper().settings).thought
      expect(harmony).toMatchObject({ prefix: "<|channel|>analysis<|message|>", suffix: "<|end|>" })
      const thought = { ...harmony!, answerPrefix: "<|start|>assistant<|channel|>final<|message|>" }
      for (const size of [1, 6, 10_000]) {
        const result = parse(
          { calls: undefined, thought, thinking: true },
          "Simple greeting.<|end|><|start|>assistant<|channel|>final<|message|>Hello!",
          size
        )
        expect(result).toMatchObject({ reasoning: "Simple greeting.", text: "Hello!" })
      }
    })

    it("a model that opens the thought itself (DeepSeek-R1)", () => {
      const r1 = thoughtOf(NodeLlamaCpp, new NodeLlamaCpp.DeepSeekChatWrapper().settings).thought
      const result = parse({ calls: undefined, thought: r1, thinking: false }, "<think>hmm</think>Hello")
      expect(result).toMatchObject({ reasoning: "hmm", text: "Hello" })
    })
  })

  describe("history", () => {
    it("pairs each call with its result by tool_call_id, whatever their order, and continues the turn", () => {
      const history = historyOf([
        { role: "user", content: "Paris and Rome?" },
        {
          role: "assistant",
          content: "",
          toolCalls: [
            { id: "a", name: "get_weather", arguments: "{\"city\":\"Paris\"}" },
            { id: "b", name: "get_weather", arguments: "{\"city\":\"Rome\"}" }
          ]
        },
        { role: "tool", content: "{\"t\":25}", toolCallId: "b" },
        { role: "tool", content: "sunny", toolCallId: "a" }
      ])
      expect(history).toEqual([
        { type: "user", text: "Paris and Rome?" },
        {
          type: "model",
          response: [
            {
              type: "functionCall",
              name: "get_weather",
              params: { city: "Paris" },
              result: "sunny",
              startsNewChunk: true
            },
            {
              type: "functionCall",
              name: "get_weather",
              params: { city: "Rome" },
              result: { t: 25 },
              startsNewChunk: false
            }
          ]
        },
        { type: "model", response: [] }
      ])
    })

    it("results without ids answer the calls in order; a tool message answering nothing is a user turn", () => {
      const history = historyOf([
        { role: "tool", content: "stray" },
        { role: "assistant", content: "Checking.", toolCalls: [{ id: "x", name: "f", arguments: "{}" }] },
        { role: "tool", content: "1" }
      ])
      expect(history).toEqual([
        { type: "user", text: "stray" },
        {
          type: "model",
          response: ["Checking.", { type: "functionCall", name: "f", params: {}, result: 1, startsNewChunk: true }]
        },
        { type: "model", response: [] }
      ])
    })
  })
})
