import { Data, Effect } from "effect"
import * as fs from "node:fs/promises"

/**
 * A GGUF header reader bounded in time and memory for any input. Every length and count is
 * checked against the bytes left in the file and against caps before anything is allocated or
 * looped over, so a header that lies (a string length past the end, an array of 2^60 elements)
 * fails with a reason instead of spinning and growing memory (node-llama-cpp's reader does both).
 * Only the header is read, through a file handle, in chunks; the weights are never touched.
 */

export class GgufError extends Data.TaggedError("GgufError")<{ readonly reason: string }> {}

/** GGUF value types (gguf.h `enum gguf_type`). */
const T = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12
} as const

const SCALAR_BYTES: Record<number, number> = {
  [T.UINT8]: 1,
  [T.INT8]: 1,
  [T.UINT16]: 2,
  [T.INT16]: 2,
  [T.UINT32]: 4,
  [T.INT32]: 4,
  [T.FLOAT32]: 4,
  [T.BOOL]: 1,
  [T.UINT64]: 8,
  [T.INT64]: 8,
  [T.FLOAT64]: 8
}

/**
 * ggml's types by id: [name, elements per block, bytes per block] (ggml.c `type_traits`, sizes
 * from ggml-common.h). Ids 4, 5, 31-33 and 36-38 were removed from GGUF files.
 */
const GGML_TYPES: Record<number, readonly [string, number, number]> = {
  0: ["F32", 1, 4],
  1: ["F16", 1, 2],
  2: ["Q4_0", 32, 18],
  3: ["Q4_1", 32, 20],
  6: ["Q5_0", 32, 22],
  7: ["Q5_1", 32, 24],
  8: ["Q8_0", 32, 34],
  9: ["Q8_1", 32, 36],
  10: ["Q2_K", 256, 84],
  11: ["Q3_K", 256, 110],
  12: ["Q4_K", 256, 144],
  13: ["Q5_K", 256, 176],
  14: ["Q6_K", 256, 210],
  15: ["Q8_K", 256, 292],
  16: ["IQ2_XXS", 256, 66],
  17: ["IQ2_XS", 256, 74],
  18: ["IQ3_XXS", 256, 98],
  19: ["IQ1_S", 256, 50],
  20: ["IQ4_NL", 32, 18],
  21: ["IQ3_S", 256, 110],
  22: ["IQ2_S", 256, 82],
  23: ["IQ4_XS", 256, 136],
  24: ["I8", 1, 1],
  25: ["I16", 1, 2],
  26: ["I32", 1, 4],
  27: ["I64", 1, 8],
  28: ["F64", 1, 8],
  29: ["IQ1_M", 256, 56],
  30: ["BF16", 1, 2],
  34: ["TQ1_0", 256, 54],
  35: ["TQ2_0", 256, 66],
  39: ["MXFP4", 32, 17],
  40: ["NVFP4", 64, 36],
  41: ["Q1_0", 128, 18],
  42: ["Q2_0", 64, 18]
}

/** The name of a ggml tensor type. */
export const ggmlTypeName = (type: number): string | undefined => GGML_TYPES[type]?.[0]

// Caps far above any real model (Llama 3's header with its 128k tokens and 280k merges is
// ~10 MB; the largest real vocabularies are ~260k tokens) and low enough that a lying header
// cannot make the reader hold more than a few hundred MB.
const MAX_HEADER_BYTES = 256 * 1024 * 1024
const MAX_STRING_BYTES = 16 * 1024 * 1024
const MAX_ARRAY_LENGTH = 16 * 1024 * 1024
const MAX_KV = 1 << 20
const MAX_TENSORS = 1 << 20
// gguf.cpp: GGML_MAX_NAME and GGML_MAX_DIMS
const MAX_TENSOR_NAME = 63
const MAX_DIMS = 4
// numeric arrays up to this length are kept (per-layer hyperparameters); longer ones are skipped
const KEEP_NUMBERS = 4096
const CHUNK = 1024 * 1024

export type GgufScalar = number | bigint | boolean | string

