import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { ValidationError } from "@effect/cli"
import { Cause, Effect } from "effect"
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

run(normalizeArgs(process.argv)).pipe(
  Effect.catchAllCause((cause) => (Cause.isInterruptedOnly(cause) ? Effect.void : report(cause))),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
