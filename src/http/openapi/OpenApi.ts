import { JSONSchema } from "effect"
import { VERSION } from "../../Version.js"
import type { Described, Dialect, Route, StreamFraming } from "../Dialect.js"
import { PUBLIC_PATHS } from "../Guard.js"
import { errorStatuses } from "./ErrorStatuses.js"

/**
 * The OpenAPI 3.1 document of a route table, generated from its rows: every route appears (a row
 * without `api` by its summary), with the JSON Schemas of the very `effect/Schema` values its
 * Decode.ts and Render.ts use (effect's `JSONSchema`, OpenAPI 3.1 target), each dialect's error
 * body under the statuses of Reply.ts's table, and the API key's schemes where Guard.ts asks for it.
 * The server is no `HttpApi`, so this reads the route table instead; the JSON Schema is Effect's.
 */

type Json = Record<string, unknown>

export interface OpenApiDocument {
  readonly openapi: "3.1.0"
  readonly info: Json
  readonly servers?: ReadonlyArray<{ readonly url: string }>
  readonly tags: ReadonlyArray<{ readonly name: string }>
  readonly paths: Record<string, Record<string, Json>>
  readonly components: { readonly schemas: Record<string, object>; readonly securitySchemes: Record<string, Json> }
}

const REFS = "#/components/schemas/"

/**
 * effect's JSON Schema marks `Unknown`, `Any` and the like with `$id: "/schemas/unknown"` (and so
 * on); one document holds many, and JSON Schema forbids an `$id` twice. The marks go; what they
 * mark (any value) stays.
 */
const unmarked = (json: unknown): unknown => {
  if (Array.isArray(json)) return json.map(unmarked)
  if (typeof json !== "object" || json === null) return json
  return Object.fromEntries(
    Object.entries(json)
      .filter(([key, value]) => !(key === "$id" && typeof value === "string" && value.startsWith("/schemas/")))
      .map(([key, value]) => [key, unmarked(value)])
  )
}

/** A component's key: OpenAPI allows letters, digits, `.`, `-` and `_`. */
const keyOf = (name: string) => name.replace(/[^A-Za-z0-9._-]/g, "_")

/**
 * `components/schemas`, filled as routes are described. A name given twice must mean the same
 * schema: two dialects' `Usage` under one key would describe one of them wrongly, so that throws
 * (and the document's test fails) instead.
 */
const componentsOf = () => {
  const schemas: Record<string, object> = {}
  const put = (key: string, marked: object) => {
    const json = unmarked(marked) as object
    const existing = schemas[key]
    if (existing !== undefined && JSON.stringify(existing) !== JSON.stringify(json)) {
      throw new Error(`OpenAPI: two different schemas are named '${key}'`)
    }
    schemas[key] = json
  }
  /** `described`'s JSON Schema under `<scope>.<name>` (or a dotted name as it is), answered as a `$ref` to it. */
  const ref = (scope: string, { name, schema }: Described, strict: boolean): Json => {
    const definitions: Record<string, JSONSchema.JsonSchema7> = {}
    const json = JSONSchema.fromAST(schema.ast, {
      definitions,
      definitionPath: REFS,
      target: "openApi3.1",
      // the body's own schema is this component; only what it shares goes beside it
      topLevelReferenceStrategy: "skip",
      // a request decoded without `onExcessProperty: "error"` ignores unknown fields
      additionalPropertiesStrategy: strict ? "strict" : "allow"
    })
    for (const [key, definition] of Object.entries(definitions)) put(key, definition)
    const key = keyOf(name.includes(".") ? name : `${scope}.${name}`)
    put(key, json)
    return { $ref: `${REFS}${key}` }
  }
  return { schemas, ref }
}

/** `/v1/models/*` → `/v1/models/{path}`, `/api/blobs/:digest` → `/api/blobs/{digest}`. */
export const openApiPath = (path: string): string =>
  path.split("/").map((part) => (part === "*" ? "{path}" : part.startsWith(":") ? `{${part.slice(1)}}` : part)).join(
    "/"
  )

