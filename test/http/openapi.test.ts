import { Validator } from "@seriousme/openapi-schema-validator"
import Ajv2020 from "ajv/dist/2020.js"
import { Option, Redacted } from "effect"
import { createHash } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openApiPath } from "../../src/http/openapi/OpenApi.js"
import { mainTable, ollamaTable, type RouteTable } from "../../src/http/Routes.js"
import { type RunningServer, startServer } from "../support/server.js"

/**
 * `/openapi.json` and `/docs` on both listeners of the real server: the document is valid OpenAPI
 * 3.1, lists every row of the route table, every operation it lists is answered with a status it
 * documents, and what the server really answers validates against the schema it documents.
 */

const MODEL = "stories260K"

let server: RunningServer & { readonly close: () => Promise<void> }
let main: any
let ollama: any

const getDocument = async (url: string) => {
  const response = await fetch(`${url}/openapi.json`)
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toMatch(/^application\/json/)
  return response.json() as any
}

beforeAll(async () => {
  server = await startServer({}, {}, { ollama: true })
  main = await getDocument(server.url)
  ollama = await getDocument(server.ollamaUrl!)
})

afterAll(() => server?.close())

/** Ajv over the document's components, so `$ref`s to `#/components/schemas/...` resolve; one per document. */
const validators = new WeakMap<object, (schema: object) => ReturnType<Ajv2020.default["compile"]>>()
const validatorFor = (document: any) => {
  const known = validators.get(document)
  if (known !== undefined) return known
  const ajv = new Ajv2020.default({ strict: false, allErrors: true })
  ajv.addSchema({ $id: "https://shimmy.invalid/openapi.json", components: document.components })
  const compiled = new Map<string, ReturnType<Ajv2020.default["compile"]>>()
  const compile = (schema: object) => {
    const text = JSON.stringify(schema)
    let validate = compiled.get(text)
    if (validate === undefined) {
      validate = ajv.compile(
        JSON.parse(text.replaceAll("\"#/components/", "\"https://shimmy.invalid/openapi.json#/components/"))
      )
      compiled.set(text, validate)
    }
    return validate
  }
  validators.set(document, compile)
  return compile
}

const responseSchema = (document: any, path: string, method: string, status: number, type = "application/json") => {
  const schema = document.paths[path]?.[method]?.responses?.[String(status)]?.content?.[type]?.schema
  expect(schema, `${method} ${path} ${status} ${type} has a schema`).toBeDefined()
  return schema
}

/** Checks a real answer against the document, reporting Ajv's errors (never a huge diff). */
const conforms = (document: any, path: string, method: string, status: number, body: unknown, type?: string) => {
  const validate = validatorFor(document)(responseSchema(document, path, method, status, type))
  const ok = validate(body)
  expect(ok ? [] : JSON.stringify(validate.errors).slice(0, 2000)).toEqual([])
}

const tableRows = (table: RouteTable) => table.routes.map((r) => ({ method: r.method.toLowerCase(), path: r.path }))

describe.each([
  { name: "main port", table: mainTable, doc: () => main, url: () => server.url },
  { name: "Ollama port", table: ollamaTable, doc: () => ollama, url: () => server.ollamaUrl! }
])("the $name's /openapi.json", ({ doc, table, url }) => {
  it("is valid OpenAPI 3.1", async () => {
    const result = await new Validator().validate(doc())
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
    expect(doc().openapi).toBe("3.1.0")
  })

  it("lists every route of the table with its method, and nothing else", () => {
    const rows = tableRows(table)
    for (const { method, path } of rows) {
      expect(doc().paths[openApiPath(path)]?.[method], `${method} ${path}`).toBeDefined()
    }
    const listed = Object.values(doc().paths).reduce((n: number, item: any) => n + Object.keys(item).length, 0)
    expect(listed).toBe(rows.length)
  })

  it("has unique operationIds, the listener as its server, and the key's schemes where the guard asks for it", () => {
    const operations = Object.entries(doc().paths).flatMap(([path, item]: [string, any]) =>
      Object.entries(item).map(([method, op]: [string, any]) => ({ path, method, op }))
    )
    const ids = operations.map((o) => o.op.operationId)
    expect(new Set(ids).size).toBe(ids.length)
    expect(doc().servers).toEqual([{ url: url() }])
    expect(Object.keys(doc().components.securitySchemes).sort()).toEqual(["apiKeyHeader", "apiKeyQuery", "bearer"])
    for (const { op, path } of operations) {
      const open = ["/openapi.json", "/docs", "/api/health"].includes(path)
      expect(op.security.length === 0, path).toBe(open)
      if (!open) expect(op.responses["401"], path).toBeDefined()
    }
  })

  it("answers every operation it lists with one of the statuses it documents", async () => {
    const sample: Record<string, string> = { path: MODEL, id: "resp_0", digest: "sha256-0" }
    for (const [path, item] of Object.entries(doc().paths) as Array<[string, any]>) {
      const concrete = path.replace(/\{(\w+)\}/g, (_, name: string) => sample[name] ?? "x")
      for (const [method, op] of Object.entries(item) as Array<[string, any]>) {
        const response = await fetch(`${url()}${concrete}`, {
          method: method.toUpperCase(),
          ...(op.requestBody !== undefined ? { body: "{}", headers: { "content-type": "application/json" } } : {})
        })
        await response.arrayBuffer()
        const documented = Object.keys(op.responses)
        expect(documented, `${method} ${path} answered ${response.status}`).toContain(String(response.status))
        // a 404 is only what a route that always refuses documents; a 405 never
        if (response.status === 404) expect(documented, `${method} ${path}`).not.toContain("200")
        expect(response.status).not.toBe(405)
      }
    }
  })
})

