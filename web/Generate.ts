import { events, request } from "./Api.js"
import type { Message, Settings, Stats, ToolCallView } from "./Store.js"

/**
 * One answer from the server, streamed: chat (`/v1/chat/completions`), raw completion
 * (`/v1/completions`) or chat constrained to a JSON schema (`response_format`). The caller sees
 * each piece as it arrives and the usage and timings at the end; aborting the signal cancels the
 * request, and the server stops generating when the connection closes.
 */

export interface Progress {
  readonly content: string
  readonly reasoning: string
  readonly toolCalls: ReadonlyArray<ToolCallView>
}

/** Settings that are not valid, said in words for the person to fix. */
export class InvalidSettings extends Error {}

const number = (label: string, text: string, integer: boolean): number | undefined => {
  if (text.trim() === "") return undefined
  const value = Number(text)
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new InvalidSettings(`${label} must be ${integer ? "a whole number" : "a number"}`)
  }
  return value
}

const json = (label: string, text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new InvalidSettings(`${label} is not valid JSON: ${(e as Error).message}`)
  }
}

const sampling = (settings: Settings) => {
  const fields: Record<string, number> = {}
  const put = (name: string, value: number | undefined) => {
    if (value !== undefined) fields[name] = value
  }
  put("temperature", number("Temperature", settings.temperature, false))
  put("top_p", number("Top p", settings.topP, false))
  put("max_tokens", number("Max tokens", settings.maxTokens, true))
  put("seed", number("Seed", settings.seed, true))
  return fields
}

/** The request body for the answer after `history` (the last message is the person's). */
export const bodyFor = (model: string, settings: Settings, history: ReadonlyArray<Message>) => {
  const common = { model, stream: true, stream_options: { include_usage: true }, ...sampling(settings) }
  const last = history[history.length - 1]
  if (settings.mode === "completion") {
    return { path: "/v1/completions", body: { ...common, prompt: last?.content ?? "" } }
  }
  const messages = [
    ...(settings.system.trim() !== "" ? [{ role: "system", content: settings.system }] : []),
    // raw completions are not turns of a chat
    ...history.filter((m) => m.mode !== "completion" && m.error === undefined).map((m) => ({
      role: m.role,
      content: m.content
    }))
  ]
  // tools belong to chat mode (its fields are hidden in the others)
  const tools = settings.mode === "chat" && settings.tools.trim() !== "" ? json("Tools", settings.tools) : undefined
  if (tools !== undefined && !Array.isArray(tools)) throw new InvalidSettings("Tools must be a JSON array")
  const format = settings.mode === "json"
    ? {
      response_format: {
        type: "json_schema",
        json_schema: { name: "answer", schema: json("JSON schema", settings.schema), strict: true }
      }
    }
    : {}
  return {
    path: "/v1/chat/completions",
    body: {
      ...common,
      messages,
      ...format,
      ...(tools !== undefined ? { tools, tool_choice: settings.toolChoice } : {})
    }
  }
}

interface Chunk {
  readonly error?: { readonly message?: string }
  readonly usage?: { readonly prompt_tokens: number; readonly completion_tokens: number } | null
  readonly choices?: ReadonlyArray<{
    readonly text?: string
    readonly finish_reason?: string | null
    readonly delta?: {
      readonly content?: string | null
      readonly reasoning_content?: string | null
      readonly tool_calls?: ReadonlyArray<
        { readonly index: number; readonly function?: { readonly name?: string; readonly arguments?: string } }
      >
    }
  }>
}

/** Streams one answer; resolves to its stats once it ends (rejects with the stream's error). */
export const generate = async (
  target: { readonly path: string; readonly body: unknown },
  signal: AbortSignal,
  onProgress: (progress: Progress) => void
): Promise<Stats> => {
  const started = performance.now()
  let first: number | undefined
  let content = ""
  let reasoning = ""
  const calls: Array<{ name: string; arguments: string }> = []
  let finishReason: string | undefined
  let usage: Chunk["usage"]
  const response = await request(target.path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(target.body),
    signal
  })
  for await (const item of events(response)) {
    const chunk = item as Chunk
    if (chunk.error !== undefined) throw new Error(chunk.error.message ?? "the server reported an error")
    if (chunk.usage) usage = chunk.usage
    for (const choice of chunk.choices ?? []) {
      const before = content.length + reasoning.length + calls.length
      content += choice.text ?? choice.delta?.content ?? ""
      reasoning += choice.delta?.reasoning_content ?? ""
      for (const call of choice.delta?.tool_calls ?? []) {
        const slot = calls[call.index] ?? (calls[call.index] = { name: "", arguments: "" })
        slot.name += call.function?.name ?? ""
        slot.arguments += call.function?.arguments ?? ""
      }
      if (choice.finish_reason) finishReason = choice.finish_reason
      if (content.length + reasoning.length + calls.length > before || (choice.delta?.tool_calls?.length ?? 0) > 0) {
        first ??= performance.now()
        onProgress({ content, reasoning, toolCalls: calls.filter((c) => c !== undefined) })
      }
    }
  }
  const ended = performance.now()
  const generating = first !== undefined ? (ended - first) / 1000 : 0
  return {
    ...(usage ? { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens } : {}),
    ...(first !== undefined ? { firstTokenMs: Math.round(first - started) } : {}),
    ...(usage && generating > 0 && usage.completion_tokens > 1
      // the first token's time is the prompt's; the rate is of the tokens after it
      ? { tokensPerSecond: (usage.completion_tokens - 1) / generating }
      : {}),
    ...(finishReason !== undefined ? { finishReason } : {})
  }
}
