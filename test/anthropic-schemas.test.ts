import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { relaxSchema } from "../src/http/anthropic/ToolSchemas.js"
import { toGbnfSchema } from "../src/services/Grammar.js"

/**
 * Tool input schemas as Claude Code sends them (zod-to-json-schema output), relaxed for the
 * grammar: every result must be one the engine's own check (`toGbnfSchema`) accepts, with what was
 * dropped still told to the model in a description.
 */

const accepted = (schema: Readonly<Record<string, unknown>>) => {
  const checked = toGbnfSchema(schema)
  if (Either.isLeft(checked)) throw new Error(checked.left.reason)
  return checked.right
}

describe("relaxSchema", () => {
  it("moves keywords the grammar cannot enforce into the description", () => {
    const schema = {
      $schema: "http://json-schema.org/draft-07/schema#",
      type: "object",
      properties: {
        url: { type: "string", format: "uri", description: "The URL" },
        timeout: { type: "number", maximum: 600000, exclusiveMinimum: 0 },
        name: { type: "string", pattern: "^\\S+$" },
        tags: { type: "array", items: { type: "string" }, uniqueItems: true },
        when: { type: "string", format: "date-time" }
      },
      required: ["url"],
      additionalProperties: false
    }
    expect(Either.isLeft(toGbnfSchema(schema))).toBe(true)
    const relaxed = relaxSchema(schema) as any
    accepted(relaxed)
    expect(relaxed.properties.url).toEqual({ type: "string", description: "The URL (format: \"uri\")" })
    expect(relaxed.properties.timeout.description).toBe("(maximum: 600000, exclusiveMinimum: 0)")
    expect(relaxed.properties.name.description).toMatch(/pattern/)
    expect(relaxed.properties.tags).toMatchObject({ type: "array", items: { type: "string" } })
    // a format the grammar enforces stays
    expect(relaxed.properties.when).toEqual({ type: "string", format: "date-time" })
    expect(relaxed.required).toEqual(["url"])
    expect(relaxed.additionalProperties).toBe(false)
  })

  it("inlines draft-07 definitions and pointers into the schema itself; a recursive one is cut off", () => {
    const item = { type: "object", properties: { content: { type: "string", minLength: 1 } }, required: ["content"] }
    const schema = {
      type: "object",
      definitions: { item },
      properties: {
        todos: { type: "array", items: { $ref: "#/definitions/item" } },
        done: { type: "array", items: { $ref: "#/properties/todos/items" } },
        tree: { $ref: "#/properties/tree", description: "a tree" }
      }
    }
    const relaxed = relaxSchema(schema) as any
    accepted(relaxed)
    expect(relaxed.definitions).toBeUndefined()
    expect(relaxed.properties.todos.items).toEqual(item)
    expect(relaxed.properties.done.items).toEqual(item)
    expect(JSON.stringify(relaxed.properties.tree)).toMatch(/see #\/properties\/tree/)
  })

  it("keeps $defs references, which the grammar follows, and turns type lists with object into anyOf", () => {
    const schema = {
      type: "object",
      $defs: { n: { type: "integer", minimum: 1 } },
      properties: { count: { $ref: "#/$defs/n" }, value: { type: ["object", "null"] } }
    }
    const relaxed = relaxSchema(schema) as any
    accepted(relaxed)
    expect(relaxed.properties.count).toEqual({ $ref: "#/$defs/n" })
    expect(relaxed.$defs.n).toEqual({ type: "integer", description: "(minimum: 1)" })
    expect(relaxed.properties.value).toEqual({ anyOf: [{ type: "object" }, { type: "null" }] })
  })
})
