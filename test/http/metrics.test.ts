import { Option, Redacted } from "effect"
import OpenAI from "openai"
import parsePrometheus from "parse-prometheus-text-format"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { postJson, sleep } from "../support/clients.js"
import { startServer } from "../support/server.js"

/**
 * `GET /metrics` over a real socket, parsed by a real Prometheus text-format parser, after known
 * requests made with the official `openai` SDK and fetch; the numbers must move as they did.
 */

type Server = Awaited<ReturnType<typeof startServer>>

const scrape = async (url: string, init: RequestInit = {}) => {
  const response = await fetch(`${url}/metrics`, init)
  const text = await response.text()
  return { status: response.status, type: response.headers.get("content-type"), text }
}

const parsed = async (url: string) => {
  const { status, text, type } = await scrape(url)
  expect(status).toBe(200)
  expect(type).toBe("text/plain; version=0.0.4; charset=utf-8")
  return { families: parsePrometheus(text), text }
}

type Families = ReturnType<typeof parsePrometheus>

const family = (families: Families, name: string) => {
  const found = families.find((f) => f.name === name)
  if (found === undefined) throw new Error(`no metric family ${name}`)
  return found
}

/** A counter's or gauge's sample whose labels include `labels`; undefined when there is none. */
const value = (families: Families, name: string, labels: Record<string, string> = {}): number | undefined => {
  const sample = family(families, name).metrics.find((m) =>
    Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)
  )
  return sample?.value === undefined ? undefined : Number(sample.value)
}

/**
 * A histogram's cumulative buckets. The parser keeps a labeled histogram's buckets (not its labels,
 * and drops its `_count` and `_sum`), so this is read where the histogram has one series; its
 * `+Inf` bucket is the count.
 */
const buckets = (families: Families, name: string): Record<string, number> => {
  const metrics = family(families, name).metrics
  expect(family(families, name).type).toBe("HISTOGRAM")
  const all = metrics[0]?.buckets ?? {}
  return Object.fromEntries(Object.entries(all).map(([le, n]) => [le, Number(n)]))
}

/** A labeled histogram's `_count` for one label set, from the text (where it has several series). */
const countOf = (text: string, name: string, labels: string) => {
  const line = text.split("\n").find((l) => l.startsWith(`${name}_count{${labels}}`))
  return line === undefined ? undefined : Number(line.split(" ").at(-1))
}

