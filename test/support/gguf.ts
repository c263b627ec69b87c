import * as fs from "node:fs"

/**
 * A small GGUF reader and writer for tests: reads a trusted file (the shared models) whole, lets a
 * test change its metadata, and writes it back with the same tensor data, so each malformed file
 * differs from a model that loads in exactly one way.
 */

export type Value =
  | {
    readonly type: "u32" | "i32" | "f32" | "u64" | "u8" | "i8" | "u16" | "i16" | "f64" | "i64"
    readonly value: number | bigint
  }
  | { readonly type: "bool"; readonly value: boolean }
  | { readonly type: "string"; readonly value: string }
  | {
    readonly type: "array"
    readonly element: number
    readonly value: ReadonlyArray<number | bigint | boolean | string>
  }

export interface Tensor {
  readonly name: string
  readonly dims: ReadonlyArray<bigint>
  readonly type: number
  readonly offset: bigint
}

export interface Gguf {
  readonly version: number
  readonly metadata: Map<string, Value>
  readonly tensors: Array<Tensor>
  /** the data section, as it was */
  readonly data: Buffer
}

const SCALARS = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"] as const

export const readGguf = (file: string): Gguf => {
  const b = fs.readFileSync(file)
  let p = 0
  const u32 = () => (p += 4, b.readUInt32LE(p - 4))
  const u64 = () => (p += 8, b.readBigUInt64LE(p - 8))
  const str = () => {
    const n = Number(u64())
    p += n
    return b.toString("utf8", p - n, p)
  }
  const scalar = (t: number): number | bigint | boolean | string => {
    switch (SCALARS[t]) {
      case "u8":
        return (p += 1, b.readUInt8(p - 1))
      case "i8":
        return (p += 1, b.readInt8(p - 1))
      case "u16":
        return (p += 2, b.readUInt16LE(p - 2))
      case "i16":
        return (p += 2, b.readInt16LE(p - 2))
      case "u32":
        return u32()
      case "i32":
        return (p += 4, b.readInt32LE(p - 4))
      case "f32":
        return (p += 4, b.readFloatLE(p - 4))
      case "bool":
        return (p += 1, b.readUInt8(p - 1) !== 0)
      case "string":
        return str()
      case "u64":
        return u64()
      case "i64":
        return (p += 8, b.readBigInt64LE(p - 8))
      case "f64":
        return (p += 8, b.readDoubleLE(p - 8))
      default:
        throw new Error(`type ${t}`)
    }
  }
  if (b.toString("latin1", 0, 4) !== "GGUF") throw new Error(`${file} is not a GGUF`)
  p = 4
  const version = u32()
  const tensorCount = Number(u64())
  const kvCount = Number(u64())
  const metadata = new Map<string, Value>()
  for (let i = 0; i < kvCount; i++) {
    const key = str()
    const t = u32()
    if (SCALARS[t] === "array") {
      const element = u32()
      const n = Number(u64())
      const value = Array.from({ length: n }, () => scalar(element))
      metadata.set(key, { type: "array", element, value })
    } else {
      metadata.set(key, { type: SCALARS[t], value: scalar(t) } as Value)
    }
  }
  const tensors: Array<Tensor> = []
  for (let i = 0; i < tensorCount; i++) {
    const name = str()
    const dims = Array.from({ length: u32() }, () => u64())
    tensors.push({ name, dims, type: u32(), offset: u64() })
  }
  const alignment = Number(metadata.get("general.alignment")?.value ?? 32)
  const start = Math.ceil(p / alignment) * alignment
  return { version, metadata, tensors, data: b.subarray(start) }
}

class Writer {
  private readonly parts: Array<Buffer> = []
  length = 0
  push(b: Buffer) {
    this.parts.push(b)
    this.length += b.length
  }
  u32(n: number) {
    const b = Buffer.alloc(4)
    b.writeUInt32LE(n)
    this.push(b)
  }
  u64(n: bigint | number) {
    const b = Buffer.alloc(8)
    b.writeBigUInt64LE(BigInt(n))
    this.push(b)
  }
  str(s: string) {
    const b = Buffer.from(s, "utf8")
    this.u64(b.length)
    this.push(b)
  }
  scalar(t: number, v: number | bigint | boolean | string) {
    const b = Buffer.alloc(8)
    switch (SCALARS[t]) {
      case "u8":
        b.writeUInt8(Number(v))
        return this.push(b.subarray(0, 1))
      case "i8":
        b.writeInt8(Number(v))
        return this.push(b.subarray(0, 1))
      case "u16":
        b.writeUInt16LE(Number(v))
        return this.push(b.subarray(0, 2))
      case "i16":
        b.writeInt16LE(Number(v))
        return this.push(b.subarray(0, 2))
      case "u32":
        b.writeUInt32LE(Number(v))
        return this.push(b.subarray(0, 4))
      case "i32":
        b.writeInt32LE(Number(v))
        return this.push(b.subarray(0, 4))
      case "f32":
        b.writeFloatLE(Number(v))
        return this.push(b.subarray(0, 4))
      case "bool":
        b.writeUInt8(v === true ? 1 : 0)
        return this.push(b.subarray(0, 1))
      case "string":
        return this.str(String(v))
      case "u64":
        b.writeBigUInt64LE(BigInt(v as number))
        return this.push(b)
      case "i64":
        b.writeBigInt64LE(BigInt(v as number))
        return this.push(b)
      case "f64":
        b.writeDoubleLE(Number(v))
        return this.push(b)
      default:
        throw new Error(`type ${t}`)
    }
  }
  concat() {
    return Buffer.concat(this.parts)
  }
}

/** The bytes of a GGUF; the data section is written as it was read. */
export const writeGguf = (gguf: Gguf): Buffer => {
  const w = new Writer()
  w.push(Buffer.from("GGUF", "latin1"))
  w.u32(gguf.version)
  w.u64(gguf.tensors.length)
  w.u64(gguf.metadata.size)
  for (const [key, v] of gguf.metadata) {
    w.str(key)
    const t = SCALARS.indexOf(v.type)
    w.u32(t)
    if (v.type === "array") {
      w.u32(v.element)
      w.u64(v.value.length)
      for (const e of v.value) w.scalar(v.element, e)
    } else {
      w.scalar(t, v.value)
    }
  }
  for (const t of gguf.tensors) {
    w.str(t.name)
    w.u32(t.dims.length)
    for (const d of t.dims) w.u64(d)
    w.u32(t.type)
    w.u64(t.offset)
  }
  const alignment = Number(gguf.metadata.get("general.alignment")?.value ?? 32)
  w.push(Buffer.alloc(Math.ceil(w.length / alignment) * alignment - w.length))
  w.push(gguf.data)
  return w.concat()
}

/** A copy of `source` with some metadata set (or, for `undefined`, removed). */
export const withMetadata = (source: Gguf, changes: Record<string, Value | undefined>): Gguf => {
  const metadata = new Map(source.metadata)
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) metadata.delete(key)
    else metadata.set(key, value)
  }
  return { ...source, metadata }
}

/** The offset of the length field of the first tensor's name in a written GGUF. */
export const firstTensorNameAt = (bytes: Buffer, name: string): number => bytes.indexOf(Buffer.from(name, "utf8")) - 8
