import WebSocket from "ws"
import { sseData } from "./sse.js"

/**
 * Plain promise clients for load, disconnect and fuzz tests, where many requests run at once and
 * each is a few lines: fetch for JSON and SSE, `ws` for WebSockets.
 */

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export interface JsonAnswer {
  readonly status: number
  readonly headers: Headers
  readonly body: any
}

export const postJson = async (url: string, body: unknown, init: RequestInit = {}): Promise<JsonAnswer> => {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...init.headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...(init.signal ? { signal: init.signal } : {})
  })
  const text = await response.text()
  return { status: response.status, headers: response.headers, body: text.length > 0 ? JSON.parse(text) : undefined }
}

export interface SseAnswer {
  readonly status: number
  readonly headers: Headers
  /** every event's data (none when the status is not 200) */
  readonly events: ReadonlyArray<string>
  /** the error body when the status is not 200 */
  readonly error: any
}

/** A streamed answer: the status, and the `data` of every event (empty when not 200). */
export const postSse = async (url: string, body: unknown, init: RequestInit = {}): Promise<SseAnswer> => {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...init.headers },
    body: JSON.stringify(body),
    ...(init.signal ? { signal: init.signal } : {})
  })
  if (response.status !== 200) {
    return { status: response.status, headers: response.headers, events: [], error: await response.json() }
  }
  const events: Array<string> = []
  for await (const data of sseData(response)) events.push(data)
  return { status: response.status, headers: response.headers, events, error: undefined }
}

/** The text of a streamed /api/generate answer, and its last chunk's finish_reason. */
export const sseText = (events: ReadonlyArray<string>) => {
  let text = ""
  let finish: string | undefined
  for (const data of events) {
    if (data === "[DONE]") continue
    const chunk = JSON.parse(data)
    text += chunk.choices?.[0]?.text ?? ""
    finish = chunk.choices?.[0]?.finish_reason ?? finish
  }
  return { text, finish, done: events.at(-1) === "[DONE]" }
}

/** Starts a streamed request and resolves once its first event arrived; `abort` then drops it. */
export const sseUntilFirstEvent = async (url: string, body: unknown) => {
  const controller = new AbortController()
  const response = await fetch(url, { method: "POST", body: JSON.stringify(body), signal: controller.signal })
  if (response.status !== 200) {
    const error = await response.json()
    return { status: response.status, error, abort: () => controller.abort() }
  }
  const reader = response.body!.getReader()
  await reader.read()
  return { status: 200, error: undefined, abort: () => controller.abort() }
}

export const openSocket = (url: string, options: WebSocket.ClientOptions = {}) =>
  new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(url, options)
    ws.once("open", () => resolve(ws))
    ws.once("error", reject)
    ws.once(
      "unexpected-response",
      (_request, response) => reject(new Error(`unexpected response ${response.statusCode}`))
    )
  })

/** Sends one request on a socket and collects frames until `done` or `error`. */
export const wsAnswer = (ws: WebSocket, message: unknown) =>
  new Promise<ReadonlyArray<any>>((resolve, reject) => {
    const frames: Array<any> = []
    const onMessage = (data: WebSocket.RawData) => {
      const frame = JSON.parse(data.toString("utf8"))
      frames.push(frame)
      if (frame.done === true || frame.error !== undefined) {
        ws.off("message", onMessage)
        ws.off("close", onClose)
        resolve(frames)
      }
    }
    const onClose = () => reject(new Error(`socket closed after ${frames.length} frames`))
    ws.on("message", onMessage)
    ws.once("close", onClose)
    ws.send(typeof message === "string" ? message : JSON.stringify(message))
  })

export const firstFrame = (ws: WebSocket) =>
  new Promise<any>((resolve) => ws.once("message", (data) => resolve(JSON.parse(data.toString("utf8")))))

export interface Sequences {
  readonly total: number
  readonly free: number
  readonly queued: number
}

export const health = async (url: string): Promise<any> => (await fetch(`${url}/api/health`)).json()

export const sequences = async (url: string): Promise<Sequences> => (await health(url)).sequences

/**
 * Polls /api/health until every sequence is free and nothing waits; returns the last reading.
 * Gives up after `ms` (the caller's assertion then fails with what was seen).
 */
export const settled = async (url: string, ms = 3000): Promise<Sequences> => {
  const until = performance.now() + ms
  for (;;) {
    const now = await sequences(url)
    if ((now.free === now.total && now.queued === 0) || performance.now() > until) return now
    await sleep(20)
  }
}