describe("GET /metrics", () => {
  let server: Server
  let client: OpenAI
  beforeAll(async () => {
    server = await startServer({ parallel: 2 })
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 })
  })
  afterAll(() => server.close())

  it("is Prometheus text with HELP and TYPE, before any model is loaded", async () => {
    const { families, text } = await parsed(server.url)
    for (const f of families) {
      expect(f.help.length).toBeGreaterThan(0)
      expect(f.name).toMatch(/^shimmy_[a-z_]+$/)
      if (f.type === "COUNTER") expect(f.name).toMatch(/_total$/)
    }
    expect(text).toMatch(/^# HELP shimmy_http_requests_total /m)
    expect(value(families, "shimmy_models_loaded")).toBe(0)
    expect(family(families, "shimmy_model_loaded").metrics).toEqual([])
    expect(value(families, "shimmy_process_resident_memory_bytes")).toBeGreaterThan(10_000_000)
    expect(value(families, "shimmy_process_heap_bytes", { kind: "used" })).toBeGreaterThan(1_000_000)
    expect(family(families, "shimmy_time_to_first_token_seconds").type).toBe("HISTOGRAM")
  })

  it("counts tokens as the API reported them, TTFT per generation, requests by route and status", async () => {
    const chat = await client.chat.completions.create({
      model: "stories260K",
      messages: [{ role: "user", content: "Once upon a time" }],
      max_tokens: 7,
      temperature: 0
    })
    const stream = await client.chat.completions.create({
      model: "stories260K",
      messages: [{ role: "user", content: "There was a dog" }],
      max_tokens: 9,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true }
    })
    let streamed: OpenAI.CompletionUsage | undefined
    let pieces = 0
    for await (const chunk of stream) {
      if (chunk.usage) streamed = chunk.usage
      if (chunk.choices[0]?.delta.content) pieces++
    }
    const seed = await postJson(`${server.url}/api/generate`, { model: "stories260K", prompt: "Lily", max_tokens: 5 })
    expect(seed.status).toBe(200)
    const usages = [chat.usage!, streamed!, seed.body.usage]
    expect(pieces).toBeGreaterThan(0)
    // a path no route takes, a method a route does not take, an unknown model
    expect((await fetch(`${server.url}/no/such/path?x=1`)).status).toBe(404)
    expect((await fetch(`${server.url}/no/other/path`)).status).toBe(404)
    expect((await fetch(`${server.url}/v1/chat/completions`)).status).toBe(405)
    await expect(client.chat.completions.create({ model: "nope", messages: [{ role: "user", content: "x" }] }))
      .rejects.toMatchObject({ status: 404 })

    const { families, text } = await parsed(server.url)
    const model = { model: "stories260K" }
    const sum = (pick: (u: { prompt_tokens: number; completion_tokens: number }) => number) =>
      usages.reduce((n, u) => n + pick(u), 0)
    expect(value(families, "shimmy_prompt_tokens_total", model)).toBe(sum((u) => u.prompt_tokens))
    expect(value(families, "shimmy_generated_tokens_total", model)).toBe(sum((u) => u.completion_tokens))
    expect(value(families, "shimmy_generations_total", { ...model, finish_reason: "length" })).toBe(3)
    // an unknown model made no series
    expect(text).not.toContain(`model="nope"`)

    const ttft = buckets(families, "shimmy_time_to_first_token_seconds")
    expect(ttft["+Inf"]).toBe(3)
    // cumulative buckets never go down (an object's integer keys come first: sorted by bound here)
    const counts = Object.entries(ttft).sort(([a], [b]) => Number(a) - Number(b)).map(([, n]) => n)
    expect(counts.length).toBeGreaterThan(5)
    expect(counts).toEqual([...counts].sort((a, b) => a - b))
    // every generated token after the first is a gap: 6 + 8 + 4
    expect(buckets(families, "shimmy_inter_token_latency_seconds")["+Inf"]).toBe(
      sum((u) => u.completion_tokens) - 3
    )
    expect(buckets(families, "shimmy_generation_duration_seconds")["+Inf"]).toBe(3)

    const requests = (labels: Record<string, string>) => value(families, "shimmy_http_requests_total", labels)
    expect(requests({ route: "/v1/chat/completions", method: "POST", status: "200" })).toBe(2)
    expect(requests({ route: "/v1/chat/completions", method: "POST", status: "404" })).toBe(1)
    expect(requests({ route: "/v1/chat/completions", method: "GET", status: "405" })).toBe(1)
    expect(requests({ route: "/api/generate", method: "POST", status: "200" })).toBe(1)
    // both unknown paths under one label: the raw URL never becomes a label
    expect(requests({ route: "unmatched", method: "GET", status: "404" })).toBe(2)
    expect(text).not.toContain("/no/such/path")
    // the first scrape is counted too, once it was answered
    expect(requests({ route: "/metrics", method: "GET", status: "200" })).toBe(1)
    expect(countOf(text, "shimmy_http_request_duration_seconds", `route="/v1/chat/completions"`)).toBe(4)

    // the model is loaded now: its gauges and its load
    expect(value(families, "shimmy_models_loaded")).toBe(1)
    expect(value(families, "shimmy_model_loaded", model)).toBe(1)
    expect(value(families, "shimmy_sequences", model)).toBe(2)
    expect(value(families, "shimmy_sequences_busy", model)).toBe(0)
    expect(value(families, "shimmy_queue_depth", model)).toBe(0)
    expect(value(families, "shimmy_model_load_seconds", model)).toBeGreaterThan(0)
    expect(value(families, "shimmy_model_loads_total", model)).toBe(1)
    expect(value(families, "shimmy_decodes_total", model)).toBeGreaterThan(0)
    // a sequence reuses the prompt prefix it already holds, and a last sampled token is never decoded
    const decoded = value(families, "shimmy_decoded_tokens_total", model)!
    expect(decoded).toBeGreaterThan(sum((u) => u.completion_tokens))
    expect(decoded).toBeLessThanOrEqual(sum((u) => u.prompt_tokens + u.completion_tokens))
  })
})

