import type { GenerationEvent } from "../../domain/Generation.js"
import type {
  ItemStatus,
  MessageOut,
  OutputItem,
  OutputText,
  ReasoningOut,
  ResponseObject,
  StreamEvent
} from "../../domain/ResponseObject.js"
import type { ErrorReply } from "../Reply.js"
import { type Envelope, errorOf, newId, responseOf } from "./Render.js"

/**
 * One generation as a Responses `output`, built event by event: the engine's thought becomes a
 * reasoning item, its text a message item, each tool call a function_call item, in the order they
 * came. Every step returns the stream events that tell it (numbered from 0 across the stream),
 * and the JSON answer is the same builder's final response, so both renderings always agree.
 */

type Unnumbered<E> = E extends unknown ? Omit<E, "sequence_number"> : never

/** The item text is being written into: a message's output_text or a reasoning item's reasoning_text. */
interface Open {
  readonly kind: "message" | "reasoning"
  readonly index: number
  readonly id: string
  text: string
}

export interface OutputBuilder {
  /** response.created and response.in_progress */
  readonly opening: () => ReadonlyArray<StreamEvent>
  readonly frames: (event: GenerationEvent) => ReadonlyArray<StreamEvent>
  /** a failure after the start: response.failed, with what was produced so far */
  readonly failure: (reply: ErrorReply) => ReadonlyArray<StreamEvent>
  /** the finished response, once the generation's Done event was seen */
  readonly final: () => ResponseObject | undefined
}

const outputText = (text: string): OutputText => ({ type: "output_text", text, annotations: [], logprobs: [] })

const itemOf = (open: Open, status: ItemStatus): MessageOut | ReasoningOut =>
  open.kind === "message"
    ? { type: "message", id: open.id, status, role: "assistant", content: [outputText(open.text)] }
    : { type: "reasoning", id: open.id, status, summary: [], content: [{ type: "reasoning_text", text: open.text }] }

export const outputBuilder = (envelope: Envelope): OutputBuilder => {
  let sequence = 0
  const output: Array<OutputItem> = []
  let open: Open | undefined
  let reasoningTokens = 0
  let final: ResponseObject | undefined

  const numbered = (events: ReadonlyArray<Unnumbered<StreamEvent>>): ReadonlyArray<StreamEvent> =>
    events.map((event) => ({ ...event, sequence_number: sequence++ }) as StreamEvent)

  const at = (o: Open) => ({ item_id: o.id, output_index: o.index, content_index: 0 })

  const begin = (kind: Open["kind"]): Array<Unnumbered<StreamEvent>> => {
    const o: Open = { kind, index: output.length, id: newId(kind === "message" ? "msg" : "rs"), text: "" }
    open = o
    const item = itemOf(o, "in_progress")
    output.push(item)
    return [
      { type: "response.output_item.added", output_index: o.index, item: { ...item, content: [] } },
      {
        type: "response.content_part.added",
        ...at(o),
        part: kind === "message" ? outputText("") : { type: "reasoning_text", text: "" }
      }
    ]
  }

  const close = (status: ItemStatus): Array<Unnumbered<StreamEvent>> => {
    const o = open
    if (o === undefined) return []
    open = undefined
    const item = itemOf(o, status)
    output[o.index] = item
    return [
      o.kind === "message"
        ? { type: "response.output_text.done", ...at(o), text: o.text, logprobs: [] }
        : { type: "response.reasoning_text.done", ...at(o), text: o.text },
      { type: "response.content_part.done", ...at(o), part: item.content[0]! },
      { type: "response.output_item.done", output_index: o.index, item }
    ]
  }

  /** Text into the open item of its kind, opening one (and closing the other) first if needed. */
  const write = (kind: Open["kind"], text: string): Array<Unnumbered<StreamEvent>> => {
    const opened = open?.kind === kind ? [] : [...close("completed"), ...begin(kind)]
    const o = open!
    o.text += text
    return [
      ...opened,
      kind === "message"
        ? { type: "response.output_text.delta", ...at(o), delta: text, logprobs: [] }
        : { type: "response.reasoning_text.delta", ...at(o), delta: text }
    ]
  }

  const current = (status: ResponseObject["status"]): ResponseObject =>
    responseOf(envelope, { status, output: [...output], usage: null, error: null })

  return {
    opening: () =>
      numbered([
        { type: "response.created", response: current("in_progress") },
        { type: "response.in_progress", response: current("in_progress") }
      ]),
    frames: (event) => {
      switch (event._tag) {
        case "Reasoning":
          reasoningTokens += event.tokens
          return numbered(write("reasoning", event.text))
        case "Token":
          return numbered(write("message", event.text))
        case "ToolCall": {
          const index = output.length
          const id = newId("fc")
          const call = { type: "function_call", id, call_id: event.call.id, name: event.call.name } as const
          output.push({ ...call, arguments: event.call.arguments, status: "completed" })
          const where = { item_id: id, output_index: index }
          return numbered([
            ...close("completed"),
            {
              type: "response.output_item.added",
              output_index: index,
              item: { ...call, arguments: "", status: "in_progress" }
            },
            // the engine hands over a call once it is whole and validated: its arguments in one piece
            { type: "response.function_call_arguments.delta", ...where, delta: event.call.arguments },
            {
              type: "response.function_call_arguments.done",
              ...where,
              name: event.call.name,
              arguments: event.call.arguments
            },
            { type: "response.output_item.done", output_index: index, item: output[index]! }
          ])
        }
        case "Done": {
          const truncated = event.finishReason === "length"
          const closing = close(truncated ? "incomplete" : "completed")
          // every answer has a message (output_text is ""), unless the model only called tools
          const message = output.some((item) => item.type !== "reasoning")
            ? []
            : [...begin("message"), ...close(truncated ? "incomplete" : "completed")]
          const status = truncated ? "incomplete" : "completed"
          const usage = event.usage
          final = responseOf(envelope, {
            status,
            output: [...output],
            usage: {
              input_tokens: usage.prompt_tokens,
              input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
              output_tokens: usage.completion_tokens,
              output_tokens_details: { reasoning_tokens: reasoningTokens },
              total_tokens: usage.total_tokens
            },
            error: null
          })
          return numbered([
            ...closing,
            ...message,
            { type: truncated ? "response.incomplete" : "response.completed", response: final }
          ])
        }
      }
    },
    failure: (reply) => {
      if (open !== undefined) output[open.index] = itemOf(open, "incomplete")
      open = undefined
      return numbered([{
        type: "response.failed",
        response: responseOf(envelope, { status: "failed", output: [...output], usage: null, error: errorOf(reply) })
      }])
    },
    final: () => final
  }
}
