import type { LlamaContext } from "node-llama-cpp"

// what node-llama-cpp's native sampling gives when it has no token: its generator then throws
// NO_TOKEN_MESSAGE in the generation that asked
const NO_TOKEN = -1

/** The message node-llama-cpp's generator throws when sampling gave `NO_TOKEN`. */
export const NO_TOKEN_MESSAGE = "Failed to sample next token"

interface NativeContext {
  sampleToken: (...args: Array<unknown>) => Promise<unknown>
}

const nativeOf = (context: LlamaContext): NativeContext | undefined => {
  const native = (context as unknown as { readonly _ctx?: unknown })._ctx
  return typeof native === "object" && native !== null && typeof (native as NativeContext).sampleToken === "function"
    ? native as NativeContext
    : undefined
}

/**
 * Makes a failed sampling fail only the generation it belongs to. node-llama-cpp (3.21) samples
 * inside its batch dispatch, and a rejected `sampleToken` escapes that dispatch as an unhandled
 * rejection: the generation's decode never settles, its sequence is never given back, and decodes
 * left queued behind that batch wait until another one is queued. Sampling rejects when the
 * grammar accepts none of the model's tokens (a vocabulary without `{`, or without the characters a
 * schema's constant needs): llama.cpp then samples a token the grammar refuses to accept.
 * A rejection becomes `NO_TOKEN`, which the generator turns into an error for its own caller.
 * Returns false where node-llama-cpp's internals are not what this was written for.
 */
export const guardSampling = (context: LlamaContext): boolean => {
  const native = nativeOf(context)
  if (native === undefined) return false
  const sample = native.sampleToken.bind(native)
  // the binding's methods are read-only properties of its prototype: the instance gets its own
  try {
    Object.defineProperty(native, "sampleToken", {
      value: (...args: Array<unknown>) => sample(...args).catch(() => NO_TOKEN),
      configurable: true
    })
  } catch {
    return false
  }
  return true
}
