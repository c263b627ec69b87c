/**
 * Splits a chat model's streamed output into answer text, thought and tool calls, in the syntax
 * of its chat template. Pure and incremental: fed text as it is generated, it emits what is
 * certain so far and holds back only what could still become a marker.
 *
 * Decisions:
 * - a call is emitted once its text is complete (its suffix seen) and its arguments parse and
 *   validate; `validate` returns the arguments as JSON text, or nothing for invalid ones
 * - a malformed or invalid first call is kept as text (the model wrote something call-like that
 *   is not a call), and no further calls are looked for in that output
 * - once a call was made, the turn is a tool-call turn: whatever follows the calls that is not a
 *   further call ends it (`done`), and is dropped
 * - markers match loosely: whitespace in a marker may be absent or different in the output, and
 *   JSON punctuation may be surrounded by whitespace (`{"name":"f"` matches `{"name": "`)
 */

/** How a template writes calls: `sectionPrefix (callPrefix name paramsPrefix json callSuffix) (betweenCalls ...)* sectionSuffix`. */
export interface ToolSyntax {
  readonly sectionPrefix: string
  readonly callPrefix: string
  readonly paramsPrefix: string
  readonly callSuffix: string
  readonly betweenCalls: string
  readonly sectionSuffix: string
  /** whether the template has a syntax for several calls in one turn */
  readonly parallel: boolean
}

/** How a template delimits a thought. */
export interface ThoughtSyntax {
  readonly prefix: string
  readonly suffix: string
  /** what opens the answer after a thought (harmony's final channel), dropped from the text */
  readonly answerPrefix?: string | undefined
}

export type ParsedEvent =
  | { readonly _tag: "Text"; readonly text: string }
  | { readonly _tag: "Reasoning"; readonly text: string }
  | { readonly _tag: "Call"; readonly name: string; readonly arguments: string }

export interface ParserOptions {
  /** the call syntax; left out, no calls are looked for */
  readonly calls?: ToolSyntax | undefined
  readonly thought?: ThoughtSyntax | undefined
  /** the output starts inside a thought (the prompt opened it) */
  readonly thinking: boolean
  /** more than one call may be made */
  readonly parallel: boolean
  /** the arguments as JSON text when `name` is a known tool and `args` validate, else undefined */
  readonly validate: (name: string, args: unknown) => string | undefined
}

type State = "thought" | "text" | "call" | "after" | "plain" | "done"

const PUNCTUATION = new Set(["{", "}", "[", "]", ":", ",", "(", ")"])
const isSpace = (c: string | undefined) => c === " " || c === "\n" || c === "\t" || c === "\r"
const MAX_NAME = 256

type Match = { readonly end: number } | "partial" | "no"

/** Matches `literal` at `pos` with the looseness described above. */
export const matchLoose = (buffer: string, pos: number, literal: string): Match => {
  let j = pos
  let flexible = false
  let previous: string | undefined
  for (let i = 0; i < literal.length; i++) {
    const c = literal[i]!
    if (isSpace(c)) {
      flexible = true
      continue
    }
    if (flexible || PUNCTUATION.has(c) || (previous !== undefined && PUNCTUATION.has(previous))) {
      while (j < buffer.length && isSpace(buffer[j])) j++
    }
    if (j >= buffer.length) return "partial"
    if (buffer[j] !== c) return "no"
    j++
    previous = c
    flexible = false
  }
  if (flexible) { while (j < buffer.length && isSpace(buffer[j])) j++ }
  return { end: j }
}

/** The end of the JSON object or array at `pos` (after whitespace), "partial" if it is unfinished. */
const scanJson = (buffer: string, pos: number): Match => {
  let j = pos
  while (j < buffer.length && isSpace(buffer[j])) j++
  if (j >= buffer.length) return "partial"
  if (buffer[j] !== "{") return "no"
  let depth = 0
  let inString = false
  for (; j < buffer.length; j++) {
    const c = buffer[j]
    if (inString) {
      if (c === "\\") j++
      else if (c === "\"") inString = false
    } else if (c === "\"") inString = true
    else if (c === "{" || c === "[") depth++
    else if (c === "}" || c === "]") {
      depth--
      if (depth === 0) return { end: j + 1 }
    }
  }
  return "partial"
}

