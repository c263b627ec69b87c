import { ANNOTATIONS, ENFORCED, FORMATS, TYPES } from "../../services/Grammar.js"

/**
 * Tool input schemas as Anthropic clients send them, made into schemas the grammar can enforce.
 * Claude Code's tools use keywords a grammar cannot enforce (`format: "uri"`, `minimum`, `pattern`,
 * `exclusiveMinimum`, `propertyNames`); refusing them, as the OpenAI dialect does for its strict
 * clients, would refuse every request Claude Code makes. So such a keyword is dropped and written
 * into the description instead, where the model still reads it; the client validates the input it
 * receives anyway (Claude Code answers a bad one with an `is_error` tool result).
 */

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Keywords whose values are schemas, or maps or lists of them. */
const SCHEMA_MAPS = new Set(["properties", "$defs"])
const SCHEMA_LISTS = new Set(["anyOf", "oneOf", "prefixItems"])

const note = (dropped: Record<string, unknown>): string =>
  Object.entries(dropped).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(", ")

/** The value a local JSON pointer (`#/properties/a/items`) names in `root`, if any. */
const pointed = (root: unknown, ref: string): unknown => {
  if (!ref.startsWith("#/")) return undefined
  let node: unknown = root
  for (const raw of ref.slice(2).split("/")) {
    const key = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~")
    if (!isRecord(node) && !Array.isArray(node)) return undefined
    node = (node as Record<string, unknown>)[key]
  }
  return node
}

// refs are inlined at most this deep: a recursive schema is cut off there (its rest accepts any value)
const MAX_INLINE = 8

/**
 * `$ref`s the grammar cannot follow, inlined: draft-07's `#/definitions/...` and the pointers into
 * the schema itself that zod-to-json-schema writes for a repeated part (`#/properties/todos/items`).
 */
const inlineRefs = (node: unknown, root: unknown, depth: number): unknown => {
  if (Array.isArray(node)) return node.map((n) => inlineRefs(n, root, depth))
  if (!isRecord(node)) return node
  const ref = node["$ref"]
  if (typeof ref === "string" && !ref.startsWith("#/$defs/")) {
    const { $ref: _, ...rest } = node
    const target = depth < MAX_INLINE ? pointed(root, ref) : undefined
    return isRecord(target)
      ? inlineRefs({ ...target, ...rest }, root, depth + 1)
      : {
        ...rest,
        description: `${typeof rest["description"] === "string" ? `${rest["description"]} ` : ""}(see ${ref})`
      }
  }
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, inlineRefs(v, root, depth)]))
}

const relaxNode = (node: unknown): unknown => {
  // `true` accepts anything, as `{}` does; `false` has no grammar and is left for the engine to refuse
  if (node === true) return {}
  if (!isRecord(node)) return node
  const out: Record<string, unknown> = {}
  const dropped: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(node)) {
    // inlined already
    if (key === "definitions") continue
    if (ANNOTATIONS.has(key)) out[key] = value
    else if (!ENFORCED.has(key)) dropped[key] = value
    else if (key === "format" && (typeof value !== "string" || !FORMATS.has(value))) dropped[key] = value
    else if (key === "type" && Array.isArray(value) && value.some((t) => t === "object" || t === "array")) {
      // a list with a composite type: the alternatives as anyOf, which the grammar takes
      out["anyOf"] = value.filter((t) => typeof t === "string" && TYPES.has(t)).map((t) => ({ type: t }))
    } else if (SCHEMA_MAPS.has(key) && isRecord(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([k, s]) => [k, relaxNode(s)]))
    } else if (SCHEMA_LISTS.has(key) && Array.isArray(value)) out[key] = value.map(relaxNode)
    else if (key === "items" || (key === "additionalProperties" && typeof value !== "boolean")) {
      out[key] = relaxNode(value)
    } else out[key] = value
  }
  // both would be one alternation; keep the first
  if ("anyOf" in out && "oneOf" in out) {
    dropped["oneOf"] = out["oneOf"]
    delete out["oneOf"]
  }
  if (Object.keys(dropped).length > 0) {
    const description = typeof out["description"] === "string" ? `${out["description"]} ` : ""
    out["description"] = `${description}(${note(dropped)})`
  }
  return out
}

/** A tool's input schema with what the grammar cannot enforce moved into descriptions. */
export const relaxSchema = (schema: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> =>
  relaxNode(inlineRefs(schema, schema, 0)) as Record<string, unknown>
