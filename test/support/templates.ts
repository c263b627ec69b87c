import { execFile } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/**
 * Synthetic chat models for tool and thinking tests: `chat-tiny`'s random weights with a real
 * tokenizer and a real family's chat template from `../shared/models` (made by make-model.mjs).
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const shared = (...parts: Array<string>) => path.resolve(repoRoot, "../shared", ...parts)

/** A family's vocabulary and template. */
export const TEMPLATE_MODELS = {
  qwen25: ["ggml-vocab-qwen2.gguf", "Qwen-Qwen2.5-7B-Instruct.jinja"],
  llama31: ["ggml-vocab-llama-bpe.gguf", "meta-llama-Llama-3.1-8B-Instruct.jinja"],
  qwen3: ["ggml-vocab-qwen2.gguf", "Qwen-Qwen3-0.6B.jinja"],
  r1: ["ggml-vocab-qwen2.gguf", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"],
  // gpt-oss's o200k vocabulary is not among the shared ones; its harmony markers become text
  gptoss: ["ggml-vocab-llama-bpe.gguf", "openai-gpt-oss-120b.jinja"]
} as const

export type TemplateFamily = keyof typeof TEMPLATE_MODELS

/** Runs make-model.mjs with `args`, writing `out`. */
const makeModel = (out: string, args: ReadonlyArray<string>) =>
  new Promise<void>((resolve, reject) =>
    execFile(
      process.execPath,
      [shared("tools/make-model.mjs"), ...args, "--out", out, "--quiet"],
      (e) => (e ? reject(e) : resolve())
    )
  )

const make = (dir: string, name: TemplateFamily) =>
  makeModel(path.join(dir, `${name}.gguf`), [
    "--preset",
    "chat-tiny",
    "--tokenizer-from",
    shared("models/vocab", TEMPLATE_MODELS[name][0]),
    "--chat-template-file",
    shared("models/templates", TEMPLATE_MODELS[name][1])
  ])

/**
 * `endless.gguf` in `dir`: random weights that never sample an end of text, the Llama-2 tokenizer,
 * no chat template, and a 32k-token context, so that an answer runs for half a minute or more
 * (about 900 tokens/s on one thread here) unless it is stopped.
 */
export const makeEndlessModel = (dir: string) =>
  makeModel(path.join(dir, "endless.gguf"), [
    ...["--dim", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--ffn", "128", "--ctx", "32768"],
    ...["--type", "f16", "--no-chat-template", "--name", "endless"]
  ])

/** Writes `<family>.gguf` into `dir` for each family. */
export const makeTemplateModels = (dir: string, families: ReadonlyArray<TemplateFamily>): Promise<void> =>
  Promise.all(families.map((family) => make(dir, family))).then(() => undefined)
