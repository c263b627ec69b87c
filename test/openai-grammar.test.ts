import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { toGbnfSchema } from "../src/services/Grammar.js"

/** Which JSON-schema keywords response_format may use: only those the grammar enforces. */
describe("toGbnfSchema", () => {
  const refused = (schema: unknown) =>
    Either.match(toGbnfSchema(schema), { onLeft: (e) => e.reason, onRight: () => "accepted" })

  it("refuses, by name and place, every keyword the grammar would silently ignore", () => {
    expect(refused({ type: "object", properties: { n: { type: "number", minimum: 0 } } })).toMatch(
      /keyword 'minimum' .*#\/properties\/n\/minimum/
    )
    expect(refused({ allOf: [{ type: "string" }] })).toMatch(/'allOf'/)
    expect(refused({ type: "string", format: "email" })).toMatch(/'format' with value "email"/)
    expect(refused({ type: "array", items: { type: "string", pattern: "a" } })).toMatch(/'pattern' .*#\/items\/pattern/)
    expect(refused({ type: ["object", "null"] })).toMatch(/anyOf/)
    expect(refused({ $ref: "#/definitions/x" })).toMatch(/\$defs/)
    expect(refused(true)).toMatch(/boolean schemas/)
  })

  it("keeps what it enforces, drops annotations and turns anyOf into node-llama-cpp's oneOf", () => {
    const result = toGbnfSchema({
      $schema: "https://json-schema.org/draft/2020-12/schema",
      title: "pet",
      type: "object",
      properties: {
        name: { type: "string", description: "its name", maxLength: 5 },
        age: { anyOf: [{ type: "integer" }, { type: "null" }] }
      },
      required: ["name"],
      additionalProperties: false
    })
    expect(result).toEqual(Either.right({
      type: "object",
      properties: {
        name: { type: "string", description: "its name", maxLength: 5 },
        age: { oneOf: [{ type: "integer" }, { type: "null" }] }
      },
      required: ["name"],
      additionalProperties: false
    }))
  })
})
