import { Option, Redacted } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import type { Browser, Page } from "puppeteer-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildPlayground, launchBrowser, openPage, type PageProblems, screenshot } from "./support/browser.js"
import { SHARED_MODELS } from "./support/models.js"
import { type RunningServer, startServer } from "./support/server.js"
import { makeEndlessModel, makeTemplateModels } from "./support/templates.js"

/**
 * The playground at `/`, in a real headless Chromium against the real server: it loads under its
 * CSP with no console error, lists the models, streams an answer, Stop cancels the generation on
 * the server, model output that looks like HTML stays text, Markdown renders, conversations survive
 * a reload, the API key is asked for, and it works from the keyboard. Screenshots of its states go
 * to test-artifacts/. The tiny models write gibberish: the assertions are on structure.
 */

// page.evaluate's functions run in the page; the Node project has no DOM types
declare const document: any
declare const localStorage: any
declare const getComputedStyle: any
declare const MutationObserver: any
declare const window: any

const HOSTILE = "<img src=x onerror=alert(1)><b>x</b>"

let dir: string
let server: RunningServer & { readonly close: () => Promise<void> }
let browser: Browser

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "shimmy-playground-"))
  await Promise.all([buildPlayground(), makeTemplateModels(dir, ["qwen25", "qwen3"]), makeEndlessModel(dir)])
  server = await startServer({
    modelPaths: [
      dir,
      path.join(SHARED_MODELS, "stories260K.gguf"),
      path.join(SHARED_MODELS, "llama-2-tiny-random.gguf")
    ],
    parallel: 2,
    threads: 1,
    // for `endless`; the others are held to their own, smaller, trained contexts
    contextSize: 32768
  })
  browser = await launchBrowser()
}, 120_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
  await fs.rm(dir, { recursive: true, force: true })
})

/** The page's problems, minus what a test expects (each a pattern). */
const unexpected = (problems: PageProblems, expected: ReadonlyArray<RegExp> = []) =>
  problems.console.filter((text) => !expected.some((p) => p.test(text)))

const open = async (url = server.url) => {
  const opened = await openPage(browser)
  await opened.page.goto(url, { waitUntil: "load" })
  return opened
}

/** Waits for the model list, then picks `model`. */
const pickModel = async (page: Page, model: string) => {
  await page.waitForSelector(`#model option[value="${model}"]`)
  await page.select("#model", model)
}

const setField = async (page: Page, selector: string, value: string) => {
  await page.$eval(selector, (el: any, v: string) => {
    el.value = v
    el.dispatchEvent(new window.Event("input", { bubbles: true }))
  }, value)
}

const lastAnswer = "#messages article.assistant:last-of-type"

const answerState = (page: Page) => page.$eval(lastAnswer, (el: any) => el.dataset.state as string)

const send = async (page: Page, text: string) => {
  await page.focus("#prompt")
  await page.keyboard.type(text)
  await page.keyboard.press("Enter")
}

/** The JSON bodies the page posts to `path`, as the browser sent them. */
const postedTo = (page: Page, path: string): Array<any> => {
  const bodies: Array<any> = []
  page.on("request", (r) => {
    if (r.method() === "POST" && new URL(r.url()).pathname === path) bodies.push(JSON.parse(r.postData() ?? "null"))
  })
  return bodies
}

const waitForState = (page: Page, state: string) =>
  page.waitForFunction(
    (s: string, want: string) => document.querySelector(s)?.dataset.state === want,
    {},
    lastAnswer,
    state
  )

const health = async () => (await (await fetch(`${server.url}/api/health`)).json()) as any

/** The tokens the model's context has decoded so far (`shimmy_decoded_tokens_total`). */
const decodedTokens = async (model: string): Promise<number> => {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  const line = text.split("\n").find((l) => l.startsWith("shimmy_decoded_tokens_total{") && l.includes(`"${model}"`))
  return Number(line?.split(" ").pop() ?? "NaN")
}

