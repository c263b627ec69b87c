/**
 * Validates a JSON value against the JSON Schema subset that `toGbnfSchema` accepts (the keywords
 * node-llama-cpp's grammar enforces). node-llama-cpp's own validator measures strings in UTF-16
 * units while its grammar (and JSON Schema) counts characters, so a grammar-made "🌸" would fail
 * its `maxLength`; lengths here are counted in code points.
 */

type Schema = Readonly<Record<string, unknown>>

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const equal = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]))
  if (isRecord(a) && isRecord(b)) {
    const keys = Object.keys(a)
    return keys.length === Object.keys(b).length && keys.every((k) => k in b && equal(a[k], b[k]))
  }
  return false
}

const FORMATS: Record<string, RegExp> = {
  "date": /^\d{4}-\d{2}-\d{2}$/,
  "time": /^\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/,
  "date-time": /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/
}

const typeMatches = (type: unknown, value: unknown): boolean => {
  switch (type) {
    case "string":
      return typeof value === "string"
    case "number":
      return typeof value === "number" && Number.isFinite(value)
    case "integer":
      return typeof value === "number" && Number.isInteger(value)
    case "boolean":
      return typeof value === "boolean"
    case "null":
      return value === null
    case "object":
      return isRecord(value)
    case "array":
      return Array.isArray(value)
    default:
      return false
  }
}

const num = (value: unknown): number | undefined => (typeof value === "number" ? value : undefined)

/** Whether `value` validates against `schema`; `$ref`s resolve in the root's `$defs`. */
export const validateJson = (schema: unknown, value: unknown): boolean => {
  const root = isRecord(schema) ? schema : {}
  const defs = isRecord(root.$defs) ? root.$defs : {}
  const visit = (node: unknown, v: unknown, depth: number): boolean => {
    if (depth > 64 || !isRecord(node)) return false
    const s: Schema = node
    if (typeof s.$ref === "string") return visit(defs[s.$ref.slice("#/$defs/".length)], v, depth + 1)
    if ("const" in s && !equal(s.const, v)) return false
    if (Array.isArray(s.enum) && !s.enum.some((e) => equal(e, v))) return false
    if (Array.isArray(s.oneOf) && !s.oneOf.some((alt) => visit(alt, v, depth + 1))) return false
    if (s.type !== undefined) {
      const types = Array.isArray(s.type) ? s.type : [s.type]
      if (!types.some((t) => typeMatches(t, v))) return false
    }
    if (typeof v === "string") {
      const length = [...v].length
      if (length < (num(s.minLength) ?? 0) || length > (num(s.maxLength) ?? Infinity)) return false
      if (typeof s.format === "string" && FORMATS[s.format] !== undefined && !FORMATS[s.format]!.test(v)) return false
    }
    if (Array.isArray(v)) {
      const prefix = Array.isArray(s.prefixItems) ? s.prefixItems : []
      if (v.length < Math.max(num(s.minItems) ?? 0, prefix.length) || v.length > (num(s.maxItems) ?? Infinity)) {
        return false
      }
      for (const [i, item] of v.entries()) {
        const itemSchema = i < prefix.length ? prefix[i] : s.items
        if (itemSchema !== undefined && !visit(itemSchema, item, depth + 1)) return false
      }
    }
    if (isRecord(v)) {
      const properties = isRecord(s.properties) ? s.properties : {}
      const keys = Object.keys(v)
      if (keys.length < (num(s.minProperties) ?? 0) || keys.length > (num(s.maxProperties) ?? Infinity)) return false
      if (Array.isArray(s.required) && !s.required.every((k) => typeof k === "string" && k in v)) return false
      for (const key of keys) {
        if (key in properties) {
          if (!visit(properties[key], v[key], depth + 1)) return false
        } else if (s.additionalProperties === false) {
          return false
        } else if (isRecord(s.additionalProperties) && !visit(s.additionalProperties, v[key], depth + 1)) {
          return false
        }
      }
    }
    return true
  }
  return visit(root, value, 0)
}