describe("what the server answers validates against the document", () => {
  it("GET /api/health and GET /api/models", async () => {
    const health = await fetch(`${server.url}/api/health`)
    expect(health.status).toBe(200)
    conforms(main, "/api/health", "get", 200, await health.json())
    const models = await fetch(`${server.url}/api/models`)
    conforms(main, "/api/models", "get", 200, await models.json())
  })

  it("GET /v1/models (OpenAI's and Anthropic's shapes) and one model", async () => {
    const openai = (await (await fetch(`${server.url}/v1/models`)).json()) as any
    expect(openai.object).toBe("list")
    conforms(main, "/v1/models", "get", 200, openai)
    const anthropic = await (await fetch(`${server.url}/v1/models`, { headers: { "anthropic-version": "2023-06-01" } }))
      .json() as any
    expect(anthropic.object).toBeUndefined()
    conforms(main, "/v1/models", "get", 200, anthropic)
    const one = await fetch(`${server.url}/v1/models/${MODEL}`)
    expect(one.status).toBe(200)
    conforms(main, "/v1/models/{path}", "get", 200, await one.json())
  })

  it("POST /v1/chat/completions, as JSON and as SSE chunks", async () => {
    const body = { model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 4, temperature: 0 }
    const json = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify(body) })
    expect(json.status).toBe(200)
    const completion = (await json.json()) as any
    expect(completion.usage.completion_tokens).toBeGreaterThan(0)
    conforms(main, "/v1/chat/completions", "post", 200, completion)

    const stream = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } })
    })
    expect(stream.headers.get("content-type")).toMatch(/^text\/event-stream/)
    const data = (await stream.text()).split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6))
    expect(data.at(-1)).toBe("[DONE]")
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d))
    expect(chunks.length).toBeGreaterThan(1)
    for (const chunk of chunks) conforms(main, "/v1/chat/completions", "post", 200, chunk, "text/event-stream")
  })

  it("POST /v1/messages and POST /v1/responses, as SSE events named by their type", async () => {
    const sse = async (path: string, body: unknown) => {
      const response = await fetch(`${server.url}${path}`, { method: "POST", body: JSON.stringify(body) })
      expect(response.status, path).toBe(200)
      expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/)
      const events = (await response.text()).split("\n\n").filter((e) => e.trim().length > 0).map((e) => {
        const lines = e.split("\n")
        return {
          name: lines.find((l) => l.startsWith("event: "))?.slice(7),
          data: JSON.parse(lines.find((l) => l.startsWith("data: "))!.slice(6))
        }
      })
      expect(events.length).toBeGreaterThan(2)
      for (const event of events) {
        expect(event.name).toBe(event.data.type)
        conforms(main, path, "post", 200, event.data, "text/event-stream")
      }
      return events
    }
    const messages = await sse("/v1/messages", {
      model: MODEL,
      max_tokens: 3,
      stream: true,
      messages: [{ role: "user", content: "Hi" }]
    })
    expect(messages.at(-1)!.name).toBe("message_stop")
    const responses = await sse("/v1/responses", { model: MODEL, input: "Hi", max_output_tokens: 3, stream: true })
    expect(responses.at(-1)!.name).toMatch(/^response\.(completed|incomplete)$/)
  })

  it("Ollama's /api/tags, /api/version and /api/chat on the Ollama port", async () => {
    conforms(ollama, "/api/tags", "get", 200, await (await fetch(`${server.ollamaUrl}/api/tags`)).json())
    conforms(ollama, "/api/version", "get", 200, await (await fetch(`${server.ollamaUrl}/api/version`)).json())
    const chat = await fetch(`${server.ollamaUrl}/api/chat`, {
      method: "POST",
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Hi" }], options: { num_predict: 3 } })
    })
    expect(chat.headers.get("content-type")).toMatch(/^application\/x-ndjson/)
    const lines = (await chat.text()).trim().split("\n").map((l) => JSON.parse(l))
    expect(lines.at(-1).done).toBe(true)
    for (const line of lines) conforms(ollama, "/api/chat", "post", 200, line, "application/x-ndjson")
  })

  it("POST /tokenize", async () => {
    const response = await fetch(`${server.url}/tokenize`, {
      method: "POST",
      body: JSON.stringify({ model: MODEL, content: "Once upon", with_pieces: true })
    })
    expect(response.status).toBe(200)
    conforms(main, "/tokenize", "post", 200, await response.json())
  })

  it("errors, in each dialect's shape, under the status the document gives them", async () => {
    const cases: ReadonlyArray<{ doc: any; base: string; path: string; body: unknown; status: number }> = [
      { doc: main, base: server.url, path: "/v1/chat/completions", body: { messages: [] }, status: 400 },
      {
        doc: main,
        base: server.url,
        path: "/api/generate",
        body: { model: "no-such-model", prompt: "x" },
        status: 404
      },
      {
        doc: main,
        base: server.url,
        path: "/v1/messages",
        body: { model: "no-such-model", max_tokens: 1, messages: [{ role: "user", content: "x" }] },
        status: 404
      },
      { doc: ollama, base: server.ollamaUrl!, path: "/api/chat", body: { model: "no-such-model" }, status: 404 },
      { doc: main, base: server.url, path: "/v1/responses", body: { input: 1 }, status: 400 }
    ]
    for (const c of cases) {
      const response = await fetch(`${c.base}${c.path}`, { method: "POST", body: JSON.stringify(c.body) })
      expect(response.status, c.path).toBe(c.status)
      conforms(c.doc, c.path, "post", c.status, await response.json())
    }
  })
})