/** An array value; `values` holds its elements where they were kept (see `keepStrings`). */
export interface GgufArray {
  readonly _tag: "Array"
  readonly type: number
  readonly length: number
  readonly values: ReadonlyArray<GgufScalar> | undefined
}

export type GgufValue = GgufScalar | GgufArray

export interface GgufTensor {
  readonly name: string
  /** ggml order: dimensions[0] is the row length */
  readonly dimensions: ReadonlyArray<number>
  readonly type: number
  /** from the start of the data section */
  readonly offset: number
  readonly bytes: number
}

export interface GgufHeader {
  readonly version: number
  readonly metadata: ReadonlyMap<string, GgufValue>
  readonly tensors: ReadonlyArray<GgufTensor>
  /** where the data section starts in the file */
  readonly dataOffset: number
  readonly fileSize: number
}

/** Arrays of strings whose elements are decoded; every other string array is skipped over. */
const keepStrings = new Set(["tokenizer.ggml.tokens"])

const fail = (reason: string) => new GgufError({ reason })

/** Sequential reads through a file handle, a chunk at a time, never past `limit`. */
class Cursor {
  private buffer = Buffer.alloc(0)
  private start = 0 // file position of buffer[0]
  position = 0
  // ignoreBOM keeps a leading U+FEFF: Llama 2 has it as a token of its own
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true })

  constructor(private readonly handle: fs.FileHandle, readonly limit: number) {}

  get left() {
    return this.limit - this.position
  }

  /** Whether `n` bytes at `position` are in the buffer (the hot loops skip the await then). */
  has(n: number) {
    return this.position + n <= this.start + this.buffer.length
  }

  /** Makes `n` bytes at `position` available, or fails saying what `what` claimed. */
  async need(n: number, what: string): Promise<void> {
    if (n > this.left) throw fail(`${what} needs ${n} bytes at offset ${this.position}, but only ${this.left} are left`)
    if (this.has(n)) return
    const size = Math.min(Math.max(n, CHUNK), this.limit - this.position)
    const next = Buffer.allocUnsafe(size)
    const { bytesRead } = await this.handle.read(next, 0, size, this.position)
    if (bytesRead < n) throw fail(`${what}: the file ended at offset ${this.position + bytesRead}`)
    this.buffer = next.subarray(0, bytesRead)
    this.start = this.position
  }

  private at() {
    return this.position - this.start
  }

  async u32(what: string) {
    await this.need(4, what)
    const v = this.buffer.readUInt32LE(this.at())
    this.position += 4
    return v
  }

  /** A u64 that must fit a JS number (every real count and offset does). */
  async u64(what: string) {
    await this.need(8, what)
    const v = this.buffer.readBigUInt64LE(this.at())
    this.position += 8
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(`${what} is ${v}, beyond any file`)
    return Number(v)
  }

  /** A string's length, checked; synchronous when the buffer holds it. */
  private stringLength(what: string, max: number): number | Promise<number> {
    if (!this.has(8)) return this.u64(`${what}'s length`).then((n) => this.checkLength(n, what, max))
    const v = this.buffer.readBigUInt64LE(this.at())
    this.position += 8
    return this.checkLength(v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v), what, max)
  }

  private checkLength(length: number, what: string, max: number) {
    if (length > this.left) {
      throw fail(`${what} needs ${length} bytes at offset ${this.position}, but only ${this.left} are left`)
    }
    if (length > max) throw fail(`${what} is ${length} bytes long (at most ${max})`)
    return length
  }

  /**
   * The next string when the buffer holds all of it and it is within `max`; otherwise undefined,
   * with nothing consumed (`string` then reads or fails). Keeps the vocabulary loops synchronous.
   */
  tryString(max: number, decode: boolean): string | undefined {
    if (!this.has(8)) return undefined
    const v = this.buffer.readBigUInt64LE(this.at())
    if (v > BigInt(max)) return undefined
    const length = Number(v)
    if (!this.has(8 + length)) return undefined
    const from = this.at() + 8
    this.position += 8 + length
    return decode ? this.decoder.decode(this.buffer.subarray(from, from + length)) : ""
  }

  async string(what: string, max = MAX_STRING_BYTES) {
    const pending = this.stringLength(what, max)
    const length = typeof pending === "number" ? pending : await pending
    if (!this.has(length)) await this.need(length, what)
    const s = this.decoder.decode(this.buffer.subarray(this.at(), this.at() + length))
    this.position += length
    return s
  }

  async skipString(what: string) {
    const pending = this.stringLength(what, MAX_STRING_BYTES)
    // read the length before `position`: `position += await ...` would add to the stale value
    const length = typeof pending === "number" ? pending : await pending
    this.position += length
  }

  async scalar(type: number, what: string): Promise<GgufScalar> {
    if (type === T.STRING) return this.string(what)
    const bytes = SCALAR_BYTES[type]
    if (bytes === undefined) throw fail(`${what} has unknown value type ${type}`)
    await this.need(bytes, what)
    const b = this.buffer
    const i = this.at()
    this.position += bytes
    switch (type) {
      case T.UINT8:
        return b.readUInt8(i)
      case T.INT8:
        return b.readInt8(i)
      case T.UINT16:
        return b.readUInt16LE(i)
      case T.INT16:
        return b.readInt16LE(i)
      case T.UINT32:
        return b.readUInt32LE(i)
      case T.INT32:
        return b.readInt32LE(i)
      case T.FLOAT32:
        return b.readFloatLE(i)
      case T.BOOL:
        return b.readUInt8(i) !== 0
      case T.UINT64:
        return b.readBigUInt64LE(i)
      case T.INT64:
        return b.readBigInt64LE(i)
      default:
        return b.readDoubleLE(i)
    }
  }

  skip(n: number) {
    this.position += n
  }
}

