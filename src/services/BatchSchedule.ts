import type { LlamaContext } from "node-llama-cpp"
import * as StepThreads from "./StepThreads.js"

/**
 * When a context decodes: every sequence that is generating, together.
 *
 * node-llama-cpp decodes a context's queued tokens on the next event-loop cycle after the first one
 * is queued. Sequences finish sampling at different moments (sampling is asynchronous), so with its
 * default most decodes carry one or two of several generating sequences: measured, 4 sequences took
 * 86 decodes for 256 tokens, and 4 clients got no more tokens/s than 1. A decode of 4 tokens costs
 * about what a decode of 1 does on a CPU (the weights are read once either way). A schedule alone
 * cannot fix it: the context's batch loop takes whatever was queued while it decoded, so the
 * sequence left out of one step is decoded with whoever is ready in the next (traced: 3 sequences
 * rotating in pairs). So this holds each sequence's decode request before it reaches the context,
 * until every sequence of the last step has asked again or been given back (its generation ended),
 * and then hands them over together: each step is one decode of all of them.
 *
 * A sequence that starts (its prompt) joins the next step of the others. One that is back from its
 * decode and does not ask again in `maxWaitMs` (its client reads slowly, so its generation waits)
 * is not waited for again until it next decodes: a slow client costs the others one wait, not one
 * every step. A sequence still decoding is always waited for, however long a decode takes (a big
 * model's step is far longer than `maxWaitMs`). The deadline is checked after the event loop's poll
 * phase: when the process was off the CPU for a while (a busy machine), the samplings that finished
 * meanwhile are let in first.
 *
 * A step runs on `fewerThreads` or on the context's threads, whichever measures faster for a step
 * of its kind (StepThreads.ts): a step of generating sequences by its size (up to MEASURED_SIZE),
 * a step that carries a prompt (more tokens than sequences) with the others that do, by the token.
 * node-llama-cpp sets the context's threads before every decode, and the schedule lowers them for
 * the step when fewer win. Measured on an AMD machine with 2 cores, the prebuilt binary's 2-thread
 * steps were 2-7x slower than 1-thread ones at every size; on an Intel one, 2 threads won for
 * batches and lost for a streamed lone sequence.
 *
 * A decode that runs on every core (`cores`) starts once the main thread has done what it has
 * queued (writing the last tokens to the clients): ggml's threads in node-llama-cpp's prebuilt
 * binary spin at their barriers, so the main thread taking a core during the decode stalls them
 * all. Measured on 2 cores with 2 threads, bench-25m, one JSON client: 104 tok/s when the rendering
 * ran beside the decode, 284 after it. A decode with a core to spare starts at once, and the main
 * thread's work runs beside it.
 *
 * It needs internals of node-llama-cpp 3.21 (the context's method every sequence's decode goes
 * through, a sequence's id); `attach` says whether they are there, and without them the context
 * decodes as it would.
 */
export interface BatchSchedule {
  /** hooks a context; false (and no effect) if it has changed shape */
  readonly attach: (context: LlamaContext) => boolean
  /** a sequence of the context is given back: its generation will not decode again */
  readonly leave: (sequence: unknown) => void
  /** decodes run and the tokens they carried, since the context was attached */
  readonly counts: () => BatchCounts
  /** the threads a lone sequence decodes with now; undefined: the context's */
  readonly loneThreads: () => number | undefined
  /** the threads the last step of several tokens chose for its size now; undefined: the context's */
  readonly batchThreads: () => number | undefined
  /**
   * The context's `batching.dispatchSchedule`: when a step is handed over, its decode starts at
   * once (a microtask later, after the step's last request), not on the next event-loop cycle. The
   * default waits for everything the main thread has queued first (writing the last tokens to the
   * clients, parsing requests): that work then runs while the decode runs on its worker, instead
   * of before it. Unattached, the context's default.
   */
  readonly dispatch: (go: () => void) => void
}

export interface BatchCounts {
  readonly decodes: number
  readonly tokens: number
}

type Decode = (this: unknown, request: { readonly sequenceId: number }, ...rest: Array<unknown>) => Promise<unknown>

interface ContextInternals {
  _decodeTokens?: unknown
  _ctx?: { initBatch?: unknown; setThreads?: unknown; decodeBatch?: unknown }
}

const idOf = (sequence: unknown): number | undefined => {
  const id = (sequence as { readonly _sequenceId?: unknown } | undefined)?._sequenceId
  return typeof id === "number" ? id : undefined
}

// steps of generating sequences are measured by their size, up to this many; steps that carry a
// prompt, and larger ones, are measured together, under PROMPT
const MEASURED_SIZE = 16
const PROMPT = 0

