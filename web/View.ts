import { render } from "./Markdown.js"
import type { Message } from "./Store.js"

/**
 * How one message looks: the person's text as typed, an answer's text as Markdown (a JSON-schema
 * answer as code), its reasoning and tool calls folded away, and its numbers below it. All model
 * text goes in as text nodes (Markdown.ts), never as HTML.
 */

export const byId = <E extends HTMLElement>(id: string): E => {
  const found = document.getElementById(id)
  if (found === null) throw new Error(`the page has no #${id}`)
  return found as E
}

export const element = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { readonly className?: string; readonly text?: string } = {},
  children: ReadonlyArray<Node> = []
): HTMLElementTagNameMap[K] => {
  const node = document.createElement(tag)
  if (props.className !== undefined) node.className = props.className
  if (props.text !== undefined) node.textContent = props.text
  node.append(...children)
  return node
}

const pretty = (text: string): string => {
  try {
    return JSON.stringify(JSON.parse(text), null, 2)
  } catch {
    // still streaming, or not JSON after all: shown as it came
    return text
  }
}

const statsLine = (message: Message): string => {
  const s = message.stats ?? {}
  const parts: Array<string> = []
  if (message.stopped === true) parts.push("stopped")
  if (s.completionTokens !== undefined) parts.push(`${s.completionTokens} tokens`)
  if (s.tokensPerSecond !== undefined) parts.push(`${s.tokensPerSecond.toFixed(1)} tokens/s`)
  if (s.firstTokenMs !== undefined) parts.push(`first token ${s.firstTokenMs} ms`)
  if (s.finishReason !== undefined) parts.push(`finish: ${s.finishReason}`)
  return parts.join(" · ")
}

/** The state a message is in, for the page's look (and for tests that wait on it). */
export type MessageState = "streaming" | "done" | "stopped" | "error"

/** Draws `message` into `article` (a new one when none is given), replacing what it showed. */
export const drawMessage = (
  message: Message,
  state: MessageState,
  article: HTMLElement = element("article")
): HTMLElement => {
  // a redraw while streaming keeps what the person unfolded
  const opened = (selector: string) => article.querySelector<HTMLDetailsElement>(selector)?.open === true
  const reasoningOpen = opened("details.reasoning")
  const callsOpen = opened("details.tool-calls")
  article.className = `message ${message.role}`
  article.dataset["state"] = state
  article.setAttribute("aria-label", message.role === "user" ? "You" : "Assistant")
  article.setAttribute("aria-busy", String(state === "streaming"))
  const parts: Array<Node> = [element("p", { className: "role", text: message.role === "user" ? "You" : "Assistant" })]
  if (message.reasoning !== undefined && message.reasoning.length > 0) {
    const details = element("details", { className: "reasoning" }, [
      element("summary", { text: "Reasoning" }),
      element("div", { className: "reasoning-body" }, [render(message.reasoning)])
    ])
    details.open = reasoningOpen
    parts.push(details)
  }
  const body = element("div", { className: "body" })
  if (message.role === "user") {
    for (const line of message.content.split("\n")) body.append(element("p", { text: line }))
  } else if (message.mode === "json") {
    body.append(element("pre", {}, [element("code", { className: "language-json", text: pretty(message.content) })]))
  } else {
    body.append(render(message.content))
  }
  // a request refused before any text has nothing to show but its error
  if (!(state === "error" && message.content === "")) parts.push(body)
  const calls = message.toolCalls ?? []
  if (calls.length > 0) {
    const details = element("details", { className: "tool-calls" }, [
      element("summary", { text: `Tool calls (${calls.length})` }),
      element(
        "ul",
        {},
        calls.map((call) =>
          element("li", {}, [
            element("code", { className: "tool-name", text: call.name }),
            element("pre", { className: "tool-arguments", text: pretty(call.arguments) })
          ])
        )
      )
    ])
    details.open = callsOpen
    parts.push(details)
  }
  if (message.error !== undefined) parts.push(element("p", { className: "failed", text: message.error }))
  const stats = statsLine(message)
  if (stats.length > 0) parts.push(element("p", { className: "stats", text: stats }))
  article.replaceChildren(...parts)
  return article
}