describe("the page", () => {
  it("answers a browser at / under a strict CSP, and Ollama's clients as before", async () => {
    const page = await fetch(`${server.url}/`, { headers: { accept: "text/html,application/xhtml+xml" } })
    expect(page.status).toBe(200)
    expect(page.headers.get("content-type")).toMatch(/^text\/html/)
    const csp = page.headers.get("content-security-policy") ?? ""
    for (
      const directive of [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'"
      ]
    ) expect(csp).toContain(directive)
    expect(csp).not.toContain("unsafe")
    expect(page.headers.get("x-content-type-options")).toBe("nosniff")
    expect(page.headers.get("vary")).toContain("Accept")
    const html = await page.text()
    expect(html).toContain("/playground/app.js")
    expect(html).not.toMatch(/https?:\/\//)

    const ollama = await fetch(`${server.url}/`)
    expect(await ollama.text()).toBe("Ollama is running")
    const script = await fetch(`${server.url}/playground/app.js`)
    expect(script.headers.get("content-type")).toMatch(/^text\/javascript/)
    expect(script.headers.get("x-content-type-options")).toBe("nosniff")
  })

  it("loads with no console error and lists the models with their metadata", async () => {
    const { page, problems } = await open()
    await page.waitForSelector("#model option[value=\"stories260K\"]")
    const options = await page.$$eval("#model option", (os: any) => os.map((o: any) => o.value))
    expect(options).toEqual(expect.arrayContaining(["stories260K", "llama-2-tiny-random", "qwen25", "qwen3"]))
    await pickModel(page, "stories260K")
    const info = await page.$eval("#model-info", (el: any) => el.textContent as string)
    expect(info).toMatch(/Architecture\s*llama/)
    expect(info).toMatch(/Context\s*[\d,]+ tokens/)
    expect(await page.$eval("#status", (el: any) => el.textContent)).toMatch(/\d+ models/)
    await screenshot(page, "empty")
    expect(unexpected(problems)).toEqual([])
    await page.browserContext().close()
  })

  it("every control has a label; Tab reaches the message box and Ctrl+Enter sends", async () => {
    const { page, problems } = await open()
    const unlabelled = await page.$$eval(
      "input, select, textarea",
      (els: any) => els.filter((e: any) => e.labels.length === 0).map((e: any) => e.id)
    )
    expect(unlabelled).toEqual([])
    const nameless = await page.$$eval(
      "button",
      (els: any) => els.filter((b: any) => (b.getAttribute("aria-label") ?? b.textContent).trim() === "").length
    )
    expect(nameless).toBe(0)
    await pickModel(page, "stories260K")
    await setField(page, "#max-tokens", "8")
    // the first Tab lands on the skip link, which takes the focus to the message box
    await page.keyboard.press("Tab")
    expect(await page.evaluate(() => document.activeElement.className)).toBe("skip")
    await page.keyboard.press("Enter")
    expect(await page.evaluate(() => document.activeElement.id)).toBe("prompt")
    await page.keyboard.type("Once upon a time")
    await page.keyboard.down("Control")
    await page.keyboard.press("Enter")
    await page.keyboard.up("Control")
    await page.waitForFunction((s: string) => document.querySelector(s)?.dataset.state === "done", {}, lastAnswer)
    expect(await page.$eval("#messages article.user", (el: any) => el.textContent)).toContain("Once upon a time")
    expect(unexpected(problems)).toEqual([])
    await page.browserContext().close()
  })
})

describe("chat", () => {
  it("streams an answer with its stats, and the conversation survives a reload", async () => {
    const { page, problems } = await open()
    await pickModel(page, "llama-2-tiny-random")
    await setField(page, "#max-tokens", "48")
    await setField(page, "#seed", "7")
    // count the answer's redraws while it streams
    await page.evaluate(() => {
      window.__redraws = 0
      new MutationObserver((records: any) => {
        for (const r of records) {
          if (r.target.closest?.("article.assistant")?.dataset.state === "streaming") window.__redraws++
        }
      }).observe(document.querySelector("#messages"), { childList: true, subtree: true })
    })
    await send(page, "Tell me a story")
    await page.waitForFunction((s: string) => document.querySelector(s)?.dataset.state === "done", {}, lastAnswer)
    expect(await page.evaluate(() => window.__redraws)).toBeGreaterThan(3)
    const stats = await page.$eval(`${lastAnswer} .stats`, (el: any) => el.textContent as string)
    expect(stats).toMatch(/48 tokens/)
    expect(stats).toMatch(/[\d.]+ tokens\/s/)
    expect(stats).toMatch(/first token \d+ ms/)
    expect(stats).toMatch(/finish: length/)
    const text = await page.$eval(`${lastAnswer} .body`, (el: any) => el.textContent as string)
    expect(text.length).toBeGreaterThan(0)
    await screenshot(page, "answered")

    await page.reload({ waitUntil: "load" })
    await page.waitForSelector(lastAnswer)
    expect(await page.$eval(`${lastAnswer} .body`, (el: any) => el.textContent)).toBe(text)
    expect(await page.$eval("#messages article.user", (el: any) => el.textContent)).toContain("Tell me a story")
    expect(await page.$$eval("#conversations li", (lis: any) => lis.length)).toBe(1)
    expect(unexpected(problems)).toEqual([])
    await page.browserContext().close()
  })

  it("sends the system prompt and the parameters, and the conversation so far", async () => {
    const { page, problems } = await open()
    const bodies = postedTo(page, "/v1/chat/completions")
    await pickModel(page, "stories260K")
    await setField(page, "#system", "You tell stories.")
    await setField(page, "#temperature", "0.3")
    await setField(page, "#top-p", "0.5")
    await setField(page, "#max-tokens", "5")
    await setField(page, "#seed", "42")
    await send(page, "Once upon a time")
    await waitForState(page, "done")
    await send(page, "And then?")
    await page.waitForFunction(() => document.querySelectorAll("#messages article.assistant").length === 2)
    await waitForState(page, "done")
    expect(bodies).toHaveLength(2)
    expect(bodies[0]).toMatchObject({
      model: "stories260K",
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.3,
      top_p: 0.5,
      max_tokens: 5,
      seed: 42,
      messages: [{ role: "system", content: "You tell stories." }, { role: "user", content: "Once upon a time" }]
    })
    const first = await page.$eval("#messages article.assistant .body", (el: any) => el.textContent as string)
    expect(bodies[1].messages.map((m: any) => m.role)).toEqual(["system", "user", "assistant", "user"])
    expect(bodies[1].messages[2].content).toBe(first)
    expect(unexpected(problems)).toEqual([])
    await page.browserContext().close()
  })

  it("raw-completion mode streams from /v1/completions with the text as the prompt", async () => {
    const { page, problems } = await open()
    const bodies = postedTo(page, "/v1/completions")
    await pickModel(page, "llama-2-tiny-random")
    await page.select("#mode", "completion")
    expect(await page.$eval("#system", (el: any) => el.closest("[data-modes]").hidden)).toBe(true)
    await setField(page, "#max-tokens", "12")
    await send(page, "The quick brown fox")
    await waitForState(page, "done")
    expect(bodies).toEqual([expect.objectContaining({ prompt: "The quick brown fox", max_tokens: 12, stream: true })])
    expect(bodies[0].messages).toBeUndefined()
    const stats = await page.$eval(`${lastAnswer} .stats`, (el: any) => el.textContent as string)
    expect(stats).toMatch(/12 tokens/)
    expect(stats).toMatch(/finish: length/)
    expect(unexpected(problems)).toEqual([])
    await page.browserContext().close()
  })

  it("Stop cancels the request: the server frees the sequence and stops generating", async () => {
    const { page, problems } = await open()
    await pickModel(page, "endless")
    // as long as the context allows, which takes `endless` half a minute or more: Stop comes first
    // even on a machine busy enough to hold the page back for seconds
    await setField(page, "#max-tokens", "32000")
    await send(page, "Go on and on")
    await page.waitForFunction(
      (s: string) => (document.querySelector(`${s} .body`)?.textContent.length ?? 0) > 0,
      {},
      lastAnswer
    )
    expect(await answerState(page)).toBe("streaming")
    expect((await health()).sequences.free).toBeLessThan((await health()).sequences.total)
    // at once, before the answer can end by itself
    await page.click("#stop")
    await page.waitForFunction((s: string) => document.querySelector(s)?.dataset.state === "stopped", {}, lastAnswer)
    await screenshot(page, "stopped")
    const shown = await page.$eval(`${lastAnswer} .body`, (el: any) => el.textContent as string)

    // the server let go of the sequence...
    const deadline = Date.now() + 5_000
    let h = await health()
    while (h.sequences.free < h.sequences.total && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100))
      h = await health()
    }
    expect(h.sequences.free).toBe(h.sequences.total)
    // ...and decodes nothing more
    const before = await decodedTokens("endless")
    await new Promise((r) => setTimeout(r, 700))
    expect(await decodedTokens("endless")).toBe(before)
    expect(before).toBeLessThan(32000)
    expect(await page.$eval(`${lastAnswer} .stats`, (el: any) => el.textContent)).toMatch(/stopped/)
    expect(await page.$eval(`${lastAnswer} .body`, (el: any) => el.textContent)).toBe(shown)
    expect(await page.$eval("#send", (el: any) => el.disabled)).toBe(false)
    expect(await page.$eval("#stop", (el: any) => el.disabled)).toBe(true)

    // Escape in the message box stops too
    await send(page, "Once more")
    await page.waitForFunction(() => document.querySelectorAll("#messages article.assistant").length === 2)
    await page.waitForFunction(
      (s: string) => (document.querySelector(`${s} .body`)?.textContent.length ?? 0) > 0,
      {},
      lastAnswer
    )
    await page.keyboard.press("Escape")
    await waitForState(page, "stopped")
    expect(unexpected(problems)).toEqual([])
    await page.browserContext().close()
  })

  it("a model's HTML-looking output is shown as text (JSON-schema mode forces it)", async () => {
    const { page, problems } = await open()
    await pickModel(page, "stories260K")
    await page.select("#mode", "json")
    await setField(page, "#schema", JSON.stringify({ type: "string", enum: [HOSTILE] }))
    await send(page, "Say it")
    await page.waitForFunction((s: string) => document.querySelector(s)?.dataset.state === "done", {}, lastAnswer)
    const shown = await page.$eval(`${lastAnswer} .body`, (el: any) => el.textContent as string)
    expect(shown).toContain(HOSTILE)
    expect(await page.$$eval("#messages img, #messages b", (els: any) => els.length)).toBe(0)
    expect(await page.$eval(`${lastAnswer} .body`, (el: any) => el.innerText as string)).toContain("<img src=x")
    await new Promise((r) => setTimeout(r, 200))
    expect(problems.dialogs).toEqual([])
    expect(unexpected(problems)).toEqual([])
    await page.browserContext().close()
  })

  it("shows a model's reasoning folded away", async () => {
    const { page, problems } = await open()
    await pickModel(page, "qwen3")
    await setField(page, "#max-tokens", "16")
    await send(page, "Think about it")
    await page.waitForFunction((s: string) => document.querySelector(s)?.dataset.state === "done", {}, lastAnswer)
    // random weights never close the thought: all of it is reasoning
    const reasoning = await page.$eval(`${lastAnswer} details.reasoning`, (d: any) => ({
      open: d.open as boolean,
      summary: d.querySelector("summary").textContent as string,
      text: d.querySelector(".reasoning-body").textContent as string
    }))
    expect(reasoning.open).toBe(false)
    expect(reasoning.summary).toBe("Reasoning")
    expect(reasoning.text.length).toBeGreaterThan(0)
    expect(unexpected(problems)).toEqual([])
    await page.browserContext().close()
  }, 120_000)

  it("shows a forced tool call folded away, with its arguments", async () => {
    const { page, problems } = await open()
    await pickModel(page, "qwen25")
    await setField(page, "#max-tokens", "64")
    const tools = [{
      type: "function",
      function: {
        name: "get_weather",
        description: "The weather in a city",
        parameters: {
          type: "object",
          properties: { city: { type: "string", enum: ["Paris", "Oslo"] } },
          required: ["city"]
        }
      }
    }]
    await setField(page, "#tools", JSON.stringify(tools))
    await page.select("#tool-choice", "required")
    await send(page, "Weather?")
    await page.waitForFunction((s: string) => document.querySelector(s)?.dataset.state === "done", {}, lastAnswer)
    const calls = await page.$eval(`${lastAnswer} details.tool-calls`, (d: any) => ({
      open: d.open as boolean,
      summary: d.querySelector("summary").textContent as string,
      name: d.querySelector(".tool-name").textContent as string,
      args: d.querySelector(".tool-arguments").textContent as string
    }))
    expect(calls.open).toBe(false)
    expect(calls.summary).toBe("Tool calls (1)")
    expect(calls.name).toBe("get_weather")
    expect(["Paris", "Oslo"]).toContain(JSON.parse(calls.args).city)
    expect(await page.$eval(`${lastAnswer} .stats`, (el: any) => el.textContent)).toMatch(/finish: tool_calls/)
    expect(unexpected(problems)).toEqual([])
    await page.browserContext().close()
  }, 120_000)

  it("a refused request shows the server's message", async () => {
    const { page, problems } = await open()
    await pickModel(page, "stories260K")
    await setField(page, "#temperature", "9")
    await send(page, "Hello")
    await page.waitForFunction((s: string) => document.querySelector(s)?.dataset.state === "error", {}, lastAnswer)
    const alert = await page.$eval("#error", (el: any) => ({ hidden: el.hidden, text: el.textContent as string }))
    expect(alert.hidden).toBe(false)
    expect(alert.text).toMatch(/temperature/)
    await screenshot(page, "error")
    // the browser reports the refused request itself; nothing else went wrong
    expect(unexpected(problems, [/status of 400/])).toEqual([])
    await page.browserContext().close()
  })
})