const pathParameters = (path: string): ReadonlyArray<Json> =>
  path.split("/").flatMap((part) =>
    part === "*"
      ? [{
        name: "path",
        in: "path",
        required: true,
        description: "the rest of the path, `/` included (a model id such as `org/name:tag`)",
        schema: { type: "string" }
      }]
      : part.startsWith(":")
      ? [{ name: part.slice(1), in: "path", required: true, schema: { type: "string" } }]
      : []
  )

const FRAMING: Record<StreamFraming, { readonly contentType: string; readonly description: string }> = {
  dataEvents: {
    contentType: "text/event-stream",
    description:
      "Server-sent events: each `data:` is one JSON object of this schema; the stream ends with `data: [DONE]`"
  },
  namedEvents: {
    contentType: "text/event-stream",
    description: "Server-sent events: each is `event: <type>` with a `data:` JSON object of this schema"
  },
  ndjson: {
    contentType: "application/x-ndjson",
    description: "Newline-delimited JSON: one object of this schema per line"
  }
}

const isPublic = (path: string) => PUBLIC_PATHS.has(path)

/**
 * The error statuses a route can answer with: any request can be refused for its origin, its
 * declared size, an unsupported upgrade, the shutdown or a bug; a body can be malformed, late or
 * invalid; what names a model or an id can find none; a WebSocket wants its upgrade.
 */
const statusesOf = (route: Route): ReadonlyArray<number> => {
  const api = route.api
  const statuses = new Set([400, 403, 413, 500, 503])
  if (!isPublic(route.path)) statuses.add(401)
  if (api?.body !== undefined) {
    statuses.add(404)
    statuses.add(408)
  }
  if (route.path.includes("*") || route.path.includes(":")) statuses.add(404)
  if (api?.socket !== undefined) statuses.add(426)
  if (api?.refuses !== undefined) statuses.add(api.refuses)
  return [...statuses].filter((s) => errorStatuses.has(s)).sort((a, b) => a - b)
}

const looseError: Json = { type: "object", description: "an error body" }

export interface DocumentOptions {
  readonly title?: string
  readonly description?: string
}

