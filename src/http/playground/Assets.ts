import { Effect, Option } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { embedded } from "./Embedded.js"

/**
 * The playground's files, as `npm run build` made them (scripts/build-web.mjs writes
 * `dist/playground`): embedded in the CLI bundle, else read from the build's output.
 */

/** The files the page is made of, with their media types; nothing else is served. */
export const FILES = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8"
} as const

export type AssetName = keyof typeof FILES

const here = path.dirname(fileURLToPath(import.meta.url))

/** `dist/playground` seen from `src/http/playground` (the sources) and from `dist/src/http/playground`. */
const candidates = [path.resolve(here, "../../../dist/playground"), path.resolve(here, "../../../playground")]

// a file found is read once; one not built yet is looked for again on the next request
const found = new Map<AssetName, string>()

const fromDisk = (name: AssetName) =>
  Effect.promise(async () => {
    const known = found.get(name)
    if (known !== undefined) return Option.some(known)
    for (const dir of candidates) {
      const text = await fs.readFile(path.join(dir, name), "utf8").catch(() => undefined)
      if (text !== undefined) {
        found.set(name, text)
        return Option.some(text)
      }
    }
    return Option.none<string>()
  })

/** A built file's text, or none where the playground was not built (`tsc` alone). */
export const asset = (name: AssetName): Effect.Effect<Option.Option<string>> =>
  embedded !== undefined ? Effect.succeed(Option.fromNullable(embedded[name])) : fromDisk(name)
