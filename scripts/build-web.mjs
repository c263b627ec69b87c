// Builds the web playground (web/) into dist/playground: app.js (web/main.ts and what it imports,
// bundled and minified), app.css and index.html. Everything the page needs comes from this
// server: no CDN, no fonts, nothing fetched elsewhere (the server's CSP forbids it anyway).
// The server reads these files (src/http/playground/Assets.ts); the CLI bundle embeds them.
import * as esbuild from "esbuild"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const out = path.join(root, "dist/playground")

await fs.mkdir(out, { recursive: true })
await esbuild.build({
  absWorkingDir: root,
  entryPoints: { app: "web/main.ts", "app-style": "web/app.css" },
  outdir: out,
  entryNames: "[name]",
  bundle: true,
  minify: true,
  platform: "browser",
  format: "esm",
  target: "es2022",
  tsconfig: "web/tsconfig.json",
  legalComments: "none",
  logLevel: "warning"
})
await fs.rename(path.join(out, "app-style.css"), path.join(out, "app.css"))
await fs.copyFile(path.join(root, "web/index.html"), path.join(out, "index.html"))
