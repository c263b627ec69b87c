import type { Llama, LlamaContextSequence, LlamaModel } from "node-llama-cpp"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as BatchSchedule from "../src/services/BatchSchedule.js"
import { prebuiltLlama, sharedModel } from "./support/models.js"

/**
 * The step logic of BatchSchedule on a stand-in for node-llama-cpp's context (its `_decodeTokens`
 * records what reaches it, and when); the real context is in test/load.test.ts.
 */

const fakeContext = () => {
  const reached: Array<{ readonly id: number; readonly at: number }> = []
  const context = {
    _decodeTokens: (request: { readonly sequenceId: number }) => {
      reached.push({ id: request.sequenceId, at: performance.now() })
      return Promise.resolve(request.sequenceId)
    }
  }
  return { context, reached }
}
const sequence = (id: number) => ({ _sequenceId: id })
const decode = (context: object, id: number) =>
  (context as { _decodeTokens: (request: { sequenceId: number }) => Promise<unknown> })._decodeTokens({
    sequenceId: id
  })
const tick = () => new Promise((resolve) => setImmediate(resolve))

describe("BatchSchedule", () => {
  it("hands over a step when every sequence of the last one has asked again", async () => {
    const { context, reached } = fakeContext()
    const schedule = BatchSchedule.make({ maxWaitMs: 10_000 })
    expect(schedule.attach(context as never)).toBe(true)
    // nothing runs: the first request goes through at once
    await decode(context, 0)
    expect(reached.map((r) => r.id)).toEqual([0])
    // 1 starts while 0 is the step: held until 0 asks again, then both together
    const one = decode(context, 1)
    await tick()
    expect(reached.map((r) => r.id)).toEqual([0])
    const zero = decode(context, 0)
    expect(await Promise.all([zero, one])).toEqual([0, 1])
    expect(reached.slice(1).map((r) => r.id).sort()).toEqual([0, 1])
    // a sequence given back is not waited for
    const again = decode(context, 0)
    await tick()
    expect(reached).toHaveLength(3)
    schedule.leave(sequence(1))
    await again
    expect(reached[3]?.id).toBe(0)
  })

  it("a sequence that does not ask again in time holds the others back once, not every step", async () => {
    const { context, reached } = fakeContext()
    const schedule = BatchSchedule.make({ maxWaitMs: 30 })
    schedule.attach(context as never)
    await decode(context, 0)
    await Promise.all([decode(context, 1), decode(context, 0)])
    // 1 stalls (its client reads slowly): 0 waits for it once
    const started = performance.now()
    await decode(context, 0)
    expect(performance.now() - started).toBeGreaterThanOrEqual(25)
    // then 0 runs alone, without waiting
    const alone = performance.now()
    for (let i = 0; i < 5; i++) await decode(context, 0)
    expect(performance.now() - alone).toBeLessThan(25)
    // 1 comes back and joins 0's next step
    const back = decode(context, 1)
    await tick()
    const count = reached.length
    await Promise.all([back, decode(context, 0)])
    expect(reached.slice(count).map((r) => r.id).sort()).toEqual([0, 1])
  })

  it("a sequence still decoding is waited for, however long its decode takes", async () => {
    // decodes that finish only when the test says so: a big model's step, far past maxWaitMs
    const reached: Array<number> = []
    const finish: Array<() => void> = []
    const context = {
      _decodeTokens: (request: { readonly sequenceId: number }) => {
        reached.push(request.sequenceId)
        return new Promise((resolve) => finish.push(() => resolve(request.sequenceId)))
      }
    }
    const schedule = BatchSchedule.make({ maxWaitMs: 5 })
    schedule.attach(context as never)
    const first = decode(context, 0)
    await tick()
    expect(reached).toEqual([0])
    // 1 starts while 0's decode runs for 50 ms: it waits for 0's next ask, not for 5 ms
    const one = decode(context, 1)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(reached).toEqual([0])
    finish.shift()!()
    await first
    const zero = decode(context, 0)
    await tick()
    expect(reached.slice(1).sort()).toEqual([0, 1])
    for (const done of finish.splice(0)) done()
    await Promise.all([one, zero])
  })

  it("hands a step over in the order of the sequences' ids, whatever order they asked in", async () => {
    const { context, reached } = fakeContext()
    const schedule = BatchSchedule.make({ maxWaitMs: 10_000 })
    schedule.attach(context as never)
    // 4 sequences in one step (the first goes through at once, the others join its next step)
    await decode(context, 2)
    await Promise.all([decode(context, 0), decode(context, 3), decode(context, 1), decode(context, 2)])
    expect(reached.slice(1).map((r) => r.id)).toEqual([0, 1, 2, 3])
    // the next step, asked 3, 1, 2, 0
    await Promise.all([3, 1, 2, 0].map((id) => decode(context, id)))
    expect(reached.slice(5).map((r) => r.id)).toEqual([0, 1, 2, 3])
  })

  it("a context of another shape is left alone", () => {
    const schedule = BatchSchedule.make({ maxWaitMs: 10 })
    expect(schedule.attach({} as never)).toBe(false)
    expect(schedule.counts()).toEqual({ decodes: 0, tokens: 0 })
  })
})