describe("rendering and storage", () => {
  it("renders a stored answer's Markdown as elements, and nothing it must not", async () => {
    const { page, problems } = await open()
    const markdown = [
      "# Title",
      "Some **bold**, *italic* and `code`, a [link](https://example.com/a) and [another](javascript:alert(1)).",
      "",
      "- one",
      "- two <script>alert(1)</script>",
      "",
      "1. first",
      "2. second",
      "",
      "```js",
      "const x = \"<b>not bold</b>\"",
      "```",
      "",
      "> quoted <img src=x onerror=alert(1)>"
    ].join("\n")
    await page.evaluate((md: string) => {
      localStorage.setItem(
        "shimmy.conversations",
        JSON.stringify([{
          id: "stored",
          title: "Stored",
          model: "stories260K",
          updated: 1,
          messages: [
            { role: "user", content: "Show me markdown", mode: "chat" },
            { role: "assistant", content: md, mode: "chat" }
          ]
        }])
      )
    }, markdown)
    await page.reload({ waitUntil: "load" })
    await page.waitForSelector(lastAnswer)
    const body = `${lastAnswer} .body`
    expect(await page.$eval(`${body} h3`, (el: any) => el.textContent)).toBe("Title")
    expect(await page.$eval(`${body} strong`, (el: any) => el.textContent)).toBe("bold")
    expect(await page.$eval(`${body} em`, (el: any) => el.textContent)).toBe("italic")
    expect(await page.$eval(`${body} p code`, (el: any) => el.textContent)).toBe("code")
    expect(await page.$$eval(`${body} ul li`, (els: any) => els.length)).toBe(2)
    expect(await page.$$eval(`${body} ol li`, (els: any) => els.length)).toBe(2)
    expect(await page.$eval(`${body} pre code`, (el: any) => el.textContent)).toBe("const x = \"<b>not bold</b>\"")
    const links = await page.$$eval(
      `${body} a`,
      (as: any) => as.map((a: any) => ({ href: a.href, rel: a.rel, text: a.textContent }))
    )
    expect(links).toEqual([{ href: "https://example.com/a", rel: "noopener noreferrer", text: "link" }])
    expect(await page.$eval(body, (el: any) => el.textContent)).toContain("[another](javascript:alert(1))")
    expect(await page.$$eval(`${body} script, ${body} img, ${body} b`, (els: any) => els.length)).toBe(0)
    expect(await page.$eval(body, (el: any) => el.textContent)).toContain("<script>alert(1)</script>")
    expect(problems.dialogs).toEqual([])
    expect(unexpected(problems)).toEqual([])
    await page.browserContext().close()
  })

  it("switches to the dark theme and keeps it", async () => {
    const { page, problems } = await open()
    await page.evaluate(() => {
      localStorage.setItem(
        "shimmy.conversations",
        JSON.stringify([{
          id: "dark",
          title: "Dark",
          model: "stories260K",
          updated: 1,
          messages: [
            { role: "user", content: "Show some code", mode: "chat" },
            { role: "assistant", content: "Here is **code**:\n\n```ts\nconst x = 1\n```", mode: "chat" }
          ]
        }])
      )
    })
    await page.reload({ waitUntil: "load" })
    await page.waitForSelector("#model option[value=\"stories260K\"]")
    await page.waitForSelector(`${lastAnswer} pre code`)
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor as string)
    const light = await background()
    await page.click("#theme")
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe("dark")
    expect(await page.$eval("#theme", (el: any) => el.getAttribute("aria-pressed"))).toBe("true")
    const dark = await background()
    expect(dark).not.toBe(light)
    await screenshot(page, "dark")
    await page.reload({ waitUntil: "load" })
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe("dark")
    expect(await background()).toBe(dark)
    expect(unexpected(problems)).toEqual([])
    await page.browserContext().close()
  })
})

