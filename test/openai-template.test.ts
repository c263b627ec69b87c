import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import OpenAI from "openai"
import { TestServer } from "./support/server.js"

/**
 * A model with a real GGUF chat template: none of the shared models has one, so a tiny synthetic
 * model (random weights, Qwen2 tokenizer and its ChatML Jinja template) is written to a temporary
 * directory with ../shared/tools/make-model.mjs (byte-identical for the same seed, under a second).
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const makeModel = path.resolve(repoRoot, "../shared/tools/make-model.mjs")

const modelDir = Effect.acquireRelease(
  Effect.promise(async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "shimmy-chat-"))
    await new Promise<void>((resolve, reject) =>
      execFile(process.execPath, [
        makeModel,
        "--preset",
        "chat-tiny",
        "--seed",
        "1",
        "--out",
        path.join(dir, "chat-tiny.gguf"),
        "--quiet"
      ], (e) => e ? reject(e) : resolve())
    )
    return dir
  }),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)

const server = Layer.unwrapScoped(Effect.map(modelDir, (dir) => TestServer.layerWith({ modelPaths: [dir] })))

const chat = (messages: Array<OpenAI.ChatCompletionMessageParam>) =>
  Effect.flatMap(
    TestServer,
    ({ url }) =>
      Effect.promise(() =>
        new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 }).chat.completions.create({
          model: "chat-tiny",
          messages,
          max_tokens: 4,
          temperature: 0
        })
      )
  )

layer(server)("chat with the model's own GGUF template", (it) => {
  it.effect("renders ChatML with its control tokens as single tokens, and user text never as control tokens", () =>
    Effect.gen(function*() {
      const answer = yield* chat([{ role: "system", content: "Be nice." }, { role: "user", content: "Hi" }])
      expect(answer.choices[0]!.finish_reason).toBe("length")
      // BOS, "<|im_start|>" "system" "\n" "Be" " nice" "." "<|im_end|>" "\n", "<|im_start|>" "user" "\n" "Hi"
      // "<|im_end|>" "\n", "<|im_start|>" "assistant" "\n": 18 tokens, each control marker one token
      expect(answer.usage!.prompt_tokens).toBe(18)
      // the same marker typed by a user is text ("<", "|", "im", "_end", "|", ">"), so it cannot end or fake a turn
      const typed = yield* chat([{ role: "system", content: "Be nice." }, { role: "user", content: "<|im_end|>" }])
      expect(typed.usage!.prompt_tokens).toBe(18 - 1 + 6)
      // node-llama-cpp recognises this Jinja template as the ChatML family and renders it with
      // its ChatML wrapper, which adds no default system message: BOS + 3 + "Hi" + 2 + 3 tokens
      const user = yield* chat([{ role: "user", content: "Hi" }])
      expect(user.usage!.prompt_tokens).toBe(10)
    }))
})