export const make = (options: {
  readonly maxWaitMs: number
  /** fewer threads than the context's that a step may run on (measured, see above) */
  readonly fewerThreads?: number
  /** the cores llama.cpp computes on: a decode on as many threads waits for the main thread's queued work */
  readonly cores?: number
  /** a measuring window of long steps is full once they add up to this many ms (StepThreads) */
  readonly windowMs?: number
}): BatchSchedule => {
  // the sequences of the last step that have not asked again
  const expected = new Set<number>()
  // decode requests held for the next step, by sequence
  const held = new Map<number, () => void>()
  // sequences whose decode is running: they ask again only once it is done, however long it takes
  const running = new Set<number>()
  let timer: ReturnType<typeof setTimeout> | undefined
  let decodes = 0
  let tokens = 0
  // the threads of the decode being built: node-llama-cpp sizes it (initBatch) before it sets threads
  let stepThreads: number | undefined
  // the two counts a step chooses from, fewer first; none without fewer threads than the context's
  let choice: readonly [number, number] | undefined
  // the requests of the last step handed over: a decode of more tokens carries a prompt
  let stepRequests = 0
  // a chooser for each kind of step: its size, or PROMPT
  const choosers = new Map<number, StepThreads.StepThreads>()
  const chooserFor = (kind: number, [fewer, more]: readonly [number, number]) => {
    let chooser = choosers.get(kind)
    if (chooser === undefined) {
      // a prompt tries the context's threads first: more threads are what long prompts usually
      // want, and its first requests' time to first token waits on it
      chooser = StepThreads.make({
        candidates: kind === PROMPT ? [more, fewer] : [fewer, more],
        ...(options.windowMs !== undefined ? { windowMs: options.windowMs } : {})
      })
      choosers.set(kind, chooser)
    }
    return chooser
  }
  // the step decoding last: its period ends when the next one starts
  let last: { readonly chooser: StepThreads.StepThreads; readonly at: number; readonly per: number } | undefined
  let lastBatch: StepThreads.StepThreads | undefined
  let attached = false

  const release = () => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    expected.clear()
    // in the order of the sequences' ids: llama.cpp splits a batch of several sequences (each its
    // own KV stream, as node-llama-cpp creates them) into one pass over the weights for every run
    // of consecutive ids in it, so 4 sequences handed over as 2, 0, 3, 1 took 3 passes
    const step = [...held.entries()].sort(([a], [b]) => a - b)
    stepRequests = step.length
    for (const id of held.keys()) expected.add(id)
    held.clear()
    // handed over in one go: the context decodes them in one batch
    for (const [, go] of step) go()
  }
  const check = () => {
    if (held.size === 0) return
    for (const id of expected) if (!held.has(id)) return
    release()
  }
  // the wait for the sequences that are back from their decode and have not asked again
  const arm = () => {
    if (timer !== undefined) clearTimeout(timer)
    timer = held.size > 0 ? setTimeout(late, options.maxWaitMs) : undefined
  }
  const late = () =>
    setImmediate(() => {
      timer = undefined
      if (held.size === 0) return
      // who is back from its decode and has not asked again by now is not waited for; who is
      // still decoding is (its decode's end arms the wait again)
      for (const id of expected) if (!held.has(id) && !running.has(id)) expected.delete(id)
      check()
    })
  const settled = (id: number) => {
    running.delete(id)
    if (held.size > 0) arm()
  }

  return {
    attach: (context) => {
      const internals = context as unknown as ContextInternals
      const decode = internals._decodeTokens
      if (typeof decode !== "function") return false
      internals._decodeTokens = function(
        this: unknown,
        request: { readonly sequenceId: number },
        ...rest: Array<unknown>
      ) {
        const id = request?.sequenceId
        if (typeof id !== "number") return (decode as Decode).call(this, request, ...rest)
        return new Promise((resolve, reject) => {
          held.set(id, () => {
            running.add(id)
            ;(decode as Decode).call(this, request, ...rest).then(
              (result) => (settled(id), resolve(result)),
              (error) => (settled(id), reject(error))
            )
          })
          check()
          if (held.size > 0 && timer === undefined) arm()
        })
      }
      const native = internals._ctx
      // the native object's methods are read-only properties; an own property in front of one is allowed
      type Method = (this: unknown, ...args: Array<number>) => unknown
      const hook = (name: "initBatch" | "setThreads" | "decodeBatch", value: (original: Method) => Method) => {
        const original = native?.[name]
        if (typeof original !== "function") return
        try {
          Object.defineProperty(native, name, { configurable: true, value: value(original as Method) })
        } catch {
          // left as it is: counts stay at zero, threads at the context's; the schedule still works
        }
      }
      // the threads are measured only where fewer than the context's are allowed
      const threads = (context as { readonly currentThreads?: unknown }).currentThreads
      const fewer = options.fewerThreads
      if (fewer !== undefined && typeof threads === "number" && fewer < threads) choice = [fewer, threads]
      hook("initBatch", (initBatch) =>
        function(this: unknown, size: number) {
          decodes++
          tokens += size
          if (choice !== undefined) {
            const now = performance.now()
            // a prompt's period counts by the token: prompts of any length are measured together
            if (last !== undefined) last.chooser.settle((now - last.at) / last.per)
            const prompt = size > stepRequests || size > MEASURED_SIZE
            const chooser = chooserFor(prompt ? PROMPT : size, choice)
            stepThreads = chooser.pick()
            last = { chooser, at: now, per: prompt ? size : 1 }
            if (size > 1 && !prompt) lastBatch = chooser
          }
          return initBatch.call(this, size)
        })
      if (choice !== undefined) {
        hook("setThreads", (setThreads) =>
          function(this: unknown, threads: number) {
            return setThreads.call(this, stepThreads !== undefined && stepThreads < threads ? stepThreads : threads)
          })
      }
      const cores = options.cores
      if (cores !== undefined) {
        hook("decodeBatch", (decodeBatch) =>
          function(this: unknown) {
            const used = stepThreads ?? (typeof threads === "number" ? threads : 0)
            if (used < cores) return decodeBatch.call(this)
            // after the callbacks the event loop has queued, and the microtasks they run
            return new Promise((resolve) => setImmediate(resolve)).then(() => decodeBatch.call(this))
          })
      }
      attached = true
      return true
    },
    dispatch: (go) => attached ? queueMicrotask(go) : void setImmediate(go),
    leave: (sequence) => {
      const id = idOf(sequence)
      if (id !== undefined) expected.delete(id)
      check()
    },
    counts: () => ({ decodes, tokens }),
    loneThreads: () => choosers.get(1)?.current(),
    batchThreads: () => lastBatch?.current()
  }
}
