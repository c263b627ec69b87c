import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option, Stream } from "effect"
import type { PullEvent } from "../domain/Pull.js"
import { formatBytes } from "../services/Download.js"
import { Puller } from "../services/Puller.js"
import { live } from "./Shared.js"

/**
 * `shimmy pull <reference>`: a GGUF model from the Hugging Face hub (or a URL) into the Hugging
 * Face cache, where `shimmy serve` and other tools find it. Progress goes to stderr, a bar on a
 * terminal and a line per tenth otherwise; where the model is and its name go to stdout.
 */

const reference = Args.text({ name: "reference" }).pipe(
  Args.withDescription(
    "org/repo (Q4_K_M, else the first GGUF), org/repo:Q4_K_M, org/repo/file.gguf, hf.co/org/repo:tag, " +
      "https://huggingface.co/org/repo/resolve/main/file.gguf, or any URL of a .gguf file; @revision may follow"
  )
)

const revision = Options.text("revision").pipe(
  Options.withDescription("The branch, tag or commit to pull (default: main)"),
  Options.optional
)

const duration = (seconds: number) => {
  if (!Number.isFinite(seconds)) return "--:--"
  const s = Math.max(0, Math.round(seconds))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const rest = String(s % 60).padStart(2, "0")
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`
}

/** Draws the progress of each file: a bar redrawn in place on a terminal, plain lines elsewhere. */
const progress = (tty: boolean) => {
  let file: string | undefined
  let started = 0
  let base = 0
  let tenth = -1
  const write = (text: string) => process.stderr.write(text)
  return (event: PullEvent) =>
    Effect.sync(() => {
      switch (event._tag) {
        case "Resolved":
          write(
            `pulling ${event.source}${event.commit !== undefined ? ` (commit ${event.commit.slice(0, 12)})` : ""}: ${
              event.files.map((f) => `${f.path}${f.size !== undefined ? ` (${formatBytes(f.size)})` : ""}`).join(", ")
            }\n`
          )
          return
        case "Progress": {
          const now = Date.now()
          if (file !== event.file) {
            file = event.file
            started = now
            base = event.completed
            tenth = -1
          }
          const total = event.total
          const fraction = total !== undefined && total > 0 ? event.completed / total : undefined
          const rate = (event.completed - base) / Math.max(0.001, (now - started) / 1000)
          const eta = total !== undefined && rate > 0 ? (total - event.completed) / rate : Number.NaN
          const amount = `${formatBytes(event.completed)}${total !== undefined ? ` / ${formatBytes(total)}` : ""}`
          if (tty) {
            const width = 24
            const filled = fraction !== undefined ? Math.round(fraction * width) : 0
            const bar = fraction !== undefined ? `[${"#".repeat(filled)}${".".repeat(width - filled)}] ` : ""
            const percent = fraction !== undefined ? `${String(Math.floor(fraction * 100)).padStart(3)}% ` : ""
            write(`\r\x1b[2K${event.file} ${bar}${percent}${amount}  ${formatBytes(rate)}/s  ETA ${duration(eta)}`)
          } else {
            const step = fraction !== undefined ? Math.floor(fraction * 10) : 0
            if (step > tenth) {
              tenth = step
              write(`${event.file}: ${fraction !== undefined ? `${step * 10}% ` : ""}(${amount})\n`)
            }
          }
          return
        }
        case "Verifying":
          write(
            `${tty ? "\n" : ""}verifying ${event.file}${
              event.digest !== undefined ? ` (sha256 ${event.digest.slice(0, 12)})` : ""
            }\n`
          )
          return
        case "Done":
          return
      }
    })
}

export const pullCommand = Command.make("pull", { reference, revision }, (o) =>
  Effect.gen(function*() {
    const puller = yield* Puller
    const draw = progress(process.stderr.isTTY === true)
    const done = yield* puller.pull(o.reference, { revision: Option.getOrUndefined(o.revision) }).pipe(
      Stream.tap(draw),
      Stream.runLast
    )
    if (Option.isNone(done) || done.value._tag !== "Done") return
    const { alias, files, model, path, shadowedBy } = done.value
    yield* Console.log(`pulled ${model}`)
    yield* Console.log(`  path: ${path}${files.length > 1 ? ` (and ${files.length - 1} more parts)` : ""}`)
    const name = shadowedBy !== undefined && alias !== undefined ? alias : model
    yield* Console.log(`  use it as: --model ${name}  (shimmy generate --model ${name} -p "...")`)
    if (shadowedBy !== undefined) {
      yield* Console.log(
        `  note: the name ${model} is taken by ${shadowedBy}, found first${
          alias !== undefined ? `; ${alias} names this file` : ""
        }`
      )
    }
  })).pipe(
    Command.provide(() => live({ modelDirs: [] })),
    Command.withDescription("Download a GGUF model from the Hugging Face hub (or a URL) into the Hugging Face cache")
  )