const readArray = async (cursor: Cursor, key: string): Promise<GgufArray> => {
  const type = await cursor.u32(`${key}'s element type`)
  const length = await cursor.u64(`${key}'s length`)
  if (length > MAX_ARRAY_LENGTH) throw fail(`${key} claims ${length} elements (at most ${MAX_ARRAY_LENGTH})`)
  if (type === T.ARRAY) throw fail(`${key} is an array of arrays, which GGUF does not allow`)
  // a string takes at least its 8-byte length
  const least = type === T.STRING ? 8 : SCALAR_BYTES[type]
  if (least === undefined) throw fail(`${key} has unknown element type ${type}`)
  if (length * least > cursor.left) {
    throw fail(`${key} claims ${length} elements, more than the ${cursor.left} bytes left in the file can hold`)
  }
  if (type === T.STRING) {
    if (!keepStrings.has(key)) {
      for (let i = 0; i < length; i++) {
        if (cursor.tryString(MAX_STRING_BYTES, false) === undefined) await cursor.skipString(`${key}[${i}]`)
      }
      return { _tag: "Array", type, length, values: undefined }
    }
    const values: Array<string> = new Array(length)
    for (let i = 0; i < length; i++) {
      values[i] = cursor.tryString(MAX_STRING_BYTES, true) ?? await cursor.string(`${key}[${i}]`)
    }
    return { _tag: "Array", type, length, values }
  }
  if (length > KEEP_NUMBERS) {
    cursor.skip(length * least)
    return { _tag: "Array", type, length, values: undefined }
  }
  const values: Array<GgufScalar> = new Array(length)
  for (let i = 0; i < length; i++) values[i] = await cursor.scalar(type, `${key}[${i}]`)
  return { _tag: "Array", type, length, values }
}

