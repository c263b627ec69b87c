import { type ChildProcess, spawn } from "node:child_process"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach, describe, expect, it } from "vitest"
import type WebSocket from "ws"
import { firstFrame, openSocket } from "./support/clients.js"
import { hermetic } from "./support/env.js"
import { modelsDir } from "./support/server.js"
import { sseData } from "./support/sse.js"

/**
 * `shimmy serve` as users run it (`npm run build` first, as `npm test` does): a child process
 * that gets SIGTERM while answering.
 */

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "bin", "shimmy.js")

interface Served {
  readonly child: ChildProcess
  readonly url: string
  readonly output: () => string
  readonly exited: Promise<number | null>
}

const children: Array<ChildProcess> = []
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL")
})

const serve = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  new Promise<Served>((resolve, reject) => {
    const child = spawn(process.execPath, [
      bin,
      "serve",
      "--bind",
      "127.0.0.1:0",
      "--model-dirs",
      modelsDir,
      "--threads",
      "1",
      ...args
    ], {
      ...hermetic("shutdown", env),
      stdio: ["ignore", "pipe", "pipe"]
    })
    children.push(child)
    let output = ""
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
    const onData = (data: Buffer) => {
      output += data.toString()
      const url = /listening on (http:\/\/\S+)/.exec(output)?.[1]
      if (url !== undefined) {
        child.stdout!.off("data", onData)
        child.stdout!.on("data", (d: Buffer) => (output += d.toString()))
        resolve({ child, url, output: () => output, exited })
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()))
    void exited.then((code) => reject(new Error(`shimmy serve exited (${code}) before listening:\n${output}`)))
  })

const stream = async (url: string, maxTokens: number) => {
  const response = await fetch(`${url}/api/generate`, {
    method: "POST",
    body: JSON.stringify({
      model: "stories260K",
      prompt: "Once upon a time",
      max_tokens: maxTokens,
      temperature: 0,
      stream: true
    })
  })
  expect(response.status).toBe(200)
  const events = sseData(response)
  const first = await events.next()
  expect(first.done).toBe(false)
  const rest = (async () => {
    const all = [first.value as string]
    try {
      for await (const data of events) all.push(data)
    } catch {
      // cut off by the deadline
    }
    return all
  })()
  // wrapped: an async function returning a promise would wait for it
  return { rest }
}

/** A WebSocket opened over a raw TCP socket that then reads nothing and answers no close frame. */
const deafSocket = (url: string) =>
  new Promise<net.Socket>((resolve, reject) => {
    const { hostname, port } = new URL(url)
    const socket = net.connect(Number(port), hostname, () =>
      socket.write(
        "GET /ws/generate HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
      ))
    socket.once(
      "data",
      (d) => (d.toString().startsWith("HTTP/1.1 101") ? resolve(socket) : reject(new Error(d.toString())))
    )
    socket.once("error", reject)
  })

const closeCode = (ws: WebSocket) => new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)))

describe("shimmy serve and SIGTERM", () => {
  it("stops accepting, lets the generations in flight finish, closes WebSockets, unloads, exits 0", async () => {
    const server = await serve(["--shutdown-timeout", "20"])
    const idle = await openSocket(`${server.url.replace(/^http/, "ws")}/ws/generate`)
    const busy = await openSocket(`${server.url.replace(/^http/, "ws")}/ws/generate`)
    const busyFrames: Array<any> = []
    busy.on("message", (data) => busyFrames.push(JSON.parse(data.toString())))
    const busyFirst = firstFrame(busy)
    busy.send(JSON.stringify({ model: "stories260K", prompt: "The dog", max_tokens: 1200, temperature: 0 }))
    await busyFirst
    const streaming = await stream(server.url, 1200)
    const idleClosed = closeCode(idle)
    const busyClosed = closeCode(busy)

    const stopping = performance.now()
    server.child.kill("SIGTERM")
    const events = await streaming.rest
    // still running when the signal came: it went on after it
    expect(performance.now() - stopping).toBeGreaterThan(200)
    expect(events.at(-1)).toBe("[DONE]")
    expect(JSON.parse(events.at(-2)!).choices[0].finish_reason).toBe("length")
    expect(JSON.parse(events.at(-2)!).usage.completion_tokens).toBe(1200)
    expect(busyFrames.at(-1)).toMatchObject({ done: true, usage: { completion_tokens: 1200 } })
    expect(await idleClosed).toBe(1001)
    expect(await busyClosed).toBe(1001)
    // no longer listening
    await expect(fetch(`${server.url}/api/health`)).rejects.toThrow()
    expect(await server.exited).toBe(0)
    expect(server.output()).toContain("shutting down")
  })

  it("at the deadline (SHIMMY_SHUTDOWN_TIMEOUT) every transport gets its last word, and it still exits 0", async () => {
    const server = await serve([], { SHIMMY_SHUTDOWN_TIMEOUT: "300 millis" })
    const long = { model: "stories260K", prompt: "Once upon a time", max_tokens: 2000, temperature: 0 }
    // ~2000 tokens: seconds of work, far past the deadline, on each transport
    const streaming = await stream(server.url, 2000)
    const json = fetch(`${server.url}/v1/completions`, { method: "POST", body: JSON.stringify(long) })
    const socket = await openSocket(`${server.url.replace(/^http/, "ws")}/ws/generate`)
    const frames: Array<any> = []
    socket.on("message", (data) => frames.push(JSON.parse(data.toString())))
    const socketClosed = closeCode(socket)
    const socketFirst = firstFrame(socket)
    socket.send(JSON.stringify(long))
    await socketFirst
    // a WebSocket client that never answers the close handshake must not hold the exit
    const deaf = await deafSocket(server.url)

    const stopping = performance.now()
    server.child.kill("SIGTERM")
    const events = await streaming.rest
    expect(events.join("\n")).not.toContain("finish_reason")
    expect(events.at(-1)).toBe("[DONE]")
    expect(JSON.parse(events.at(-2)!).error.code).toBe("server_shutting_down")
    const answer = await json
    expect(answer.status).toBe(503)
    expect((await answer.json() as any).error).toMatchObject({ code: "server_shutting_down" })
    expect(await socketClosed).toBe(1001)
    expect(frames.at(-1).error.code).toBe("server_shutting_down")
    expect(await server.exited).toBe(0)
    expect(performance.now() - stopping).toBeLessThan(5000)
    deaf.destroy()
  })

  it("exits 0 on SIGINT when idle, promptly", async () => {
    const server = await serve([])
    const stopping = performance.now()
    server.child.kill("SIGINT")
    expect(await server.exited).toBe(0)
    expect(performance.now() - stopping).toBeLessThan(5000)
  })
})
