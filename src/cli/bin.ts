import { ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Layer, Logger } from "effect"
import * as os from "node:os"
import { normalizeArgs, run } from "./Cli.js"

/** One line for a user's mistake or an expected failure; the full cause only for defects. */
const report = (cause: Cause.Cause<unknown>) =>
  Effect.sync(() => {
    const failure = Cause.failureOption(cause)
    if (failure._tag === "Some") {
      const error = failure.value
      // @effect/cli has already printed its own validation message with the help text
      if (!ValidationError.isValidationError(error)) {
        process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`)
      }
    } else if (!Cause.isInterruptedOnly(cause)) {
      process.stderr.write(`error: ${Cause.pretty(cause)}\n`)
    }
    process.exitCode = 1
  })

// node-llama-cpp loads proper-lockfile, whose signal-exit re-raises SIGINT/SIGTERM when it finds
// itself the only listener, and runMain drops its own listener as soon as a signal starts the
// shutdown. Loaded after runMain (the runtime is imported lazily), it would kill the process
// before the server drains. This listener outlives runMain's: the first signal shuts down
// gracefully, a second one ends the process at once.
let signals = 0
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (++signals > 1) process.exit(128 + os.constants.signals[signal])
  })
}

// logs (a request's defect, warnings) go to stderr: stdout is the command's output
const logger = Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ stderr: true }))

run(normalizeArgs(process.argv)).pipe(
  Effect.catchAllCause((cause) => (Cause.isInterruptedOnly(cause) ? Effect.void : report(cause))),
  Effect.provide(Layer.merge(NodeContext.layer, logger)),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