/** The document of `routes` (a table's rows); `servers` is left to the listener that serves it. */
export const make = (routes: ReadonlyArray<Route>, options: DocumentOptions = {}): OpenApiDocument => {
  const components = componentsOf()
  const errorRefs = new Map<Dialect, Json>()
  const errorOf = (dialect: Dialect): Json => {
    const known = errorRefs.get(dialect)
    if (known !== undefined) return known
    const json = dialect.errorSchema === undefined
      ? looseError
      : components.ref(dialect.name, { name: "Error", schema: dialect.errorSchema }, true)
    errorRefs.set(dialect, json)
    return json
  }

  const paths: Record<string, Record<string, Json>> = {}
  const tags: Array<string> = []
  const operationIds = new Set<string>()
  const operationIdOf = (route: Route) => {
    const base = `${route.method.toLowerCase()}${
      route.path === "/" ? "_root" : route.path.replace(/[^A-Za-z0-9]+/g, "_").replace(/_$/, "")
    }`
    let id = base
    for (let n = 2; operationIds.has(id); n++) id = `${base}_${n}`
    operationIds.add(id)
    return id
  }

  for (const route of routes) {
    const api = route.api
    const scope = route.dialect.name
    const routeTags = [route.dialect.name, ...(api?.tags ?? [])]
    for (const tag of routeTags) if (!tags.includes(tag)) tags.push(tag)

    const responses: Record<string, Json> = {}
    const head = route.method === "HEAD"
    if (api?.refuses === undefined) {
      const content: Record<string, Json> = {}
      const jsons = api?.json === undefined ? [] : Array.isArray(api.json) ? api.json : [api.json as Described]
      const refs = jsons.map((d) => components.ref(scope, d, true))
      if (refs.length === 1) content["application/json"] = { schema: refs[0] }
      if (refs.length > 1) content["application/json"] = { schema: { anyOf: refs } }
      if (api?.stream !== undefined) {
        const framing = FRAMING[api.stream.framing]
        content[framing.contentType] = {
          schema: { ...components.ref(scope, api.stream, true), description: framing.description }
        }
      }
      if (api?.text !== undefined) {
        content[api.text.contentType] = { schema: { type: "string", description: api.text.description } }
      }
      if (api?.socket !== undefined) {
        responses["101"] = { description: "Switching Protocols: the WebSocket is open" }
      } else {
        responses["200"] = {
          description: api === undefined || (Object.keys(content).length === 0 && !head)
            ? "Success (the answer is not described in detail)"
            : "Success",
          ...(Object.keys(content).length > 0 && !head ? { content } : {})
        }
      }
    }
    const error = errorOf(route.dialect)
    for (const status of statusesOf(route)) {
      const known = errorStatuses.get(status)!
      // `connection` is the transport's, not the API's
      const headers = known.headers.filter((h) => h !== "connection")
      responses[String(status)] = {
        description: known.codes.map((c) => `\`${c.code}\` (${c.message})`).join(", "),
        ...(headers.length > 0
          ? { headers: Object.fromEntries(headers.map((h) => [h, { schema: { type: "string" } }])) }
          : {}),
        ...(head ? {} : { content: { "application/json": { schema: error } } })
      }
    }

    const operation: Json = {
      operationId: operationIdOf(route),
      summary: route.summary,
      ...(api?.description !== undefined ? { description: api.description } : {}),
      tags: routeTags,
      parameters: [
        ...pathParameters(route.path),
        ...(api?.parameters ?? []).map((p) => ({
          name: p.name,
          in: p.in,
          description: p.description,
          required: p.required ?? false,
          schema: { type: "string" }
        }))
      ],
      ...(api?.body !== undefined
        ? {
          requestBody: {
            required: true,
            content: { "application/json": { schema: components.ref(scope, api.body, api.body.strict === true) } }
          }
        }
        : {}),
      responses,
      ...(api?.socket !== undefined
        ? {
          "x-websocket": {
            description: "each text message is one request, answered by its messages; the socket stays open",
            send: components.ref(scope, api.socket.send, api.socket.send.strict === true),
            receive: components.ref(scope, api.socket.receive, true)
          }
        }
        : {}),
      security: securityOf(route.path)
    }
    const path = openApiPath(route.path)
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: operation }
  }

  return {
    openapi: "3.1.0",
    info: {
      title: options.title ?? "Shimmy",
      version: VERSION,
      description: options.description ??
        "A local LLM inference server: its own API, and OpenAI's, Anthropic's and Ollama's over one engine."
    },
    tags: tags.map((name) => ({ name })),
    paths,
    components: { schemas: components.schemas, securitySchemes }
  }
}

/**
 * What Guard.ts takes as the key: a bearer token or `x-api-key` on any path, `?api_key=` on a
 * WebSocket's; an open path needs none (`[]`).
 */
const securityOf = (path: string): ReadonlyArray<Json> =>
  isPublic(path)
    ? []
    : [{ bearer: [] }, { apiKeyHeader: [] }, ...(path.startsWith("/ws/") ? [{ apiKeyQuery: [] }] : [])]

const securitySchemes: Record<string, Json> = {
  bearer: {
    type: "http",
    scheme: "bearer",
    description: "The server's API key (`--api-key`, SHIMMY_API_KEY), where one is set; without one, none is needed"
  },
  apiKeyHeader: {
    type: "apiKey",
    in: "header",
    name: "x-api-key",
    description: "The same key as Anthropic's clients send it (taken on every path)"
  },
  apiKeyQuery: {
    type: "apiKey",
    in: "query",
    name: "api_key",
    description: "The same key in the URL, on WebSocket paths (`/ws/...`) only: browsers cannot set headers there"
  }
}
