import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { expect } from "vitest"
import { sharedModel } from "./models.js"
import { sseData } from "./sse.js"

/**
 * Helpers for the tests of models in memory (load, unload, eviction): JSON over fetch, the
 * server's health until it has settled, a counter from /metrics, and a stream that keeps a model
 * in use until the test lets it go.
 */

export interface Reply<T = any> {
  readonly status: number
  readonly headers: Headers
  readonly body: T
}

export const getJson = async <T = any>(url: string): Promise<Reply<T>> => {
  const response = await fetch(url)
  return { status: response.status, headers: response.headers, body: await response.json() as T }
}

export const postJson = async <T = any>(url: string, body: unknown): Promise<Reply<T>> => {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  return { status: response.status, headers: response.headers, body: await response.json() as T }
}

/** A short generation through the seed API, answered as JSON. */
export const generate = (base: string, model: string, extra: Record<string, unknown> = {}) =>
  postJson(`${base}/api/generate`, { model, prompt: "Once upon a time", max_tokens: 2, temperature: 0, ...extra })

/** Names of the models in memory, as `/api/models/loaded` tells them. */
export const loadedNames = async (base: string): Promise<ReadonlyArray<string>> =>
  ((await getJson(`${base}/api/models/loaded`)).body.models as Array<{ id: string }>).map((m) => m.id).sort()

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Until `check` holds, for at most `ms`; the last check's result. */
export const eventually = async (check: () => Promise<boolean>, ms = 5000): Promise<boolean> => {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check()) return true
    await sleep(10)
  }
  return check()
}

/** Waits until no sequence is busy, none is queued and no request waits for a slot: nothing leaked. */
export const expectSettled = async (base: string) => {
  const settled = await eventually(async () => {
    const { body } = await getJson(`${base}/api/health`)
    return body.sequences.free === body.sequences.total && body.sequences.queued === 0 &&
      body.model_slots.waiting === 0 && body.loading.length === 0
  })
  const { body } = await getJson(`${base}/api/health`)
  expect({ settled, sequences: body.sequences, slots: body.model_slots, loading: body.loading }).toMatchObject({
    settled: true,
    sequences: { free: body.sequences.total, queued: 0 },
    slots: { waiting: 0 },
    loading: []
  })
}

/** A counter's value for one model from `/metrics` (0 where it has no series yet). */
export const counter = async (base: string, name: string, model: string): Promise<number> => {
  const text = await (await fetch(`${base}/metrics`)).text()
  const line = text.split("\n").find((l) => l.startsWith(`${name}{model="${model}"}`))
  return line === undefined ? 0 : Number(line.split(" ").pop())
}

/**
 * A streamed generation of up to `maxTokens` tokens, open once its first event came (so its model
 * is loaded and in use); `stop` hangs up (the server cancels it), `rest` reads it to its end.
 */
export const openStream = async (base: string, model: string, maxTokens = 2000) => {
  const controller = new AbortController()
  const response = await fetch(`${base}/api/generate`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    // greedy: the synthetic model's end-of-text logit is zero, never the largest, so it runs to max_tokens
    body: JSON.stringify({ model, prompt: "Once upon a time", max_tokens: maxTokens, temperature: 0, stream: true }),
    signal: controller.signal
  })
  expect(response.status).toBe(200)
  const events = sseData(response)
  const first = await events.next()
  expect(first.done).toBe(false)
  return {
    stop: async () => {
      controller.abort()
      await events.return(undefined).catch(() => undefined)
    },
    /** every further event's data until the stream ends */
    rest: async () => {
      const data: Array<string> = []
      for await (const item of events) data.push(item)
      return data
    }
  }
}

/**
 * A directory of models named for the test: copies of the shared tiny models, and `slow`, a
 * synthetic 25M-parameter model (random weights, end of text never sampled) that generates for
 * seconds and loads for long enough to be seen loading.
 */
export const modelsIn = (dir: string, copies: Record<string, string>, slow: ReadonlyArray<string> = []) => {
  for (const [name, file] of Object.entries(copies)) {
    fs.copyFileSync(sharedModel(file), path.join(dir, `${name}.gguf`))
  }
  const tools = path.resolve(sharedModel("."), "..", "tools", "make-model.mjs")
  for (const name of slow) {
    execFileSync(
      process.execPath,
      [tools, "--preset", "bench-25m", "--quiet", "--out", path.join(dir, `${name}.gguf`)],
      {
        stdio: "ignore"
      }
    )
  }
}
