import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/** A fresh directory of the test's own, under the OS temp directory. */
export const freshDir = (prefix: string): string => fs.mkdtempSync(path.join(os.tmpdir(), `shimmy-${prefix}-`))

/**
 * The environment and working directory for a `shimmy` child process: nothing of the developer's
 * (no SHIMMY_* settings, no HF_* or OLLAMA_MODELS), a home of its own (so ~/.cache/huggingface,
 * ~/.ollama and LM Studio's folders are empty), and a working directory of its own (so `./models`
 * is empty): stray models anywhere on the machine never reach a test.
 */
export const hermetic = (prefix: string, env: Record<string, string> = {}) => {
  const cwd = freshDir(prefix)
  return {
    cwd,
    env: {
      PATH: process.env["PATH"] ?? "",
      HOME: cwd,
      SHIMMY_THREADS: "1",
      ...env
    } as Record<string, string>
  }
}
