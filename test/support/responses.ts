import type OpenAI from "openai"
import { expect } from "vitest"

type Event = OpenAI.Responses.ResponseStreamEvent

/**
 * The invariants of a Responses stream: numbered from 0; created and in_progress first, the end
 * last; items added in order of their index, each event naming its item's id and coming between
 * its item's added and done; the deltas of each item adding up to its final text or arguments.
 */
export const checkLifecycle = (events: ReadonlyArray<Event>, final: OpenAI.Responses.Response) => {
  expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i))
  expect(events.slice(0, 2).map((e) => e.type)).toEqual(["response.created", "response.in_progress"])
  expect(["response.completed", "response.incomplete"]).toContain(events.at(-1)!.type)
  const added: Array<number> = []
  const done = new Set<number>()
  const pieces = new Map<number, string>()
  for (const event of events.slice(2, -1)) {
    if (!("output_index" in event)) throw new Error(`${event.type} names no item`)
    const index = event.output_index
    const item = final.output[index]!
    if (event.type === "response.output_item.added") {
      expect(index).toBe(added.length)
      added.push(index)
      continue
    }
    expect(added, event.type).toContain(index)
    expect(done.has(index), event.type).toBe(false)
    if ("item_id" in event) expect(event.item_id).toBe("id" in item ? item.id : undefined)
    if (event.type === "response.output_item.done") {
      done.add(index)
      expect(event.item).toMatchObject({ id: "id" in item ? item.id : undefined, type: item.type })
    }
    if (
      event.type === "response.output_text.delta" || event.type === "response.reasoning_text.delta" ||
      event.type === "response.function_call_arguments.delta"
    ) pieces.set(index, (pieces.get(index) ?? "") + event.delta)
  }
  expect(done.size).toBe(final.output.length)
  for (const [index, item] of final.output.entries()) {
    const whole = item.type === "message"
      ? item.content.map((part) => part.type === "output_text" ? part.text : "").join("")
      : item.type === "reasoning"
      ? (item.content ?? []).map((part) => part.text).join("")
      : item.type === "function_call"
      ? item.arguments
      : undefined
    expect(pieces.get(index) ?? "", item.type).toBe(whole)
  }
}
