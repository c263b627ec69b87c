/**
 * The page's requests to the server that served it: JSON calls and OpenAI's SSE streams, with the
 * API key (when the server asks for one, a 401) kept in sessionStorage: it lasts while the tab
 * does, survives a reload, and is gone when the tab closes; no other page can read it.
 */

const KEY_STORAGE = "shimmy.apiKey"

export const apiKey = {
  get: (): string | null => sessionStorage.getItem(KEY_STORAGE),
  set: (key: string) => sessionStorage.setItem(KEY_STORAGE, key),
  clear: () => sessionStorage.removeItem(KEY_STORAGE)
}

/** The server refused the request; `status` 401 means the key is missing or wrong. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message)
  }
}

/** Asks the person for a key; resolves to none when they decline. */
export type KeyPrompt = (reason: string) => Promise<string | null>

let askForKey: KeyPrompt = () => Promise.resolve(null)
export const onKeyNeeded = (prompt: KeyPrompt) => {
  askForKey = prompt
}

const messageOf = async (response: Response): Promise<string> => {
  const text = await response.text().catch(() => "")
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } | string }
    const message = typeof body.error === "string" ? body.error : body.error?.message
    if (typeof message === "string") return message
  } catch {
    // not JSON: the text itself says it
  }
  return text.length > 0 ? text.slice(0, 500) : `HTTP ${response.status}`
}

/** A request with the key; on a 401 the person is asked for one and it is tried again. */
export const request = async (path: string, init: RequestInit = {}): Promise<Response> => {
  for (;;) {
    const headers = new Headers(init.headers)
    const key = apiKey.get()
    if (key !== null) headers.set("authorization", `Bearer ${key}`)
    const response = await fetch(path, { ...init, headers })
    if (response.ok) return response
    const message = await messageOf(response)
    if (response.status !== 401) throw new ApiError(response.status, message)
    const given = await askForKey(key === null ? "This server needs an API key." : `That key was refused: ${message}`)
    if (given === null) throw new ApiError(401, message)
    apiKey.set(given)
  }
}

export const getJson = async <A>(path: string): Promise<A> => (await request(path)).json() as Promise<A>

/** The data events of an SSE body, parsed, up to `[DONE]`. */
export async function* events(response: Response): AsyncGenerator<unknown> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ""
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return
    buffer += value.replace(/\r\n?/g, "\n")
    let end = buffer.indexOf("\n\n")
    while (end >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n")
      if (data === "[DONE]") return
      if (data.length > 0) yield JSON.parse(data)
      end = buffer.indexOf("\n\n")
    }
  }
}

/** A model as `GET /api/models` describes it. */
export interface ModelEntry {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly size: string
  readonly architecture: string | null
  readonly parameters: number | null
  readonly quantization: string | null
  readonly context_length: number | null
  readonly status: string
  readonly loaded: boolean
  readonly reason?: string
}

export const models = () => getJson<{ models: ReadonlyArray<ModelEntry> }>("/api/models").then((r) => r.models)