/** Length of the longest suffix of `text` that is a proper prefix of `marker`. */
const partialSuffix = (text: string, marker: string): number => {
  for (let length = Math.min(marker.length - 1, text.length); length > 0; length--) {
    if (marker.startsWith(text.slice(text.length - length))) return length
  }
  return 0
}

/** The part of a marker that is certain to appear verbatim: its text up to the first whitespace. */
const headOf = (marker: string): string => {
  const trimmed = marker.trim()
  const space = trimmed.search(/\s/)
  return space === -1 ? trimmed : trimmed.slice(0, space)
}

export class ToolCallParser {
  private buffer = ""
  private state: State
  private calls = 0
  private textSeen = false
  private readonly start: string
  private readonly head: string
  private readonly thoughtEnd: string
  private readonly thoughtStart: string

  constructor(private readonly options: ParserOptions) {
    const calls = options.calls
    this.start = calls === undefined
      ? ""
      : calls.sectionPrefix.trim().length > 0
      ? calls.sectionPrefix
      : calls.callPrefix
    this.head = headOf(this.start)
    this.thoughtEnd = options.thought?.suffix.trim() ?? ""
    this.thoughtStart = options.thought?.prefix.trim() ?? ""
    this.state = options.thinking && this.thoughtEnd.length > 0
      ? "thought"
      : this.head.length > 0 || this.thoughtStart.length > 0
      ? "text"
      : "plain"
  }

  /** Whether the turn's calls are complete: generation can stop. */
  get done(): boolean {
    return this.state === "done"
  }

  /** How many calls were emitted. */
  get callCount(): number {
    return this.calls
  }

  push(text: string): ReadonlyArray<ParsedEvent> {
    if (this.state === "done") return []
    this.buffer += text
    const out: Array<ParsedEvent> = []
    this.step(out, false)
    return out
  }

  /** The output has ended: what is held back, as text or thought (an unfinished call stays text). */
  end(): ReadonlyArray<ParsedEvent> {
    const out: Array<ParsedEvent> = []
    this.step(out, true)
    const rest = this.buffer
    this.buffer = ""
    if (rest.length > 0) {
      if (this.state === "thought") out.push({ _tag: "Reasoning", text: rest })
      else if (this.calls === 0 && this.state !== "done") this.text(out, rest)
    }
    this.state = "done"
    return out
  }

  private text(out: Array<ParsedEvent>, text: string) {
    // the answer after a thought starts at its first non-space character
    const emitted = this.textSeen ? text : text.trimStart()
    if (emitted.length === 0) return
    this.textSeen = true
    out.push({ _tag: "Text", text: emitted })
  }

