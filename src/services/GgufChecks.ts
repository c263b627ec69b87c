import type { GgufHeader, GgufValue } from "./GgufReader.js"

/**
 * Checks a header against what llama.cpp asserts while it loads a model. A failed GGML_ASSERT
 * (or an uncaught std::out_of_range) aborts the whole process, so a file that would trip one must
 * be refused before llama.cpp sees it; what llama.cpp rejects with a C++ exception it reports
 * itself (node-llama-cpp turns those into rejected promises), and is not repeated here.
 * The sources: src/llama-model.cpp (`load_hparams`), src/llama-vocab.cpp (`load`), from the
 * llama.cpp node-llama-cpp bundles.
 */

// src/llama-hparams.h
const LLAMA_MAX_LAYERS = 512
// src/llama-model.cpp LLAMA_ROPE_SCALING_TYPES; any other name fails an assert
const ROPE_SCALING_TYPES = new Set(["none", "linear", "yarn", "longrope"])
// recurrent architectures legitimately have no attention heads
const RECURRENT = /mamba|rwkv/

const numbersOf = (value: GgufValue | undefined): ReadonlyArray<number> | undefined => {
  if (value === undefined) return undefined
  if (typeof value === "number") return [value]
  if (typeof value === "bigint") return [Number(value)]
  if (typeof value === "object" && value.values !== undefined) {
    return value.values.map((v) => (typeof v === "bigint" ? Number(v) : typeof v === "number" ? v : Number.NaN))
  }
  return undefined
}

/** Why llama.cpp would abort on this model, or undefined when nothing it asserts is violated. */
export const abortReason = (header: GgufHeader): string | undefined => {
  const meta = header.metadata
  const architecture = meta.get("general.architecture")
  if (typeof architecture !== "string") return undefined // llama.cpp refuses it with an exception
  const key = (name: string) => `${architecture}.${name}`

  const blocks = numbersOf(meta.get(key("block_count")))?.[0]
  if (blocks !== undefined && !(blocks >= 1 && blocks <= LLAMA_MAX_LAYERS)) {
    return `${key("block_count")} is ${blocks}; llama.cpp needs 1 to ${LLAMA_MAX_LAYERS} layers`
  }
  const embedding = numbersOf(meta.get(key("embedding_length")))?.[0]
  if (embedding !== undefined && !(embedding >= 1)) {
    return `${key("embedding_length")} is ${embedding}; it must be at least 1`
  }

  if (!RECURRENT.test(architecture)) {
    const heads = meta.get(key("attention.head_count"))
    const kvHeads = meta.get(key("attention.head_count_kv"))
    // a per-layer array may hold 0 for layers without attention (hybrid models); a scalar may not
    for (const [name, value] of [["attention.head_count", heads], ["attention.head_count_kv", kvHeads]] as const) {
      const n = numbersOf(value)
      if (n === undefined) continue
      if (typeof value !== "object" ? !(n[0]! >= 1) : n.every((h) => !(h >= 1))) {
        return `${key(name)} is ${n.join(", ")}; a model with attention needs at least 1 head`
      }
    }
    const h = typeof heads === "object" ? undefined : numbersOf(heads)?.[0]
    const kv = typeof kvHeads === "object" ? undefined : numbersOf(kvHeads)?.[0]
    if (h !== undefined && kv !== undefined && h % kv !== 0) {
      return `${key("attention.head_count")} ${h} is not a multiple of ${key("attention.head_count_kv")} ${kv}`
    }
  }

  const scaling = meta.get(key("rope.scaling.type"))
  if (typeof scaling === "string" && !ROPE_SCALING_TYPES.has(scaling)) {
    return `${key("rope.scaling.type")} '${scaling}' is not one llama.cpp knows (${[...ROPE_SCALING_TYPES].join(", ")})`
  }

  return vocabularyProblem(header)
}

/**
 * llama.cpp maps token texts to ids and asserts the map is as large as the list: two tokens
 * with the same text abort the load. One empty text is common (Llama 2's token 30143); several
 * collide like any other duplicate.
 */
const vocabularyProblem = (header: GgufHeader): string | undefined => {
  const list = header.metadata.get("tokenizer.ggml.tokens")
  if (list === undefined) return undefined
  if (typeof list !== "object" || list.values === undefined) return "tokenizer.ggml.tokens is not an array of strings"
  if (list.length === 0) return "the vocabulary (tokenizer.ggml.tokens) is empty"
  const seen = new Set<string>()
  for (let i = 0; i < list.values.length; i++) {
    const token = list.values[i]
    if (typeof token !== "string") return "tokenizer.ggml.tokens is not an array of strings"
    // texts that are not valid UTF-8 decode alike here although their bytes differ: not compared
    if (token.includes("\uFFFD")) continue
    if (seen.has(token)) return `token ${i} of the vocabulary, ${JSON.stringify(token)}, appears twice`
    seen.add(token)
  }
  // an SPM vocabulary's newline is looked up as a byte token with std::map::at when the model
  // loads (measured: renaming only <0x0A> aborts the load; the other byte tokens are looked up
  // when text needs them, which the vocabulary guard prevents)
  if (header.metadata.get("tokenizer.ggml.model") === "llama" && !seen.has("<0x0A>") && !seen.has("\n")) {
    return "the SPM vocabulary has no newline token (<0x0A> or \"\\n\"), which llama.cpp looks up when it loads"
  }
  return undefined
}

/** Whether the first file's tensors lie inside it (a cut-off download, a file overwritten in place). */
export const truncation = (header: GgufHeader): string | undefined => {
  for (const tensor of header.tensors) {
    const end = header.dataOffset + tensor.offset + tensor.bytes
    if (end > header.fileSize) {
      return `truncated: tensor '${tensor.name}' ends at byte ${end}, beyond the end of the file (${header.fileSize} bytes)`
    }
  }
  return undefined
}
