import type { HttpServerRequest } from "@effect/platform"

// the guard, the router's 404/405 and handlers all ask; a request's URL is parsed once
const parsed = new WeakMap<HttpServerRequest.HttpServerRequest, URL>()

/** The request's URL (relative to the server); a target that does not parse counts as `/`. */
export const requestUrl = (request: HttpServerRequest.HttpServerRequest): URL => {
  const cached = parsed.get(request)
  if (cached !== undefined) return cached
  let url: URL
  try {
    url = new URL(request.url, "http://localhost")
  } catch {
    url = new URL("http://localhost/")
  }
  parsed.set(request, url)
  return url
}
