import { Command, Options } from "@effect/cli"
import { Console, Effect } from "effect"
import { ModelRegistry } from "../services/ModelRegistry.js"
import { modelHeader, modelRow, table } from "./Format.js"
import { live, modelDirs } from "./Shared.js"

const json = Options.boolean("json").pipe(Options.withDescription("Print the models as JSON"))

export const listCommand = Command.make("list", { modelDirs, json }, (o) =>
  Effect.gen(function*() {
    const registry = yield* ModelRegistry
    const models = yield* registry.list
    if (o.json) return yield* Console.log(JSON.stringify(models, null, 2))
    if (models.length === 0) {
      return yield* Console.log(
        "No models found. Put GGUF files in ./models or set SHIMMY_MODEL_PATHS (see `shimmy diag`)."
      )
    }
    yield* Console.log(table(modelHeader, models.map(modelRow)))
    const notes = models.filter((m) => m.status !== "ok")
    if (notes.length > 0) yield* Console.log("")
    for (const m of notes) yield* Console.log(`${m.name}: ${m.status}: ${m.reason ?? ""}`)
  })).pipe(
    Command.provide((o) => live(o)),
    Command.withDescription("List the models found, with their metadata")
  )
