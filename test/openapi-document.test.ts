import { Validator } from "@seriousme/openapi-schema-validator"
import Ajv2020 from "ajv/dist/2020.js"
import { Effect, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { CompletionRequest } from "../src/domain/OpenAi.js"
import { described, type Route } from "../src/http/Dialect.js"
import { dialect as openai } from "../src/http/openai/Render.js"
import { errorStatuses } from "../src/http/openapi/ErrorStatuses.js"
import * as OpenApi from "../src/http/openapi/OpenApi.js"
import { mainTable } from "../src/http/Routes.js"
import { dialect as seed } from "../src/http/seed/Render.js"

/** The document's generator on its own: what a new row gets, and how it keeps names honest. */

const handler: Route["handler"] = Effect.die("not called")

const componentsValidator = (document: OpenApi.OpenApiDocument) => {
  const ajv = new Ajv2020.default({ strict: false })
  ajv.addSchema({ $id: "https://shimmy.invalid/openapi.json", components: document.components })
  return (schema: object) =>
    ajv.compile(
      JSON.parse(
        JSON.stringify(schema).replaceAll("\"#/components/", "\"https://shimmy.invalid/openapi.json#/components/")
      )
    )
}

describe("OpenApi.make", () => {
  it("lists a row with no description by its summary, with its dialect's errors", async () => {
    const document = OpenApi.make([
      { method: "POST", path: "/api/pull/:name", dialect: seed, handler, summary: "Pull a model" }
    ])
    expect((await new Validator().validate(JSON.parse(JSON.stringify(document)))).valid).toBe(true)
    const operation: any = document.paths["/api/pull/{name}"]?.["post"]
    expect(operation.summary).toBe("Pull a model")
    expect(operation.tags).toEqual(["seed"])
    expect(operation.parameters).toEqual([{ name: "name", in: "path", required: true, schema: { type: "string" } }])
    expect(operation.responses["200"].description).toMatch(/not described/)
    expect(operation.responses["404"].content["application/json"].schema).toEqual({
      $ref: "#/components/schemas/seed.Error"
    })
    expect(operation.security).toEqual([{ bearer: [] }, { apiKeyHeader: [] }])
    // the headers Reply.ts's table sends with a status are documented with it
    expect(Object.keys(operation.responses["503"].headers)).toEqual(["retry-after"])
    expect(Object.keys(operation.responses["401"].headers)).toEqual(["www-authenticate"])
    expect(operation.responses["400"].headers).toBeUndefined()
  })

  it("refuses two different schemas under one name", () => {
    const a = Schema.Struct({ a: Schema.String })
    const b = Schema.Struct({ b: Schema.Number })
    const route = (path: string, schema: Schema.Schema.Any): Route => ({
      method: "GET",
      path: path as Route["path"],
      dialect: seed,
      handler,
      summary: "x",
      api: { json: described("Same", schema) }
    })
    expect(() => OpenApi.make([route("/a", a), route("/b", a)])).not.toThrow()
    expect(() => OpenApi.make([route("/a", a), route("/b", b)])).toThrow(/two different schemas are named 'seed.Same'/)
  })

  it("documents a body as its decoder reads it: strict bodies refuse unknown fields, others ignore them", () => {
    const document = OpenApi.make(mainTable.routes)
    const compile = componentsValidator(document)
    const bodyOf = (path: string) =>
      compile((document.paths[path]!["post"]!["requestBody"] as any).content["application/json"].schema)
    const completion = bodyOf("/v1/completions")
    const valid = { model: "m", prompt: "p" }
    // the very Schema the route decodes with agrees with its JSON Schema, both ways
    expect(Schema.is(Schema.encodedSchema(CompletionRequest))(valid)).toBe(true)
    expect(completion(valid)).toBe(true)
    expect(completion({ ...valid, bogus: 1 })).toBe(false)
    expect(completion({ prompt: "p" })).toBe(false)
    const messages = bodyOf("/v1/messages")
    const message = { model: "m", max_tokens: 1, messages: [{ role: "user", content: "hi" }] }
    expect(messages(message)).toBe(true)
    expect(messages({ ...message, metadata: { user_id: "u" } })).toBe(true)
    expect(messages({ ...message, max_tokens: "1" })).toBe(false)
  })

  it("paths in OpenAPI's form", () => {
    expect(OpenApi.openApiPath("/v1/models/*")).toBe("/v1/models/{path}")
    expect(OpenApi.openApiPath("/v1/responses/:id/cancel")).toBe("/v1/responses/{id}/cancel")
    expect(OpenApi.openApiPath("/")).toBe("/")
  })
})

describe("errorStatuses", () => {
  it("has every status of Reply.ts's table, each with its codes", () => {
    expect([...errorStatuses.keys()]).toEqual([400, 401, 403, 404, 405, 408, 413, 426, 500, 501, 502, 503, 507])
    // a pull's failures: the hub refusing (403), an integrity or network failure (502), a full disk (507)
    expect(errorStatuses.get(403)!.codes.map((c) => c.code)).toContain("pull_forbidden")
    expect(errorStatuses.get(502)!.codes.map((c) => c.code)).toEqual([
      "pull_integrity",
      "pull_network",
      "pull_upstream"
    ])
    expect(errorStatuses.get(507)!.codes.map((c) => c.code)).toEqual(["pull_disk_full"])
    expect(errorStatuses.get(503)!.codes.map((c) => c.code)).toEqual(["server_busy", "server_shutting_down"])
    expect(errorStatuses.get(500)!.codes.map((c) => c.code)).toContain("server_error")
  })

  it("gives each dialect's error body once, in components", () => {
    const document = OpenApi.make(mainTable.routes)
    const errors = Object.keys(document.components.schemas).filter((k) => k.endsWith(".Error")).sort()
    expect(errors).toEqual(["anthropic.Error", "ollama.Error", "openai.Error", "responses.Error", "seed.Error"])
    expect(openai.errorSchema).toBeDefined()
  })
})
