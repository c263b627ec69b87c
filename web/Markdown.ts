/**
 * A small Markdown renderer for untrusted text (model output): it builds DOM nodes and puts every
 * piece of text in with `textContent`/text nodes, so no input can create an element it does not
 * choose. It knows fenced code blocks, headings, lists, quotes, rules, paragraphs, inline code,
 * bold, italic and links (http and https only, opened with `rel="noopener noreferrer"`).
 */

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, children: ReadonlyArray<Node> = []) => {
  const node = document.createElement(tag)
  node.append(...children)
  return node
}

/** A link's target, only where it is http(s): `javascript:`, `data:` and relative URLs stay text. */
const safeUrl = (raw: string): string | undefined => {
  try {
    const url = new URL(raw)
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : undefined
  } catch {
    return undefined
  }
}

interface InlineRule {
  readonly pattern: RegExp
  readonly render: (match: RegExpExecArray) => Node
}

const inlineRules: ReadonlyArray<InlineRule> = [
  { pattern: /`([^`]+)`/, render: (m) => el("code", [document.createTextNode(m[1]!)]) },
  {
    pattern: /\[([^\]]+)\]\(([^)\s]+)\)/,
    render: (m) => {
      const href = safeUrl(m[2]!)
      if (href === undefined) return document.createTextNode(m[0])
      const a = el("a", inline(m[1]!))
      a.href = href
      a.rel = "noopener noreferrer"
      a.target = "_blank"
      return a
    }
  },
  { pattern: /\*\*(\S(?:.*?\S)?)\*\*/, render: (m) => el("strong", inline(m[1]!)) },
  { pattern: /__(\S(?:.*?\S)?)__/, render: (m) => el("strong", inline(m[1]!)) },
  { pattern: /\*(\S(?:[^*]*?\S)?)\*/, render: (m) => el("em", inline(m[1]!)) },
  { pattern: /(?<![\p{L}\p{N}])_(\S(?:[^_]*?\S)?)_(?![\p{L}\p{N}])/u, render: (m) => el("em", inline(m[1]!)) }
]

const MAX_MARKED_LINE = 4_000

/** Inline markup: the earliest match of any rule wins (the first rule on a tie), text in between stays text. */
export const inline = (text: string): Array<Node> => {
  // the rules backtrack: a line longer than any prose (a model repeating `*` for pages) stays text
  if (text.length > MAX_MARKED_LINE) return [document.createTextNode(text)]
  const nodes: Array<Node> = []
  let rest = text
  while (rest.length > 0) {
    let best: { match: RegExpExecArray; rule: InlineRule } | undefined
    for (const rule of inlineRules) {
      const match = rule.pattern.exec(rest)
      if (match !== null && (best === undefined || match.index < best.match.index)) best = { match, rule }
    }
    if (best === undefined) {
      nodes.push(document.createTextNode(rest))
      break
    }
    if (best.match.index > 0) nodes.push(document.createTextNode(rest.slice(0, best.match.index)))
    nodes.push(best.rule.render(best.match))
    rest = rest.slice(best.match.index + best.match[0].length)
  }
  return nodes
}

/** Lines joined with line breaks, each line's inline markup rendered. */
const lines = (texts: ReadonlyArray<string>): Array<Node> =>
  texts.flatMap((line, i) => (i === 0 ? inline(line) : [el("br"), ...inline(line)]))

const FENCE = /^\s*(`{3,}|~{3,})\s*([\w+#.-]*)/
const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/
const BULLET = /^\s*[-*+]\s+(.*)$/
const NUMBERED = /^\s*\d{1,9}[.)]\s+(.*)$/
const QUOTE = /^\s*>\s?(.*)$/
const RULE = /^\s*([-*_])(\s*\1){2,}\s*$/

/** Markdown text as a fragment; text that is being streamed renders too (an open fence runs to the end). */
export const render = (text: string): DocumentFragment => {
  const out = document.createDocumentFragment()
  const all = text.replace(/\r\n?/g, "\n").split("\n")
  let i = 0
  const take = (pattern: RegExp): Array<string> => {
    const taken: Array<string> = []
    for (let m = pattern.exec(all[i] ?? ""); i < all.length && m !== null; m = pattern.exec(all[i] ?? "")) {
      taken.push(m[1]!)
      i++
    }
    return taken
  }
  while (i < all.length) {
    const line = all[i]!
    const fence = FENCE.exec(line)
    if (fence !== null) {
      const body: Array<string> = []
      i++
      while (i < all.length && !all[i]!.trim().startsWith(fence[1]!)) body.push(all[i++]!)
      i++
      const code = el("code", [document.createTextNode(body.join("\n"))])
      if (fence[2]) code.className = `language-${fence[2]}`
      out.append(el("pre", [code]))
      continue
    }
    const heading = HEADING.exec(line)
    if (heading !== null) {
      // the page's own headings are h1 and h2: a model's start below them
      const level = Math.min(6, heading[1]!.length + 2) as 3 | 4 | 5 | 6
      out.append(el(`h${level}`, inline(heading[2]!)))
      i++
      continue
    }
    if (RULE.test(line)) {
      out.append(el("hr"))
      i++
      continue
    }
    if (BULLET.test(line)) {
      out.append(el("ul", take(BULLET).map((item) => el("li", inline(item)))))
      continue
    }
    if (NUMBERED.test(line)) {
      out.append(el("ol", take(NUMBERED).map((item) => el("li", inline(item)))))
      continue
    }
    if (QUOTE.test(line)) {
      out.append(el("blockquote", [el("p", lines(take(QUOTE)))]))
      continue
    }
    if (line.trim() === "") {
      i++
      continue
    }
    const paragraph: Array<string> = []
    while (i < all.length) {
      const next = all[i]!
      if (next.trim() === "" || [FENCE, HEADING, BULLET, NUMBERED, QUOTE, RULE].some((p) => p.test(next))) break
      paragraph.push(next)
      i++
    }
    out.append(el("p", lines(paragraph)))
  }
  return out
}
