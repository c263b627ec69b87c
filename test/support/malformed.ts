import * as fs from "node:fs"
import * as path from "node:path"
import { firstTensorNameAt, readGguf, type Value, withMetadata, writeGguf } from "./gguf.js"
import { sharedModel } from "./models.js"

/**
 * stories260K made wrong in one way each: files whose plausible metadata made llama.cpp abort the
 * process (each checked once without the guards, in a child process), and headers that made
 * node-llama-cpp's header reader spin. `reason` is what `shimmy list` must say about each.
 */
export interface Malformed {
  readonly name: string
  readonly reason: RegExp
}

const u32 = (value: number): Value => ({ type: "u32", value })

export const writeMalformed = (dir: string): ReadonlyArray<Malformed> => {
  const stories = readGguf(sharedModel("stories260K.gguf"))
  const tokens = stories.metadata.get("tokenizer.ggml.tokens")
  if (tokens?.type !== "array") throw new Error("stories260K has no token list")
  const list = tokens.value as ReadonlyArray<string>
  const write = (name: string, bytes: Buffer) => fs.writeFileSync(path.join(dir, `${name}.gguf`), bytes)
  const variant = (name: string, changes: Record<string, Value | undefined>) =>
    write(name, writeGguf(withMetadata(stories, changes)))

  variant("heads-0", { "llama.attention.head_count": u32(0) })
  variant("kv-heads-0", { "llama.attention.head_count_kv": u32(0) })
  variant("blocks-0", { "llama.block_count": u32(0) })
  variant("blocks-1000", { "llama.block_count": u32(1000) })
  variant("empty-vocab", { "tokenizer.ggml.tokens": { type: "array", element: 8, value: list.map(() => "") } })
  // <0x0A> becomes <0x0a>: no byte token for any byte is found by the name llama.cpp looks up
  variant("renamed-bytes", {
    "tokenizer.ggml.tokens": {
      type: "array",
      element: 8,
      value: list.map((t) => /^<0x[0-9A-F]{2}>$/.test(t) ? t.toLowerCase() : t)
    }
  })

  const good = writeGguf(stories)
  // the first tensor's name claims 10^9 bytes (node-llama-cpp's reader grew to 1 GB on it)
  const longName = Buffer.from(good)
  longName.writeBigUInt64LE(1_000_000_000n, firstTensorNameAt(longName, stories.tensors[0]!.name))
  write("name-past-end", longName)
  // the scores array claims 2^40 elements
  const hugeArray = Buffer.from(good)
  const scores = hugeArray.indexOf(Buffer.from("tokenizer.ggml.scores")) + "tokenizer.ggml.scores".length
  hugeArray.writeBigUInt64LE(1n << 40n, scores + 4 + 4)
  write("huge-array", hugeArray)

  return [
    { name: "heads-0", reason: /head_count is 0/ },
    { name: "kv-heads-0", reason: /head_count_kv is 0/ },
    { name: "blocks-0", reason: /block_count is 0/ },
    { name: "blocks-1000", reason: /block_count is 1000/ },
    { name: "empty-vocab", reason: /appears twice/ },
    { name: "renamed-bytes", reason: /no newline token/ },
    { name: "name-past-end", reason: /tensor 0's name needs 1000000000 bytes/ },
    { name: "huge-array", reason: /tokenizer\.ggml\.scores claims 1099511627776 elements/ }
  ]
}
