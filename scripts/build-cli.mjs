// Bundles the `shimmy` command (src/cli/bin.ts) into one ESM file, dist/cli/shimmy.js, which
// bin/shimmy.js runs. Node loads one tree-shaken file instead of the ~1,500 modules of effect,
// @effect/platform(-node) and @effect/cli: start-up and the memory held by module code are a
// fraction of the tsc output's (dist/src stays the library: `main`/`types`).
//
// node-llama-cpp stays external: it finds its native binaries relative to its own files and the
// runtime loads it with a dynamic import (src/services/LlamaRuntime.ts), so the server listens
// before llama.cpp is loaded. One exception, below, keeps the command from loading it early.
import * as esbuild from "esbuild"
import * as fs from "node:fs/promises"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const requireHere = createRequire(import.meta.url)
const llamaDist = path.dirname(requireHere.resolve("node-llama-cpp"))
const fromLlama = (file) => JSON.stringify(path.join(llamaDist, file))

// Discovery reads GGUF headers at start-up (src/services/Gguf.ts, with its own reader) and names
// file types with node-llama-cpp's enum, a module with no imports of its own; the bundle takes it
// directly instead of importing the whole package (its index loads ~400 modules). A name Gguf.ts
// imports that is not re-exported here fails the build.
const ggufReader = [
  `export { GgufFileType } from ${fromLlama("gguf/types/GgufMetadataTypes.js")}`
].join("\n")

const virtual = {
  [path.join(root, "src/services/Gguf.ts")]: ggufReader
}

/** Static imports of node-llama-cpp from these files resolve to the modules above. */
const deferNodeLlamaCpp = {
  name: "defer-node-llama-cpp",
  setup(build) {
    build.onResolve(
      { filter: /^node-llama-cpp$/ },
      (args) =>
        args.kind === "import-statement" && virtual[args.importer] !== undefined
          ? { path: args.importer, namespace: "node-llama-cpp-subset" }
          : { path: args.path, external: true }
    )
    build.onLoad({ filter: /.*/, namespace: "node-llama-cpp-subset" }, (args) => ({
      contents: virtual[args.path],
      resolveDir: root,
      loader: "js"
    }))
  }
}

// Barrels that re-export each module of a package as a namespace (`export * as NodeHttpClient
// from ...`) defeat tree-shaking: esbuild materializes every namespace reached through them, so
// one name from @effect/platform-node bundles undici (1 MB, for the HTTP client) and one from
// @effect/cli bundles yaml, toml and ini (for config-file arguments). In the bundle, src/'s
// `import { A, B } from "pkg"` become `import * as A from "pkg/A"`, whose unused exports are dropped.
const deepImported = ["effect", "@effect/cli", "@effect/platform", "@effect/platform-node"]
const hasModule = (specifier) => {
  try {
    requireHere.resolve(specifier)
    return true
  } catch {
    return false
  }
}

const barrelImport = new RegExp(
  `import\\s*\\{([^}]*)\\}\\s*from\\s*"(${deepImported.map((p) => p.replace(/[/.]/g, "\\$&")).join("|")})"`,
  "g"
)

const deepImports = {
  name: "deep-imports",
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, async (args) => {
      const source = await fs.readFile(args.path, "utf8")
      const contents = source.replace(barrelImport, (statement, list, pkg) => {
        const names = list.split(",").map((n) => n.trim()).filter((n) => n.length > 0 && !n.startsWith("type "))
        // `pipe`, `identity` and the like are functions, not modules: they stay on the barrel
        const deep = names.filter((n) => /^[A-Z]\w*$/.test(n) && hasModule(`${pkg}/${n}`))
        const rest = names.filter((n) => !deep.includes(n))
        return [
          ...deep.map((n) => `import * as ${n} from "${pkg}/${n}"`),
          ...(rest.length > 0 ? [`import { ${rest.join(", ")} } from "${pkg}"`] : [])
        ].join("; ")
      })
      return { contents, loader: "ts" }
    })
  }
}

// The web playground (scripts/build-web.mjs, run before this) is embedded: the one file serves
// the page with nothing beside it (src/http/playground/Embedded.ts is replaced by its files)
const playgroundDir = path.join(root, "dist/playground")
const playgroundFiles = ["index.html", "app.js", "app.css"]
const embedPlayground = {
  name: "embed-playground",
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/]http[\\/]playground[\\/]Embedded\.ts$/ }, async () => {
      const files = {}
      for (const name of playgroundFiles) {
        files[name] = await fs.readFile(path.join(playgroundDir, name), "utf8").catch(() => {
          throw new Error(`${path.join(playgroundDir, name)} is missing: run node scripts/build-web.mjs first`)
        })
      }
      return { contents: `export const embedded = ${JSON.stringify(files)}`, loader: "js" }
    })
  }
}

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: ["src/cli/bin.ts"],
  outfile: "dist/cli/shimmy.js",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  tsconfig: "tsconfig.json",
  plugins: [deferNodeLlamaCpp, embedPlayground, deepImports],
  // CommonJS dependencies (ws, mime) require Node's built-ins; an ESM bundle has no `require`
  banner: {
    js:
      "import { createRequire as __shimmyRequire } from \"node:module\"; const require = __shimmyRequire(import.meta.url);"
  },
  sourcemap: "linked",
  legalComments: "none",
  logLevel: "warning",
  metafile: true
})

if (process.argv.includes("--analyze")) console.log(await esbuild.analyzeMetafile(result.metafile))
