import { describe, expect, it } from "@effect/vitest"
import { HERMES } from "../src/services/ChatFormat.js"
import { validateJson } from "../src/services/SchemaValidator.js"
import { forcedCallGrammar, gbnfLiteral, prefixRules } from "../src/services/ToolGrammar.js"
import type { PreparedTool } from "../src/services/ToolGrammar.js"

describe("validateJson (the schema subset the grammar enforces)", () => {
  const schema = {
    type: "object",
    properties: {
      city: { type: "string", minLength: 1, maxLength: 3 },
      unit: { enum: ["c", "f"] },
      days: { type: "integer" },
      tags: { type: "array", items: { type: "string" }, maxItems: 2 },
      at: { type: "string", format: "date" },
      where: { $ref: "#/$defs/point" },
      either: { oneOf: [{ type: "null" }, { const: 7 }] }
    },
    required: ["city"],
    additionalProperties: false,
    $defs: { point: { type: "object", properties: { x: { type: "number" } }, required: ["x"] } }
  }

  it("accepts valid arguments", () => {
    expect(validateJson(schema, { city: "Rom" })).toBe(true)
    expect(
      validateJson(schema, {
        city: "a🌸b",
        unit: "c",
        days: 2,
        tags: ["x"],
        at: "2024-01-02",
        where: { x: 1.5 },
        either: 7
      })
    ).toBe(true)
  })

  it("counts characters, not UTF-16 units", () => {
    expect("a🌸b".length).toBe(4)
    expect(validateJson(schema, { city: "a🌸b" })).toBe(true)
    expect(validateJson(schema, { city: "abcd" })).toBe(false)
  })

  it("refuses what the schema does not allow", () => {
    expect(validateJson(schema, {})).toBe(false)
    expect(validateJson(schema, { city: "" })).toBe(false)
    expect(validateJson(schema, { city: "a", extra: 1 })).toBe(false)
    expect(validateJson(schema, { city: "a", unit: "k" })).toBe(false)
    expect(validateJson(schema, { city: "a", days: 1.5 })).toBe(false)
    expect(validateJson(schema, { city: "a", tags: ["x", "y", "z"] })).toBe(false)
    expect(validateJson(schema, { city: "a", at: "yesterday" })).toBe(false)
    expect(validateJson(schema, { city: "a", where: {} })).toBe(false)
    expect(validateJson(schema, { city: "a", either: 8 })).toBe(false)
    expect(validateJson(schema, ["a"])).toBe(false)
  })
})

describe("forced-call grammar", () => {
  it("renames every rule of a JSON-schema grammar and drops its end-of-output newlines", () => {
    const gbnf = [
      "root ::= \"{\" ws \"\\\"a\\\"\" \":\" [ ]? string \"}\" \"\\n\\n\\n\\n\" [\\n]*",
      "string ::= \"\\\"\" [^\"\\\\] * \"\\\"\"",
      "ws ::= [ ]? | \"ws\""
    ].join("\n")
    const { root, rules } = prefixRules(gbnf, "t0-")
    expect(root).toBe("t0-root")
    expect(rules).toContain("t0-root ::= \"{\" t0-ws \"\\\"a\\\"\" \":\" [ ]? t0-string \"}\"\n")
    // literals and classes are left alone, even where they spell a rule's name
    expect(rules).toContain("t0-ws ::= [ ]? | \"ws\"")
    expect(rules).not.toContain("\\n\\n\\n\\n")
  })

  it("a GBNF literal escapes quotes, backslashes and newlines", () => {
    expect(gbnfLiteral("<tool_call>\n{\"name\": \"")).toBe("\"<tool_call>\\n{\\\"name\\\": \\\"\"")
  })

  it("forces the template's syntax around the allowed functions only", () => {
    const tool = (name: string): PreparedTool => ({
      name,
      schema: { type: "object" },
      gbnf: "root ::= \"{}\""
    })
    const named = forcedCallGrammar(HERMES, [tool("a"), tool("b")], { _tag: "Named", name: "b" }, true)
    expect(named).toContain(
      "call ::= \"<tool_call>\\n{\\\"name\\\": \\\"\" (\"b\" \"\\\", \\\"arguments\\\": \" t0-root) \"}\\n</tool_call>\""
    )
    expect(named).toContain("root ::= call (\"\\n\" call)*")
    const single = forcedCallGrammar(HERMES, [tool("a"), tool("b")], { _tag: "Required" }, false)
    expect(single).toContain("root ::= call\n")
    expect(single).toContain(
      "(\"a\" \"\\\", \\\"arguments\\\": \" t0-root | \"b\" \"\\\", \\\"arguments\\\": \" t1-root)"
    )
  })
})