describe("with an API key", () => {
  let guarded: RunningServer & { readonly close: () => Promise<void> }
  beforeAll(async () => {
    guarded = await startServer(
      { modelPaths: [path.join(SHARED_MODELS, "stories260K.gguf")], threads: 1 },
      { apiKey: Option.some(Redacted.make("sesame")) }
    )
  })
  afterAll(async () => {
    await guarded?.close()
  })

  it("loads without the key, asks for it, refuses a wrong one, then works", async () => {
    const { page, problems } = await open(guarded.url)
    await page.waitForSelector("#key-dialog[open]")
    await page.type("#api-key", "wrong")
    await page.keyboard.press("Enter")
    await page.waitForFunction(() => /refused/.test(document.querySelector("#key-reason").textContent))
    expect(await page.$eval("#key-dialog", (d: any) => d.open)).toBe(true)
    await page.type("#api-key", "sesame")
    await page.click("#key-save")
    await page.waitForSelector("#model option[value=\"stories260K\"]")
    expect(await page.$eval("#key-dialog", (d: any) => d.open)).toBe(false)
    await setField(page, "#max-tokens", "6")
    await send(page, "Once upon a time")
    await page.waitForFunction((s: string) => document.querySelector(s)?.dataset.state === "done", {}, lastAnswer)
    expect(await page.$eval(`${lastAnswer} .stats`, (el: any) => el.textContent)).toMatch(/6 tokens/)
    // the browser reports the refusals (401) itself; nothing else went wrong
    expect(unexpected(problems, [/status of 401/])).toEqual([])
    await page.browserContext().close()
  })
})
