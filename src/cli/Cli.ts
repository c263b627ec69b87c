import { Command } from "@effect/cli"
import { VERSION } from "../Version.js"
import { diagCommand } from "./Diag.js"
import { generateCommand } from "./Generate.js"
import { listCommand } from "./List.js"
import { probeCommand } from "./Probe.js"
import { pullCommand } from "./Pull.js"
import { serveCommand } from "./Serve.js"
import { root } from "./Shared.js"

export const shimmy = root.pipe(
  Command.withDescription("Local LLM inference server and CLI for GGUF models"),
  Command.withSubcommands([serveCommand, generateCommand, listCommand, pullCommand, probeCommand, diagCommand])
)

export const run = Command.run(shimmy, { name: "shimmy", version: VERSION })

/**
 * `-V` is the spec's short version flag, and `-v/--verbose` is global: written anywhere, it is
 * moved before the subcommand, where @effect/cli parses the root command's options.
 */
export const normalizeArgs = (argv: ReadonlyArray<string>): ReadonlyArray<string> => {
  const [node = "node", script = "shimmy", ...rest] = argv
  const isVerbose = (a: string) => a === "-v" || a === "--verbose"
  const args = rest.map((a) => (a === "-V" ? "--version" : a))
  const flags = args.filter(isVerbose).slice(0, 1)
  return [node, script, ...flags, ...args.filter((a) => !isVerbose(a))]
}
