import { Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type WebSocket from "ws"
import * as OpenAi from "../../src/domain/OpenAi.js"
import * as SeedApi from "../../src/domain/SeedApi.js"
import { openSocket, postJson, postSse, wsAnswer } from "../support/clients.js"
import { type RunningServer, startServer } from "../support/server.js"

/**
 * The wire Schemas describe what the server really sends (the API description is generated from
 * them): every answer of both dialects, JSON, stream chunks, socket frames and error bodies,
 * decodes with its Schema, strictly (no field the Schema does not know).
 */

let server: RunningServer & { readonly close: () => Promise<void> }
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

const strictly = <A, I>(schema: Schema.Schema<A, I>, value: unknown) =>
  Schema.decodeUnknownSync(schema, { onExcessProperty: "error" })(value)

const generate = { model: "stories260K", prompt: "Once upon a time", max_tokens: 6, temperature: 0 }
const chat = { model: "stories260K", messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 6 }

describe("wire Schemas", () => {
  it("the seed API's answers, chunks, frames and errors", async () => {
    const json = await postJson(`${server.url}/api/generate`, generate)
    strictly(SeedApi.GenerateResponse, json.body)
    const sse = await postSse(`${server.url}/api/generate`, { ...generate, stream: true })
    expect(sse.events.at(-1)).toBe("[DONE]")
    for (const data of sse.events.slice(0, -1)) strictly(SeedApi.GenerateChunk, JSON.parse(data))
    strictly(SeedApi.ModelsResponse, await (await fetch(`${server.url}/api/models`)).json())
    strictly(SeedApi.HealthResponse, await (await fetch(`${server.url}/api/health`)).json())
    strictly(SeedApi.ErrorBody, (await postJson(`${server.url}/api/generate`, { model: "nope", prompt: "x" })).body)
    const ws: WebSocket = await openSocket(`${server.wsUrl}/ws/generate`)
    const frames = [...(await wsAnswer(ws, generate)), ...(await wsAnswer(ws, { model: "nope", prompt: "x" }))]
    ws.close()
    for (const frame of frames) strictly(SeedApi.SocketFrame, frame)
    expect(frames.some((f) => "error" in f)).toBe(true)
  })

  it("OpenAI's objects, chunks, models, embeddings and errors", async () => {
    strictly(OpenAi.ChatCompletion, (await postJson(`${server.url}/v1/chat/completions`, chat)).body)
    const chunks = await postSse(`${server.url}/v1/chat/completions`, {
      ...chat,
      stream: true,
      stream_options: { include_usage: true }
    })
    for (const data of chunks.events.slice(0, -1)) strictly(OpenAi.ChatCompletionChunk, JSON.parse(data))
    strictly(OpenAi.Completion, (await postJson(`${server.url}/v1/completions`, generate)).body)
    const pieces = await postSse(`${server.url}/v1/completions`, { ...generate, stream: true })
    for (const data of pieces.events.slice(0, -1)) strictly(OpenAi.Completion, JSON.parse(data))
    strictly(OpenAi.ModelList, await (await fetch(`${server.url}/v1/models`)).json())
    strictly(OpenAi.Model, await (await fetch(`${server.url}/v1/models/stories260K`)).json())
    for (const encoding_format of ["float", "base64"]) {
      const vectors = await postJson(`${server.url}/v1/embeddings`, {
        model: "stories260K",
        input: ["a", "b"],
        encoding_format
      })
      strictly(OpenAi.EmbeddingList, vectors.body)
    }
    strictly(OpenAi.ErrorBody, (await postJson(`${server.url}/v1/chat/completions`, { ...chat, model: "nope" })).body)
  })
})