const parse = async (handle: fs.FileHandle, fileSize: number): Promise<GgufHeader> => {
  const cursor = new Cursor(handle, Math.min(fileSize, MAX_HEADER_BYTES))
  await cursor.need(4, "the magic number")
  const magic = await cursor.u32("the magic number")
  if (magic !== 0x46554747) throw fail("not a GGUF file (no GGUF magic number)")
  const version = await cursor.u32("the version")
  if (version !== 2 && version !== 3) throw fail(`GGUF version ${version} is not supported (2 and 3 are)`)
  const tensorCount = await cursor.u64("the tensor count")
  const kvCount = await cursor.u64("the metadata count")
  if (kvCount > MAX_KV) throw fail(`the header claims ${kvCount} metadata entries (at most ${MAX_KV})`)
  if (tensorCount > MAX_TENSORS) throw fail(`the header claims ${tensorCount} tensors (at most ${MAX_TENSORS})`)

  const metadata = new Map<string, GgufValue>()
  for (let i = 0; i < kvCount; i++) {
    const key = await cursor.string(`metadata key ${i}`, 65_535)
    if (metadata.has(key)) throw fail(`metadata key '${key}' appears twice`)
    const type = await cursor.u32(`${key}'s type`)
    metadata.set(key, type === T.ARRAY ? await readArray(cursor, key) : await cursor.scalar(type, key))
  }

  const alignmentValue = metadata.get("general.alignment") ?? 32
  if (typeof alignmentValue !== "number" || alignmentValue <= 0 || (alignmentValue & (alignmentValue - 1)) !== 0) {
    throw fail(`general.alignment must be a power of 2, not ${String(alignmentValue)}`)
  }
  const alignment = alignmentValue

  const tensors: Array<GgufTensor> = []
  const names = new Set<string>()
  let expected = 0
  for (let i = 0; i < tensorCount; i++) {
    const name = await cursor.string(`tensor ${i}'s name`, MAX_TENSOR_NAME)
    if (names.has(name)) throw fail(`tensor '${name}' appears twice`)
    names.add(name)
    const dims = await cursor.u32(`tensor '${name}''s dimension count`)
    if (dims > MAX_DIMS) throw fail(`tensor '${name}' has ${dims} dimensions (at most ${MAX_DIMS})`)
    const dimensions: Array<number> = []
    let elements = 1
    for (let d = 0; d < dims; d++) {
      const n = await cursor.u64(`tensor '${name}''s dimension ${d}`)
      dimensions.push(n)
      elements *= n
    }
    const type = await cursor.u32(`tensor '${name}''s type`)
    const traits = GGML_TYPES[type]
    if (traits === undefined) throw fail(`tensor '${name}' has unknown type ${type}`)
    const [typeName, block, blockBytes] = traits
    if ((dimensions[0] ?? 1) % block !== 0) {
      throw fail(`tensor '${name}' has rows of ${dimensions[0]}, not a multiple of ${typeName}'s block of ${block}`)
    }
    const bytes = (elements / block) * blockBytes
    if (!Number.isSafeInteger(bytes)) throw fail(`tensor '${name}' is impossibly large`)
    const offset = await cursor.u64(`tensor '${name}''s offset`)
    // gguf.cpp: tensors lie one after the other, each padded to the alignment
    if (offset !== expected) throw fail(`tensor '${name}' has offset ${offset}, expected ${expected}`)
    expected += Math.ceil(bytes / alignment) * alignment
    tensors.push({ name, dimensions, type, offset, bytes })
  }
  const dataOffset = Math.ceil(cursor.position / alignment) * alignment
  return { version, metadata, tensors, dataOffset, fileSize }
}

/** Reads the header of a GGUF file (one part of a split model). */
export const readGgufHeader = Effect.fn("GgufReader.readGgufHeader")(function*(path: string) {
  return yield* Effect.acquireUseRelease(
    Effect.tryPromise({
      try: () => fs.open(path, "r"),
      catch: (cause) => fail(`cannot open the file: ${cause instanceof Error ? cause.message : String(cause)}`)
    }),
    (handle) =>
      Effect.tryPromise({
        try: async () => parse(handle, (await handle.stat()).size),
        catch: (cause) =>
          cause instanceof GgufError
            ? cause
            : fail(`cannot read the file: ${cause instanceof Error ? cause.message : String(cause)}`)
      }),
    (handle) => Effect.promise(() => handle.close())
  )
})