describe("BatchSchedule on node-llama-cpp's context: the threads of a step", () => {
  let llama: Llama
  let model: LlamaModel
  beforeAll(async () => {
    llama = await prebuiltLlama()
    model = await llama.loadModel({ modelPath: sharedModel("stories260K.gguf"), gpuLayers: 0 })
  })
  afterAll(async () => {
    await model?.dispose()
    await llama?.dispose()
  })

  // the threads of the decode that gave each token
  // the threads each token's step ran on; `seen` runs as each token arrives
  const generate = async (sequence: LlamaContextSequence, prompt: string, n: number, seen?: () => void) => {
    const threads: Array<number> = []
    for await (const _token of sequence.evaluate(model.tokenize(prompt), { temperature: 0 })) {
      threads.push(sequence.context.currentThreads)
      seen?.()
      if (threads.length >= n) break
    }
    return threads
  }

  it("each size of step measures fewer threads and the context's, apart from the others", async () => {
    // windows by their count alone: on a loaded machine this binary's 2-thread steps are long
    // enough that 4 of them fill a window by its time
    const schedule = BatchSchedule.make({ maxWaitMs: 50, fewerThreads: 1, windowMs: Infinity })
    const context = await model.createContext({
      sequences: 2,
      contextSize: 256,
      threads: 2,
      batching: { dispatchSchedule: schedule.dispatch }
    })
    const window = 16
    const explored = [...Array(window).fill(1), ...Array(window).fill(2)]
    try {
      expect(schedule.attach(context)).toBe(true)
      const [a, b] = [context.getSequence(), context.getSequence()]
      // one sequence alone: its prompt is measured with the other prompts, the context's threads
      // first; then a window of lone steps on each count, fewer first, then the one that measured faster
      const lone: Array<number | undefined> = []
      const alone = await generate(a, "Once upon a time", 1 + 2 * window + 8, () => lone.push(schedule.loneThreads()))
      expect(alone.slice(0, 1 + 2 * window)).toEqual([2, ...explored])
      // then the count that measured faster, as the schedule tells it; a step much slower than its
      // window (a stall on a loaded machine) starts measuring both again at once, so each later
      // step runs the count the schedule is on then
      const kept = lone[1 + 2 * window]
      expect([1, 2]).toContain(kept)
      expect(alone[1 + 2 * window]).toBe(kept)
      expect(alone.slice(1 + 2 * window)).toEqual(lone.slice(1 + 2 * window))
      // no step of several sequences yet
      expect(schedule.batchThreads()).toBeUndefined()
      // two together (b starts a step after a: a's first step is lone, and a asks for one token
      // more, so that b's last step is not): the steps of both tokens are measured afresh, fewer
      // first, whatever the lone ones chose
      await a.clearHistory()
      const [first, second] = await Promise.all([
        generate(a, "The little dog", 2 + 2 * window),
        generate(b, "One day, Lily", 1 + 2 * window)
      ])
      // the two prompts (b's in a step with a's token) are still in their window on the context's
      expect([first![0], second![0]]).toEqual([2, 2])
      expect(second!.slice(1, 1 + 2 * window)).toEqual(explored)
      expect([1, 2]).toContain(schedule.batchThreads())
      expect(schedule.loneThreads()).toBe(lone.at(-1))
      const counts = schedule.counts()
      expect(counts.tokens).toBeGreaterThan(counts.decodes)
    } finally {
      await context.dispose()
    }
  })

  // what happens between two tokens: the consumer's work queued on the event loop ("work") and
  // the start of the next decode ("decode"), in the order they ran
  const between = async (schedule: BatchSchedule.BatchSchedule, threads: number, n: number) => {
    const context = await model.createContext({
      sequences: 1,
      contextSize: 256,
      threads,
      batching: { dispatchSchedule: schedule.dispatch }
    })
    try {
      const log: Array<string> = []
      // the native decode, watched under the schedule's own hook
      const native = (context as unknown as { _ctx: { decodeBatch: () => Promise<void> } })._ctx
      const decodeBatch = native.decodeBatch.bind(native)
      Object.defineProperty(native, "decodeBatch", {
        configurable: true,
        value: () => (log.push("decode"), decodeBatch())
      })
      expect(schedule.attach(context)).toBe(true)
      let count = 0
      for await (
        const _token of context.getSequence().evaluate(model.tokenize("Once upon a time"), { temperature: 0 })
      ) {
        log.push("token")
        setImmediate(() => log.push("work"))
        if (++count >= n) break
      }
      await tick()
      // what followed each token but the last
      return log.join(" ").split("token ").slice(1, -1).map((s) => s.trim())
    } finally {
      await context.dispose()
    }
  }

  it("a decode on every core starts after the work the main thread has queued; one with a core to spare, before it", async () => {
    // 2 threads on 2 cores: the consumer's work first, then the decode
    const all = await between(BatchSchedule.make({ maxWaitMs: 50, cores: 2 }), 2, 6)
    expect(all).toEqual(Array(5).fill("work decode"))
    // a lone sequence on 1 of 2 cores: the decode starts at once, the work runs beside it
    const spare = await between(BatchSchedule.make({ maxWaitMs: 50, cores: 2, fewerThreads: 1 }), 2, 6)
    expect(spare).toEqual(Array(5).fill("decode work"))
    // cores not told: at once, as node-llama-cpp would
    const untold = await between(BatchSchedule.make({ maxWaitMs: 50 }), 2, 6)
    expect(untold).toEqual(Array(5).fill("decode work"))
  })

  it("without fewer threads, every step runs on the context's", async () => {
    const schedule = BatchSchedule.make({ maxWaitMs: 50 })
    const context = await model.createContext({ sequences: 1, contextSize: 256, threads: 2 })
    try {
      expect(schedule.attach(context)).toBe(true)
      expect(await generate(context.getSequence(), "Once upon a time", 8)).toEqual(Array(8).fill(2))
      expect(schedule.loneThreads()).toBeUndefined()
      expect(schedule.batchThreads()).toBeUndefined()
    } finally {
      await context.dispose()
    }
  })
})