  private step(out: Array<ParsedEvent>, ended: boolean) {
    for (;;) {
      switch (this.state) {
        case "done":
          return
        case "plain":
          this.text(out, this.buffer)
          this.buffer = ""
          return
        case "thought": {
          const at = this.buffer.indexOf(this.thoughtEnd)
          if (at === -1) {
            // whitespace before the end of a thought is not part of it, so it waits too
            const partial = ended ? 0 : partialSuffix(this.buffer, this.thoughtEnd)
            const before = this.buffer.slice(0, this.buffer.length - partial)
            const emit = ended ? before : before.trimEnd()
            if (emit.length > 0) out.push({ _tag: "Reasoning", text: emit })
            this.buffer = this.buffer.slice(emit.length)
            return
          }
          const thought = this.buffer.slice(0, at).trimEnd()
          if (thought.length > 0) out.push({ _tag: "Reasoning", text: thought })
          this.buffer = this.buffer.slice(at + this.thoughtEnd.length)
          this.textSeen = false
          this.state = this.head.length > 0 || (this.options.thought?.answerPrefix ?? "").length > 0 ? "text" : "plain"
          continue
        }
        case "text": {
          const answer = this.options.thought?.answerPrefix
          if (!this.textSeen && answer !== undefined && answer.length > 0) {
            const lead = this.buffer.trimStart()
            const opened = matchLoose(lead, 0, answer)
            if (opened === "partial" && !ended && lead.length > 0) return
            if (typeof opened !== "string") {
              this.buffer = lead.slice(opened.end)
              continue
            }
          }
          // a model may open a thought itself, as the first thing it writes
          if (!this.textSeen && this.thoughtStart.length > 0) {
            const lead = this.buffer.trimStart()
            if (lead.startsWith(this.thoughtStart)) {
              this.buffer = lead.slice(this.thoughtStart.length)
              this.state = "thought"
              continue
            }
            if (lead.length > 0 && this.thoughtStart.startsWith(lead) && !ended) return
          }
          if (this.head.length === 0) {
            if (this.buffer.trim().length > 0) this.state = "plain"
            else if (ended) this.buffer = ""
            else return
            continue
          }
          const at = this.buffer.indexOf(this.head)
          if (at === -1) {
            const keep = ended ? 0 : partialSuffix(this.buffer, this.head)
            this.text(out, this.buffer.slice(0, this.buffer.length - keep))
            this.buffer = this.buffer.slice(this.buffer.length - keep)
            return
          }
          this.text(out, this.buffer.slice(0, at))
          this.buffer = this.buffer.slice(at)
          this.state = "call"
          continue
        }
        case "call":
        case "after": {
          const result = this.state === "call" ? this.call(out, this.calls === 0) : this.next()
          if (result === "partial") return
          if (result === "no") {
            if (this.calls === 0) {
              // not a call after all: the text is the answer, and calls are no longer looked for
              this.state = "plain"
            } else {
              this.buffer = ""
              this.state = "done"
            }
            continue
          }
          continue
        }
      }
    }
  }

  /** After a call: the section's end, or the next call. */
  private next(): "partial" | "no" | "ok" {
    const syntax = this.options.calls!
    if (!this.options.parallel || !syntax.parallel) {
      this.buffer = ""
      this.state = "done"
      return "ok"
    }
    if (syntax.sectionSuffix.trim().length > 0) {
      const end = matchLoose(this.buffer, 0, syntax.sectionSuffix)
      if (end === "partial") return "partial"
      if (end !== "no") {
        this.buffer = ""
        this.state = "done"
        return "ok"
      }
    }
    const between = matchLoose(this.buffer, 0, syntax.betweenCalls)
    if (between === "partial") return "partial"
    if (between === "no") return "no"
    const prefix = matchLoose(this.buffer, between.end, syntax.callPrefix)
    if (prefix === "partial") return "partial"
    if (prefix === "no") return "no"
    this.buffer = this.buffer.slice(between.end)
    this.state = "call"
    return "ok"
  }

  /** One call at the start of the buffer (the section's prefix first, for the first call). */
  private call(out: Array<ParsedEvent>, first: boolean): "partial" | "no" | "ok" {
    const syntax = this.options.calls!
    let pos = 0
    if (first && syntax.sectionPrefix.trim().length > 0) {
      const section = matchLoose(this.buffer, pos, syntax.sectionPrefix)
      if (typeof section === "string") return section
      pos = section.end
    }
    const prefix = matchLoose(this.buffer, pos, syntax.callPrefix)
    if (typeof prefix === "string") return prefix
    pos = prefix.end
    const nameEnd = syntax.paramsPrefix.trim()[0] ?? "{"
    const stop = this.buffer.indexOf(nameEnd, pos)
    if (stop === -1) return this.buffer.length - pos > MAX_NAME ? "no" : "partial"
    const name = this.buffer.slice(pos, stop).trim()
    if (name.length === 0 || name.length > MAX_NAME) return "no"
    const params = matchLoose(this.buffer, stop, syntax.paramsPrefix)
    if (typeof params === "string") return params
    const json = scanJson(this.buffer, params.end)
    if (typeof json === "string") return json
    const suffix = matchLoose(this.buffer, json.end, syntax.callSuffix)
    if (typeof suffix === "string") return suffix
    let args: unknown
    try {
      args = JSON.parse(this.buffer.slice(params.end, json.end))
    } catch {
      return "no"
    }
    const valid = this.options.validate(name, args)
    if (valid === undefined) return "no"
    this.calls++
    this.buffer = this.buffer.slice(suffix.end)
    this.state = "after"
    out.push({ _tag: "Call", name, arguments: valid })
    return "ok"
  }
}