describe("/docs", () => {
  it("serves the page offline, under a strict Content-Security-Policy", async () => {
    for (const base of [server.url, server.ollamaUrl!]) {
      const response = await fetch(`${base}/docs`)
      expect(response.status).toBe(200)
      expect(response.headers.get("content-type")).toMatch(/^text\/html/)
      const csp = response.headers.get("content-security-policy") ?? ""
      const directives = Object.fromEntries(csp.split(";").map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]))
      expect(directives["default-src"]).toEqual(["'none'"])
      expect(directives["connect-src"]).toEqual(["'self'"])
      // the inline script is allowed by its hash alone: no 'unsafe-inline', no 'unsafe-eval', no host
      expect(directives["script-src"]).toHaveLength(1)
      expect(directives["script-src"]![0]).toMatch(/^'sha256-[A-Za-z0-9+/]+=*'$/)
      expect(csp).not.toMatch(/unsafe-|https?:/)
      const html = await response.text()
      // nothing is loaded from elsewhere: no URL with a scheme, no protocol-relative one
      expect(html.match(/(?:https?:|wss?:)?\/\/[\w.-]+\.[a-z]{2,}/gi) ?? []).toEqual([])
      expect(html).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/)
      expect(html).not.toMatch(/\son[a-z]+=/i)
      // the script the policy allows is the one on the page
      const script = /<script>([\s\S]*)<\/script>/.exec(html)![1]!
      expect(directives["script-src"]![0]).toBe(`'sha256-${createHash("sha256").update(script).digest("base64")}'`)
    }
  })

  it("is public, as the document is, when the server has an API key; the rest is not", async () => {
    const keyed = await startServer({}, { apiKey: Option.some(Redacted.make("secret")) })
    try {
      expect((await fetch(`${keyed.url}/docs`)).status).toBe(200)
      expect((await fetch(`${keyed.url}/openapi.json`)).status).toBe(200)
      const refused = await fetch(`${keyed.url}/v1/models`)
      expect(refused.status).toBe(401)
      conforms(main, "/v1/models", "get", 401, await refused.json())
    } finally {
      await keyed.close()
    }
  })
})
