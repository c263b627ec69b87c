import * as v8 from "node:v8"
import * as vm from "node:vm"

/**
 * Native memory that only V8's garbage collector gives back, and a budget that asks for a
 * collection when enough of it has piled up.
 *
 * node-llama-cpp makes a sampler for every evaluation, and its native half holds a candidates
 * array of the vocabulary's size (12 bytes a token: 384 KiB for 32k tokens, 1.5 MiB for 128k)
 * until the JS wrapper is collected; disposing the sampler does not free it, and V8 is not told
 * the memory exists. Under load V8 sees little reason for a full collection, so a server with
 * 64 streaming clients was measured swinging between 420 and 890 MiB RSS, almost all of it these
 * arrays (heaptrack); with a collection every 64 MiB of them it holds 260-330 MiB (BENCHMARKS.md).
 */
export interface NativeGarbage {
  /** `bytes` of native memory became garbage that only a collection frees. */
  readonly add: (bytes: number) => void
  /** Collections asked for so far. */
  readonly collections: () => number
}

/** The bytes of native garbage one evaluation leaves for a vocabulary of `tokens` tokens. */
export const samplerGarbage = (tokens: number): number => tokens * 12

/**
 * V8's `gc`, exposed for this process without a command-line flag (the flag is set, the function
 * taken from a fresh context, and the flag unset again); `undefined` where that is refused.
 */
export const exposeCollector = (): ((options: { type: "major"; execution: "async" }) => Promise<void>) | undefined => {
  if (typeof globalThis.gc === "function") return globalThis.gc
  try {
    v8.setFlagsFromString("--expose-gc")
    const gc: unknown = vm.runInNewContext("gc")
    v8.setFlagsFromString("--no-expose-gc")
    return typeof gc === "function" ? (gc as NodeJS.GCFunction) : undefined
  } catch {
    return undefined
  }
}

/**
 * Asks for one full collection, off the caller's stack, each time `budget` bytes of native garbage
 * have been added. `collect` is V8's own unless given (tests count with their own).
 */
export const makeNativeGarbage = (
  budget: number,
  collect: (() => void) | undefined = defaultCollect()
): NativeGarbage => {
  let pending = 0
  let collections = 0
  return {
    add: (bytes) => {
      if (collect === undefined || budget <= 0) return
      pending += bytes
      if (pending < budget) return
      pending = 0
      collections++
      collect()
    },
    collections: () => collections
  }
}

const defaultCollect = (): (() => void) | undefined => {
  const gc = exposeCollector()
  // a task of its own, so the request that crossed the budget finishes first
  return gc === undefined ? undefined : () => void gc({ type: "major", execution: "async" }).catch(() => undefined)
}

/**
 * Native garbage past which a collection is asked for: at most this much RSS swing, against one
 * full collection (tens of ms) per budget's worth of requests (~170 requests of a 32k vocabulary).
 */
export const NATIVE_GARBAGE_BUDGET = 64 * 1024 * 1024
