import { type Gguf, readGguf, type Value, writeGguf } from "./gguf.js"

/**
 * A GGUF split into `count` files as llama.cpp's gguf-split writes them: every file a GGUF with
 * `split.no`, `split.count`, `split.tensors.count`; the first holds all the metadata; the tensors
 * (and their bytes) are dealt out in order. The parts of a real model, so llama.cpp loads them.
 */
export const splitGguf = (file: string, count: number): ReadonlyArray<Buffer> => {
  const source = readGguf(file)
  const tensors = [...source.tensors].sort((a, b) => Number(a.offset - b.offset))
  const per = Math.ceil(tensors.length / count)
  const u16 = (value: number): Value => ({ type: "u16", value })
  const splitKeys = (no: number): Array<[string, Value]> => [
    ["split.no", u16(no)],
    ["split.count", u16(count)],
    ["split.tensors.count", { type: "i32", value: tensors.length }]
  ]
  const alignment = source.metadata.get("general.alignment")
  return Array.from({ length: count }, (_, no) => {
    const mine = tensors.slice(no * per, (no + 1) * per)
    const slices: Array<Buffer> = []
    let offset = 0n
    const placed = mine.map((t) => {
      const index = tensors.indexOf(t)
      const end = tensors[index + 1]?.offset ?? BigInt(source.data.length)
      const bytes = source.data.subarray(Number(t.offset), Number(end))
      slices.push(bytes)
      const at = offset
      offset += BigInt(bytes.length)
      return { ...t, offset: at }
    })
    const metadata = new Map<string, Value>(
      no === 0
        ? [...source.metadata, ...splitKeys(0)]
        : [...(alignment !== undefined ? [["general.alignment", alignment] as [string, Value]] : []), ...splitKeys(no)]
    )
    const part: Gguf = { version: source.version, metadata, tensors: placed, data: Buffer.concat(slices) }
    return writeGguf(part)
  })
}
