#!/usr/bin/env node
// Tokens per second of one greedy request through /api/generate (JSON and SSE) and /ws/generate.
// Usage: node scripts/bench-http.mjs [http://127.0.0.1:11435] [model] [max_tokens] [runs]
// Start a server first: SHIMMY_MODEL_PATHS=../shared/models SHIMMY_THREADS=1 node bin/shimmy.js serve
import WebSocket from "ws"

const [url = "http://127.0.0.1:11435", model = "stories260K", maxTokens = "128", runsArg = "5"] = process.argv.slice(2)
const body = { model, prompt: "Once upon a time", max_tokens: Number(maxTokens), temperature: 0 }
const runs = Number(runsArg)

const json = async () => {
  const started = performance.now()
  const response = await fetch(`${url}/api/generate`, { method: "POST", body: JSON.stringify(body) })
  const answer = await response.json()
  return { tokens: answer.usage.completion_tokens, total: performance.now() - started, first: undefined }
}

const sse = async () => {
  const started = performance.now()
  const response = await fetch(`${url}/api/generate`, { method: "POST", body: JSON.stringify({ ...body, stream: true }) })
  const decoder = new TextDecoder()
  let buffer = ""
  let first
  let tokens = 0
  for await (const bytes of response.body) {
    first ??= performance.now() - started
    buffer += decoder.decode(bytes, { stream: true })
    const events = buffer.split("\n\n")
    buffer = events.pop()
    for (const event of events) {
      const data = event.slice("data: ".length)
      if (data === "[DONE]") continue
      const chunk = JSON.parse(data)
      if (chunk.usage) tokens = chunk.usage.completion_tokens
    }
  }
  return { tokens, total: performance.now() - started, first }
}

const ws = () =>
  new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url.replace(/^http/, "ws")}/ws/generate`)
    let started
    let first
    socket.on("open", () => {
      started = performance.now()
      socket.send(JSON.stringify(body))
    })
    socket.on("message", (data) => {
      first ??= performance.now() - started
      const frame = JSON.parse(String(data))
      if (frame.error) reject(new Error(JSON.stringify(frame.error)))
      if (frame.done) {
        const total = performance.now() - started
        socket.close()
        resolve({ tokens: frame.usage.completion_tokens, total, first })
      }
    })
    socket.on("error", reject)
  })

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

await json() // load the model outside the measurement
for (const [name, run] of [["JSON", json], ["SSE", sse], ["WebSocket", ws]]) {
  const results = []
  for (let i = 0; i < runs; i++) results.push(await run())
  const total = median(results.map((r) => r.total))
  const tokens = results[0].tokens
  const first = results[0].first === undefined ? "" : `, first byte ${median(results.map((r) => r.first)).toFixed(1)} ms`
  console.log(`${name.padEnd(9)} ${tokens} tokens in ${total.toFixed(1)} ms (median of ${runs}): ${(tokens / total * 1000).toFixed(0)} tok/s${first}`)
}
