#!/usr/bin/env node
// Time to first token and tokens/s of a streamed /v1/chat/completions (official SDK and raw fetch)
// versus the same greedy request on /api/generate SSE and /v1/completions SSE.
// Usage: node scripts/bench-openai.mjs [http://127.0.0.1:11435] [model] [max_tokens] [runs]
// Start a server first: SHIMMY_MODEL_PATHS=../shared/models SHIMMY_THREADS=1 node bin/shimmy.js serve
import OpenAI from "openai"

const [url = "http://127.0.0.1:11435", model = "stories260K", maxTokens = "128", runsArg = "7"] = process.argv.slice(2)
const prompt = "Once upon a time"
const max_tokens = Number(maxTokens)
const runs = Number(runsArg)
const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 })

/** Reads an SSE body; `onData` gets each parsed `data:` payload and the time it arrived. */
const readSse = async (response, onData) => {
  const decoder = new TextDecoder()
  let buffer = ""
  for await (const bytes of response.body) {
    const now = performance.now()
    buffer += decoder.decode(bytes, { stream: true })
    const events = buffer.split("\n\n")
    buffer = events.pop()
    for (const event of events) {
      const data = event.slice("data: ".length)
      if (data !== "[DONE]") onData(JSON.parse(data), now)
    }
  }
}

/** A streamed request measured from send to first text, to last text, with the server's token count. */
const measure = async (send, textOf, usageOf) => {
  const started = performance.now()
  let first
  let last
  let tokens = 0
  await send((chunk, now) => {
    if ((textOf(chunk) ?? "").length > 0) {
      first ??= now - started
      last = now - started
    }
    const usage = usageOf(chunk)
    if (usage) tokens = usage.completion_tokens
  })
  return { first, last, tokens }
}

const post = (path, body) => (onData) =>
  fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    .then((r) => readSse(r, onData))

const variants = {
  "/api/generate SSE": () =>
    measure(post("/api/generate", { model, prompt, max_tokens, temperature: 0, stream: true }), (c) => c.choices?.[0]?.text, (c) => c.usage),
  "/v1/completions SSE": () =>
    measure(
      post("/v1/completions", { model, prompt, max_tokens, temperature: 0, stream: true, stream_options: { include_usage: true } }),
      (c) => c.choices?.[0]?.text,
      (c) => c.usage
    ),
  "/v1/chat/completions SSE (fetch)": () =>
    measure(
      post("/v1/chat/completions", {
        model,
        messages: [{ role: "user", content: prompt }],
        max_tokens,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true }
      }),
      (c) => c.choices?.[0]?.delta?.content,
      (c) => c.usage
    ),
  "/v1/chat/completions SSE (openai SDK)": () =>
    measure(async (onData) => {
      const stream = await openai.chat.completions.create({
        model,
        messages: [{ role: "user", content: prompt }],
        max_tokens,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true }
      })
      for await (const chunk of stream) onData(chunk, performance.now())
    }, (c) => c.choices?.[0]?.delta?.content, (c) => c.usage)
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

await variants["/api/generate SSE"]() // load the model outside the measurement
console.log(`${model}, ${max_tokens} max tokens, greedy, median of ${runs} runs`)
for (const [name, run] of Object.entries(variants)) {
  const results = []
  for (let i = 0; i < runs; i++) results.push(await run())
  const first = median(results.map((r) => r.first))
  const last = median(results.map((r) => r.last))
  const tokens = results[0].tokens
  // decode rate after the first token: the prompt's cost is in the time to first token
  const rate = (tokens - 1) / ((last - first) / 1000)
  console.log(
    `${name.padEnd(38)} first token ${first.toFixed(1).padStart(6)} ms, ${String(tokens).padStart(4)} tokens, ` +
      `${rate.toFixed(0).padStart(5)} tok/s after it, ${(tokens / (last / 1000)).toFixed(0).padStart(5)} tok/s overall`
  )
}
