import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Schema } from "effect"
import type { IncomingMessage } from "node:http"
import { described, type Dialect, type Handler, type Route } from "../Dialect.js"
import { contentSecurityPolicy, html } from "./DocsPage.js"
import * as OpenApi from "./OpenApi.js"

/**
 * `GET /openapi.json` and `GET /docs` for a listener: the document of its whole route table, these
 * two rows included, so a route added to the table appears without more. Neither path is one of
 * Ollama's, so the Ollama-only port serves them too (its own document: Ollama's API at the root).
 */

/** Where the connection came in, as a URL: the listener's address as this client reaches it. */
const serverUrlOf = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  // a request that did not come through Node's server (an app run in memory) has no socket
  const socket = (request.source as Partial<IncomingMessage> | undefined)?.socket
  const address = socket?.localAddress?.replace(/^::ffff:/, "")
  if (address === undefined || socket?.localPort === undefined) return undefined
  return `http://${address.includes(":") ? `[${address}]` : address}:${socket.localPort}`
}

// a listener is reached at few addresses; each gets its text once
const MAX_CACHED = 16

const documentHandler = (documentOf: () => OpenApi.OpenApiDocument): Handler => {
  const texts = new Map<string, string>()
  return Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const url = serverUrlOf(request) ?? ""
    let text = texts.get(url)
    if (text === undefined) {
      const document = documentOf()
      text = JSON.stringify(url === "" ? document : { ...document, servers: [{ url }] })
      if (texts.size < MAX_CACHED) texts.set(url, text)
    }
    return HttpServerResponse.text(text, { contentType: "application/json" })
  })
}

const page: Handler = Effect.succeed(
  HttpServerResponse.text(html, { contentType: "text/html; charset=utf-8" }).pipe(
    HttpServerResponse.setHeaders({
      "content-security-policy": contentSecurityPolicy,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cache-control": "no-cache"
    })
  )
)

/** The description of the document itself: any JSON object (it is OpenAPI 3.1's own schema). */
const DocumentSchema = Schema.Struct(
  { openapi: Schema.Literal("3.1.0") },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)

/** `routes` with the two rows that describe them, answering errors in `dialect`'s shape. */
export const withDocs = (
  routes: ReadonlyArray<Route>,
  dialect: Dialect,
  options: OpenApi.DocumentOptions = {}
): ReadonlyArray<Route> => {
  let document: OpenApi.OpenApiDocument | undefined
  // built on the first request, from every row (these two included)
  const documentOf = () => (document ??= OpenApi.make(all, options))
  const all: ReadonlyArray<Route> = [
    ...routes,
    {
      method: "GET",
      path: "/openapi.json",
      dialect,
      handler: documentHandler(documentOf),
      summary: "This listener's OpenAPI 3.1 document",
      api: { json: described("OpenApiDocument", DocumentSchema), tags: ["docs"] }
    },
    {
      method: "GET",
      path: "/docs",
      dialect,
      handler: page,
      summary: "A page that shows the OpenAPI document (offline: nothing is loaded from elsewhere)",
      api: { text: { contentType: "text/html; charset=utf-8", description: "the page" }, tags: ["docs"] }
    }
  ]
  return all
}
