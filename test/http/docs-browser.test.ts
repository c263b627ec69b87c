import puppeteer, { type Browser } from "puppeteer-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RunningServer, startServer } from "../support/server.js"

/**
 * `/docs` in a real browser (Debian's chromium, headless): the page renders the server's own
 * document under its Content-Security-Policy with no violation, and asks nothing of any other host.
 */

let server: RunningServer & { readonly close: () => Promise<void> }
let browser: Browser

beforeAll(async () => {
  server = await startServer({}, {}, { ollama: true })
  browser = await puppeteer.launch({
    executablePath: process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run"]
  })
})

afterAll(async () => {
  await browser?.close()
  await server?.close()
})

describe("/docs in a browser", () => {
  it.each([
    { name: "main port", url: () => server.url },
    { name: "Ollama port", url: () => server.ollamaUrl! }
  ])("renders every operation of the $name's document, with nothing blocked and nothing from elsewhere", async ({
    url
  }) => {
    const document = (await (await fetch(`${url()}/openapi.json`)).json()) as any
    const operations = Object.values(document.paths).reduce((n: number, item: any) => n + Object.keys(item).length, 0)
    const page = await browser.newPage()
    try {
      const requested: Array<string> = []
      const problems: Array<string> = []
      const failed: Array<string> = []
      page.on("request", (request) => requested.push(request.url()))
      page.on("response", (r) => {
        if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`)
      })
      page.on("pageerror", (error) => problems.push(String(error)))
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(message.text())
      })
      const response = await page.goto(`${url()}/docs`, { waitUntil: "networkidle0" })
      expect(response?.status()).toBe(200)
      await page.waitForSelector("details.op")
      const rendered = await page.$$eval("details.op", (nodes) => nodes.length)
      expect(rendered).toBe(operations)
      const title = await page.$eval("h1", (node) => node.textContent)
      expect(title).toBe(document.info.title)
      // the browser asks for /favicon.ico by itself (there is none: a 404); nothing else may fail,
      // and a CSP violation is reported on the console as an error: none may happen
      expect(failed).toEqual([`404 ${url()}/favicon.ico`])
      expect(problems.filter((p) => !p.includes("404 (Not Found)"))).toEqual([])
      for (const address of requested) expect(address.startsWith(`${url()}/`), address).toBe(true)
      expect(requested).toContain(`${url()}/openapi.json`)
      // an operation opens to its parameters, bodies and responses
      const opened = await page.$eval("details.op", (node) => {
        node.setAttribute("open", "")
        return node.textContent ?? ""
      })
      expect(opened).toContain("Responses")
    } finally {
      await page.close()
    }
  })

  it("renders the document's strings as text, never as markup", async () => {
    const hostile = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>"
    const document = (await (await fetch(`${server.url}/openapi.json`)).json()) as any
    const first = Object.values(document.paths)[0] as any
    const method = Object.keys(first)[0]!
    first[method].summary = hostile
    first[method].description = hostile
    document.info.title = hostile
    document.components.schemas[hostile] = { description: hostile }
    const page = await browser.newPage()
    try {
      await page.setRequestInterception(true)
      page.on("request", (request) =>
        request.url().endsWith("/openapi.json")
          ? request.respond({ status: 200, contentType: "application/json", body: JSON.stringify(document) })
          : request.continue())
      await page.goto(`${server.url}/docs`, { waitUntil: "networkidle0" })
      await page.waitForSelector("details.op")
      expect(await page.$eval("h1", (node) => node.textContent)).toBe(hostile)
      expect(await page.$eval("details.op .summary", (node) => node.textContent)).toBe(hostile)
      expect(await page.$$eval("img", (nodes) => nodes.length)).toBe(0)
      expect(await page.evaluate(() => (globalThis as any).__pwned)).toBeUndefined()
    } finally {
      await page.close()
    }
  })
})
