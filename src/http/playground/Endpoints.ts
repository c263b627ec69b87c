import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"
import type { Handler, Route } from "../Dialect.js"
import { dialect } from "../seed/Render.js"
import { asset, type AssetName, FILES } from "./Assets.js"

/**
 * The web playground: `GET /` for a browser, its script and style under `/playground/`. The page
 * runs nothing but its own script and talks to nothing but this server, which the policy below
 * makes the browser enforce; model output is rendered as text by the script (web/Markdown.ts).
 */

/** No inline script or style, no other origin, no frames, no forms posting elsewhere. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join("; ")

const SECURITY_HEADERS = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  // small files that change with each build: revalidated, never stale
  "cache-control": "no-cache"
} as const

const NOT_BUILT = "The playground was not built: run `npm run build` (it writes dist/playground).\n"

const serve = (name: AssetName): Handler =>
  Effect.map(asset(name), (text) =>
    Option.match(text, {
      onNone: () =>
        HttpServerResponse.text(NOT_BUILT, { status: 503, headers: { "x-content-type-options": "nosniff" } }),
      onSome: (body) => HttpServerResponse.text(body, { contentType: FILES[name], headers: SECURITY_HEADERS })
    }))

/** Whether a request asks for a page: browsers navigating send `Accept: text/html,...`. */
const wantsPage = (request: HttpServerRequest.HttpServerRequest) =>
  (request.headers["accept"] ?? "").toLowerCase().includes("text/html")

/**
 * The page and its files hold nothing secret and must load before the person has given the API
 * key (the page asks for it on the first 401), so they are served without one.
 */
export const publicRequest = (request: HttpServerRequest.HttpServerRequest, path: string): boolean =>
  request.method === "GET" && (path === "/" ? wantsPage(request) : ASSET_PATHS.has(path))

/**
 * The main port's `GET /`: the page for a browser, and `other` (Ollama's "Ollama is running",
 * which Ollama's clients probe for) for everything else. Both vary by `Accept`.
 */
export const negotiated = (other: Handler): Handler =>
  Effect.flatMap(
    HttpServerRequest.HttpServerRequest,
    (request) => wantsPage(request) ? serve("index.html") : other
  ).pipe(Effect.map(HttpServerResponse.setHeader("vary", "Accept")))

/** The Ollama row for `GET /` with the playground in front of it; other rows as they are. */
export const atRoot = (route: Route): Route =>
  route.method === "GET" && route.path === "/"
    ? {
      ...route,
      handler: negotiated(route.handler),
      summary: "The web playground for a browser (Accept: text/html), else \"Ollama is running\""
    }
    : route

const ASSET_PATHS: ReadonlySet<string> = new Set(["/playground/app.js", "/playground/app.css"])

export const routes: ReadonlyArray<Route> = [
  { method: "GET", path: "/playground/app.js", dialect, handler: serve("app.js"), summary: "The playground's script" },
  { method: "GET", path: "/playground/app.css", dialect, handler: serve("app.css"), summary: "The playground's style" }
]