/** A stream read up to its first event and then held: its sequence stays busy until aborted. */
const hold = async (url: string, prompt: string) => {
  const controller = new AbortController()
  const response = fetch(`${url}/api/generate`, {
    method: "POST",
    body: JSON.stringify({ model: "llama-2-tiny-random", prompt, max_tokens: 100_000, stream: true }),
    signal: controller.signal
  })
  return {
    controller,
    started: response.then(async (r) => {
      expect(r.status).toBe(200)
      await r.body!.getReader().read()
    })
  }
}

const until = async (check: () => Promise<boolean>, what: string) => {
  const deadline = Date.now() + 20_000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

describe("GET /metrics: gauges while requests are held", () => {
  let server: Server
  beforeAll(async () => {
    server = await startServer({ parallel: 1, maxQueue: 4, contextSize: 100_000 })
  })
  afterAll(() => server.close())

  it("a busy sequence and a queued request show, and go when the clients leave", async () => {
    const model = { model: "llama-2-tiny-random" }
    const first = await hold(server.url, "One")
    await first.started
    // the second waits for the one sequence: its answer has not started
    const second = await hold(server.url, "Two")
    second.started.catch(() => undefined)
    const gauges = async () => {
      const { families } = await parsed(server.url)
      return {
        busy: value(families, "shimmy_sequences_busy", model),
        queued: value(families, "shimmy_queue_depth", model)
      }
    }
    await until(async () => (await gauges()).queued === 1, "a queued request")
    expect(await gauges()).toEqual({ busy: 1, queued: 1 })
    // the queued one leaves first: it never started generating, so only the first is unfinished
    second.controller.abort()
    await until(async () => (await gauges()).queued === 0, "the queued request to leave")
    first.controller.abort()
    await until(async () => {
      const now = await gauges()
      return now.busy === 0 && now.queued === 0
    }, "the sequence to be free")
    expect(await gauges()).toEqual({ busy: 0, queued: 0 })
    const { families } = await parsed(server.url)
    expect(value(families, "shimmy_generations_total", { ...model, finish_reason: "unfinished" })).toBe(1)
    expect(family(families, "shimmy_generations_total").metrics).toHaveLength(1)
    // a generation that never finished reports no usage
    expect(family(families, "shimmy_generated_tokens_total").metrics).toEqual([])
    expect(buckets(families, "shimmy_time_to_first_token_seconds")["+Inf"]).toBe(1)
  })

  it("a request whose client leaves before the answer counts as 499", async () => {
    const closed = async () => {
      const { families } = await parsed(server.url)
      return value(families, "shimmy_http_requests_total", { route: "/api/generate", status: "499" })
    }
    // the queued stream of the test before left before its answer began
    await until(async () => (await closed()) === 1, "the first 499")
    const controller = new AbortController()
    const request = fetch(`${server.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: "llama-2-tiny-random", prompt: "Long", max_tokens: 100_000 }),
      signal: controller.signal
    }).catch((e: unknown) => e)
    await until(async () => {
      const { families } = await parsed(server.url)
      return value(families, "shimmy_sequences_busy", { model: "llama-2-tiny-random" }) === 1
    }, "the generation to start")
    controller.abort()
    expect(await request).toBeInstanceOf(Error)
    await until(async () => (await closed()) === 2, "the 499")
    const { families } = await parsed(server.url)
    // the held stream of the test before was answered (200) before its client left
    expect(value(families, "shimmy_http_requests_total", { route: "/api/generate", status: "200" })).toBe(1)
  })
})

describe("GET /metrics behind the API key", () => {
  const KEY = "metrics-secret"
  let server: Server
  beforeAll(async () => {
    server = await startServer({}, { apiKey: Option.some(Redacted.make(KEY)) })
  })
  afterAll(() => server.close())

  it("needs the key, as a bearer token (Prometheus' authorization credentials)", async () => {
    const refused = await scrape(server.url)
    expect(refused.status).toBe(401)
    expect(JSON.parse(refused.text)).toMatchObject({ error: { code: "unauthorized" } })
    const wrong = await scrape(server.url, { headers: { authorization: "Bearer nope" } })
    expect(wrong.status).toBe(401)
    const scraped = await scrape(server.url, { headers: { authorization: `Bearer ${KEY}` } })
    expect(scraped.status).toBe(200)
    const families = parsePrometheus(scraped.text)
    // the refusals were counted, under their route
    expect(value(families, "shimmy_http_requests_total", { route: "/metrics", status: "401" })).toBe(2)
  })
})
