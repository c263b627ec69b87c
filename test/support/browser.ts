import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import puppeteer, { type Browser, type Page } from "puppeteer-core"

/**
 * A real headless Chromium for the playground's tests (Debian's `chromium` package, or the
 * binary `SHIMMY_CHROMIUM` names), driven by puppeteer-core. Without one the tests fail and say
 * how to install it: a browser test that is skipped silently tests nothing.
 */

// page.evaluate's functions run in the page; the Node project has no DOM types
declare const document: any

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

/** Where screenshots of the page's states go (gitignored; CI keeps them as artifacts). */
export const ARTIFACTS = path.join(repoRoot, "test-artifacts")

export const chromiumPath = (): string => {
  const candidates = [process.env["SHIMMY_CHROMIUM"], "/usr/bin/chromium", "/usr/bin/chromium-browser"]
  const found = candidates.find((p): p is string => p !== undefined && p !== "" && fs.existsSync(p))
  if (found === undefined) {
    throw new Error(
      "No Chromium found (looked at $SHIMMY_CHROMIUM, /usr/bin/chromium, /usr/bin/chromium-browser): " +
        "the playground's tests need one. Run the README's setup (`sudo apt-get install -y chromium` on Debian/Ubuntu) " +
        "or set SHIMMY_CHROMIUM to a Chromium or Chrome binary."
    )
  }
  return found
}

export const launchBrowser = (): Promise<Browser> =>
  puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    // tests run as root in CI containers, where Chromium's sandbox cannot start
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
  })

/** Builds the page into dist/playground, as `npm run build` does, so the server serves this tree's sources. */
export const buildPlayground = () =>
  new Promise<void>((resolve, reject) =>
    execFile(
      process.execPath,
      [path.join(repoRoot, "scripts/build-web.mjs")],
      (e, _out, err) => e ? reject(new Error(`build-web failed: ${err}`)) : resolve()
    )
  )

export const PLAYGROUND_DIR = path.join(repoRoot, "dist/playground")

/** What went wrong in a page: console errors, uncaught exceptions, CSP violations, dialogs (alert). */
export interface PageProblems {
  readonly console: Array<string>
  readonly dialogs: Array<string>
}

/** A fresh page in its own browser context (its own storage), with its problems recorded. */
export const openPage = async (browser: Browser): Promise<{ page: Page; problems: PageProblems }> => {
  const context = await browser.createBrowserContext()
  const page = await context.newPage()
  await page.setViewport({ width: 1200, height: 800 })
  // a model's first load (probed in a child process) can take long on a busy machine
  page.setDefaultTimeout(90_000)
  const problems: PageProblems = { console: [], dialogs: [] }
  page.on("console", (m) => {
    if (m.type() === "error") problems.console.push(m.text())
  })
  page.on("pageerror", (e) => problems.console.push(`uncaught: ${String(e)}`))
  page.on("dialog", (d) => {
    problems.dialogs.push(d.message())
    void d.dismiss()
  })
  // a violation the console might not show is still counted
  await page.evaluateOnNewDocument(() => {
    document.addEventListener("securitypolicyviolation", (e: any) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`)
    })
  })
  return { page, problems }
}

export const screenshot = async (page: Page, name: string) => {
  fs.mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: path.join(ARTIFACTS, `playground-${name}.png`) as `${string}.png` })
}
