// A/B of servers on one workload: K clients, each sending N greedy requests of TOKENS tokens to
// /api/generate (JSON or SSE), or over one /ws/generate socket each (ws), with its own prompt;
// prints the generated tokens/s of all of them.
// Run it against two servers in alternating rounds (BENCHMARKS.md, "second run"):
//   node scripts/ab-generate.mjs PORT MODEL json|sse|ws K [N=2] [TOKENS=128]
import WebSocket from "ws"

const [port, model, mode, k, n, tokens] = [
  process.argv[2],
  process.argv[3],
  process.argv[4],
  Number(process.argv[5]),
  Number(process.argv[6] ?? 2),
  Number(process.argv[7] ?? 128)
]
let toks = 0
const one = async (c, i) => {
  const r = await fetch(`http://127.0.0.1:${port}/api/generate`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model,
      prompt: `${String(c * 100 + i).padStart(4, "0")} Once upon a time`,
      max_tokens: tokens,
      temperature: 0,
      stream: mode === "sse"
    })
  })
  const t = await r.text()
  toks += mode === "sse" ? (t.match(/"text"/g) ?? []).length - 1 : JSON.parse(t).usage.completion_tokens
}
const body = (c, i) =>
  JSON.stringify({
    model,
    prompt: `${String(c * 100 + i).padStart(4, "0")} Once upon a time`,
    max_tokens: tokens,
    temperature: 0
  })
// one socket a client, its requests one after another
const socket = (c) =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/generate`)
    let i = 0
    ws.on("open", () => ws.send(body(c, i)))
    ws.on("message", (data) => {
      const frame = JSON.parse(String(data))
      if (frame.token !== undefined) toks++
      else if (frame.error !== undefined) reject(new Error(JSON.stringify(frame.error)))
      else if (frame.done === true && ++i < n) ws.send(body(c, i))
      else if (frame.done === true) {
        ws.close()
        resolve()
      }
    })
    ws.on("error", reject)
  })
const t0 = performance.now()
await Promise.all(Array.from({ length: k }, async (_, c) => {
  if (mode === "ws") return socket(c)
  for (let i = 0; i < n; i++) await one(c, i)
}))
console.log((toks / (performance.now() - t0) * 1000).toFixed(0))
