import type { ModelInfo } from "../domain/Model.js"
import { formatBytes } from "../Format.js"

export const count = (n: number | undefined): string => {
  if (n === undefined) return "-"
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)}K`
  return String(n)
}

/** A plain-text table, columns padded to their widest cell. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")
  return [line(header), ...rows.map(line)].join("\n")
}

export const modelRow = (m: ModelInfo): ReadonlyArray<string> => [
  m.name,
  formatBytes(m.sizeBytes),
  m.architecture ?? "-",
  count(m.parameters),
  m.quantization ?? "-",
  m.contextLength === undefined ? "-" : String(m.contextLength),
  m.status,
  m.source,
  m.path
]

export const modelHeader = ["NAME", "SIZE", "ARCH", "PARAMS", "QUANT", "CONTEXT", "STATUS", "SOURCE", "PATH"]
