import { Effect, Either } from "effect"
import type { GbnfJsonSchema, LlamaGrammar, LlamaText } from "node-llama-cpp"
import { InvalidRequest, RuntimeUnavailable } from "../domain/Errors.js"
import { LlamaRuntime } from "./LlamaRuntime.js"

/** Keywords that only annotate a schema: dropping them cannot let invalid output through. */
export const ANNOTATIONS: ReadonlySet<string> = new Set([
  "title",
  "description",
  "$schema",
  "$id",
  "$comment",
  "examples",
  "default",
  "deprecated",
  "readOnly",
  "writeOnly"
])

/** Keywords node-llama-cpp's JSON-schema grammar enforces (see its `GbnfJsonSchema` type). */
export const ENFORCED: ReadonlySet<string> = new Set([
  "type",
  "const",
  "enum",
  "oneOf",
  "anyOf",
  "properties",
  "additionalProperties",
  "required",
  "minProperties",
  "maxProperties",
  "items",
  "prefixItems",
  "minItems",
  "maxItems",
  "minLength",
  "maxLength",
  "format",
  "$defs",
  "$ref"
])

export const TYPES: ReadonlySet<string> = new Set(["string", "number", "integer", "boolean", "null", "object", "array"])
export const FORMATS: ReadonlySet<string> = new Set(["date-time", "time", "date"])

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const unsupported = (path: string, reason: string) =>
  new InvalidRequest({
    param: "response_format",
    reason: `${reason} (at ${path}); the output could not be guaranteed to match the schema`
  })

/**
 * Checks that every keyword of a JSON schema is one the grammar enforces and returns the schema
 * node-llama-cpp takes (`anyOf` becomes its `oneOf`, which it compiles to the same alternation).
 * A keyword it would silently ignore (`pattern`, `minimum`, `allOf`, ...) is refused, naming it.
 */
export const toGbnfSchema = (schema: unknown): Either.Either<GbnfJsonSchema, InvalidRequest> => {
  const visit = (node: unknown, path: string): unknown => {
    if (!isRecord(node)) {
      throw unsupported(
        path,
        node === true || node === false ? "boolean schemas are not supported" : "a schema must be an object"
      )
    }
    const out: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(node)) {
      const at = `${path}/${key}`
      if (ANNOTATIONS.has(key)) {
        if (key === "description" && typeof value === "string") out[key] = value
        continue
      }
      if (!ENFORCED.has(key)) throw unsupported(at, `JSON schema keyword '${key}' is not supported by the grammar`)
      switch (key) {
        case "type": {
          const types = Array.isArray(value) ? value : [value]
          const bad = types.find((t) => typeof t !== "string" || !TYPES.has(t))
          if (bad !== undefined || types.length === 0) {
            throw unsupported(at, `'type' ${JSON.stringify(value)} is not a JSON schema type`)
          }
          const composite = types.filter((t) => t === "object" || t === "array")
          if (Array.isArray(value) && composite.length > 0) {
            throw unsupported(at, `'type' lists with 'object' or 'array' are not supported; use 'anyOf'`)
          }
          out[key] = value
          break
        }
        case "format":
          if (typeof value !== "string" || !FORMATS.has(value)) {
            throw unsupported(
              at,
              `JSON schema keyword 'format' with value ${
                JSON.stringify(value)
              } is not supported (only date-time, time, date)`
            )
          }
          out[key] = value
          break
        case "$ref":
          if (typeof value !== "string" || !value.startsWith("#/$defs/")) {
            throw unsupported(at, `'$ref' must point into '#/$defs/'`)
          }
          out[key] = value
          break
        case "oneOf":
        case "anyOf":
        case "prefixItems":
          if (!Array.isArray(value)) throw unsupported(at, `'${key}' must be a list of schemas`)
          out[key === "anyOf" ? "oneOf" : key] = value.map((s, i) => visit(s, `${at}/${i}`))
          break
        case "properties":
        case "$defs":
          if (!isRecord(value)) throw unsupported(at, `'${key}' must be an object of schemas`)
          out[key] = Object.fromEntries(Object.entries(value).map(([k, s]) => [k, visit(s, `${at}/${k}`)]))
          break
        case "items":
          out[key] = visit(value, at)
          break
        case "additionalProperties":
          out[key] = typeof value === "boolean" ? value : visit(value, at)
          break
        default:
          out[key] = value
      }
    }
    if ("oneOf" in out && "anyOf" in node && "oneOf" in node) {
      throw unsupported(path, "'oneOf' and 'anyOf' together are not supported")
    }
    return out
  }
  try {
    return Either.right(visit(schema, "#") as GbnfJsonSchema)
  } catch (error) {
    if (error instanceof InvalidRequest) return Either.left(error)
    throw error
  }
}

type StopTrigger = LlamaGrammar["stopGenerationTriggers"][number]

// a trigger is a string, a list of strings and tokens, or a LlamaText (a value import of its class
// would load node-llama-cpp with this module)
const isLlamaText = (trigger: StopTrigger): trigger is LlamaText =>
  typeof trigger !== "string" && !Array.isArray(trigger)

/**
 * Where a grammar's output ends. node-llama-cpp's JSON-schema grammars end in "\n\n\n\n" followed
 * by any number of newlines, so without this stop a finished object is padded up to max_tokens.
 */
export const grammarStops = (grammar: LlamaGrammar | undefined): ReadonlyArray<string> =>
  (grammar?.stopGenerationTriggers ?? []).flatMap((trigger) => {
    // a LlamaText of plain strings is its text; token lists and special tokens cannot be matched as text
    const text = typeof trigger === "string"
      ? trigger
      : isLlamaText(trigger) && trigger.values.every((v) => typeof v === "string")
      ? trigger.values.join("")
      : ""
    return text.length > 0 ? [text] : []
  })

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** Grammars that constrain sampling so the output is JSON, or JSON matching a schema. */
export class Grammar extends Effect.Service<Grammar>()("shimmy/Grammar", {
  effect: Effect.gen(function*() {
    const runtime = yield* LlamaRuntime
    const json = yield* Effect.cached(
      Effect.flatMap(runtime.llama, (llama) =>
        Effect.tryPromise({
          try: () => llama.getGrammarFor("json"),
          catch: (cause) => new RuntimeUnavailable({ reason: `cannot build the JSON grammar: ${describe(cause)}` })
        }))
    )
    const forJsonSchema = Effect.fn("Grammar.forJsonSchema")(function*(schema: unknown) {
      const gbnf = yield* toGbnfSchema(schema)
      const llama = yield* runtime.llama
      return yield* Effect.tryPromise({
        try: (): Promise<LlamaGrammar> => llama.createGrammarForJsonSchema<GbnfJsonSchema>(gbnf),
        catch: (cause) =>
          new InvalidRequest({
            param: "response_format",
            reason: `the JSON schema cannot be compiled to a grammar: ${describe(cause)}`
          })
      })
    })
    return {
      /** any JSON object (`response_format: {type: "json_object"}`) */
      json: json.pipe(Effect.withSpan("Grammar.json")),
      /** JSON that validates against `schema`; fails naming the first keyword it cannot enforce */
      forJsonSchema
    } as const
  }),
  dependencies: [LlamaRuntime.layer]
}) {}
