import { describe, expect, it } from "vitest"
import * as StepThreads from "../src/services/StepThreads.js"

// the schedule's use of a chooser for steps back to back: a step's period ends when the next starts;
// `broken`: another kind of step ran in between, so the period is not counted
const started = new WeakMap<StepThreads.StepThreads, number>()
const at = (chooser: StepThreads.StepThreads, now: number) => {
  const before = started.get(chooser)
  if (before !== undefined) chooser.settle(now - before)
  started.set(chooser, now)
  return chooser.pick()
}
const broken = (chooser: StepThreads.StepThreads) => started.delete(chooser)

/** Drives the chooser with lone steps whose periods the test sets: `cost[threads]` ms a step. */
const drive = (lone: StepThreads.StepThreads, steps: number, cost: Record<number, number>, start = 0) => {
  let now = start
  const used: Array<number> = []
  for (let i = 0; i < steps; i++) {
    const threads = at(lone, now)
    used.push(threads)
    now += cost[threads]!
  }
  return { used, now }
}

describe("StepThreads", () => {
  it("tries both counts, then keeps the one whose steps are shorter", () => {
    const lone = StepThreads.make({ candidates: [1, 2], window: 4, exploreEvery: 1000 })
    const { used } = drive(lone, 40, { 1: 10, 2: 4 })
    // 4 steps of each (a step's period is counted when the next starts)
    expect(used.slice(0, 8)).toEqual([1, 1, 1, 1, 2, 2, 2, 2])
    expect(used.slice(8)).toEqual(Array(32).fill(2))
    expect(lone.current()).toBe(2)

    const other = StepThreads.make({ candidates: [1, 2], window: 4, exploreEvery: 1000 })
    expect(drive(other, 40, { 1: 3, 2: 9 }).used.slice(8)).toEqual(Array(32).fill(1))
    expect(other.current()).toBe(1)
  })

  it("measures again every exploreEvery steps, and follows a load that changed", () => {
    const lone = StepThreads.make({ candidates: [1, 2], window: 4, exploreEvery: 50 })
    const first = drive(lone, 30, { 1: 10, 2: 4 })
    expect(lone.current()).toBe(2)
    // the load changes (a streaming client: more threads now stall): fewer win from the next measure on
    // 2 won 2.5x, so the next measure is 50 x 2.5 = 125 lone steps after the first (at 132): 1 is
    // tried (132-135), then 2 again (136-139), and 1 is kept
    // (2 is slower by 1.25x only: not enough to measure again before then)
    const { used } = drive(lone, 150, { 1: 3, 2: 5 }, first.now)
    expect(used.slice(0, 102)).toEqual(Array(102).fill(2))
    expect(used.slice(102, 110)).toEqual([1, 1, 1, 1, 2, 2, 2, 2])
    expect(used.slice(110)).toEqual(Array(40).fill(1))
    expect(lone.current()).toBe(1)
  })

  it("a kept count that gets half as slow again is measured again at once, not after exploreEvery", () => {
    const lone = StepThreads.make({ candidates: [1, 2], window: 4, exploreEvery: 1000 })
    const first = drive(lone, 20, { 1: 10, 2: 2 })
    expect(lone.current()).toBe(2)
    // 2 threads now take 10 ms a step, 1 thread 4: two slow steps lift 2's window past 1.5x its
    // score, and both are measured (1, then 2) and 1 is kept
    const { used } = drive(lone, 30, { 1: 4, 2: 10 }, first.now)
    expect(used.slice(0, 10)).toEqual([2, 2, 1, 1, 1, 1, 2, 2, 2, 2])
    expect(used.slice(-12)).toEqual(Array(12).fill(1))
    expect(lone.current()).toBe(1)
  })

  it("does not count a period across a batched step or one longer than maxPeriodMs", () => {
    const lone = StepThreads.make({ candidates: [1, 2], window: 2, exploreEvery: 1000, maxPeriodMs: 100 })
    let now = 0
    // the 1-thread steps are fast, but each is followed by a batched step or a long wait: none counts
    for (let i = 0; i < 6; i++) {
      expect(at(lone, now)).toBe(1)
      broken(lone)
      now += 1
    }
    for (let i = 0; i < 3; i++) {
      expect(at(lone, now)).toBe(1)
      now += 500
    }
    // still measuring 1 thread: nothing counted
    expect(lone.current()).toBe(1)
    // then real periods: 1 thread 8 ms, 2 threads 5 ms
    const { used } = drive(lone, 20, { 1: 8, 2: 5 }, now)
    expect(used.slice(-10)).toEqual(Array(10).fill(2))
  })

  it("the mean of a window without its longest period: one pause does not decide, frequent stalls do", () => {
    const steps = (lone: StepThreads.StepThreads, periods: ReadonlyArray<number>, start: number) => {
      let now = start
      for (const period of periods) {
        at(lone, now)
        now += period
      }
      return now
    }
    // 1 thread: 6 ms a step, but one step waits 90 ms (a client paused); 2 threads: 8 ms a step
    const paused = StepThreads.make({ candidates: [1, 2], window: 5, exploreEvery: 1000 })
    steps(paused, [6, 6, 90, 6, 6, 8, 8, 8, 8, 8, 8], 0)
    expect(paused.current()).toBe(1)
    // 2 threads: mostly 2 ms, but stalled 40 ms every third step (its median would win, its mean loses)
    // (one window each decides here: `rounds: 1`)
    const stalled = StepThreads.make({ candidates: [1, 2], window: 6, rounds: 1, exploreEvery: 1000 })
    steps(stalled, [6, 6, 6, 6, 6, 6, 2, 40, 2, 2, 40, 2, 2], 0)
    expect(stalled.current()).toBe(1)
  })

  it("means too close for a window each to tell apart are measured for more windows, up to `rounds`", () => {
    // 1 thread: 8 ms a step, steadily; 2 threads: 4 ms, but the first 6 of its steps stall at
    // 20 ms (a client's burst): its first window alone loses (9.3 ms without the longest), its
    // steps over several windows win
    const run = (rounds: number) => {
      const chooser = StepThreads.make({ candidates: [1, 2], window: 16, rounds, exploreEvery: 10_000 })
      let now = 0
      let twos = 0
      const used: Array<number> = []
      for (let i = 0; i < 200; i++) {
        const threads = at(chooser, now)
        used.push(threads)
        now += threads === 1 ? 8 : twos++ % 16 < 10 || twos > 16 ? 4 : 20
      }
      return used
    }
    expect(run(1).slice(-100)).toEqual(Array(100).fill(1))
    const used = run(4)
    expect(used.slice(-100)).toEqual(Array(100).fill(2))
    // more than one window of each was measured, not more than 4
    const ones = used.filter((t) => t === 1).length
    expect(ones).toBeGreaterThan(16)
    expect(ones).toBeLessThanOrEqual(64)

    // a clear difference is decided after one window each, noisy or not
    const clear = StepThreads.make({ candidates: [1, 2], window: 16, exploreEvery: 10_000 })
    let now = 0
    const used2: Array<number> = []
    for (let i = 0; i < 100; i++) {
      const threads = at(clear, now)
      used2.push(threads)
      now += threads === 1 ? 8 + (i % 3) : 3 + (i % 2)
    }
    expect(used2.filter((t) => t === 1).length).toBe(16)
    expect(used2.slice(32)).toEqual(Array(68).fill(2))
  })

  it("a window of long steps is full once it holds windowMs of them, and at least 4", () => {
    // bench-1b's steps of 4 sequences: ~170 ms on 1 thread, ~90 on 2 (a little noise)
    const chooser = StepThreads.make({ candidates: [1, 2], window: 16, windowMs: 250, exploreEvery: 10_000 })
    const { used } = drive(chooser, 40, { 1: 170, 2: 90 })
    // 1 thread: 2 steps make 250 ms but a window holds at least 4; 2 threads: 4 steps (360 ms)
    expect(used.slice(0, 8)).toEqual([1, 1, 1, 1, 2, 2, 2, 2])
    expect(used.slice(8)).toEqual(Array(32).fill(2))
    // short steps still fill a window by its count
    const short = StepThreads.make({ candidates: [1, 2], window: 16, windowMs: 250, exploreEvery: 10_000 })
    expect(drive(short, 40, { 1: 8, 2: 4 }).used.slice(0, 32)).toEqual([...Array(16).fill(1), ...Array(16).fill(2)])
  })

  it("a count that lost by far is tried again later than one that lost narrowly", () => {
    const explored = (cost: Record<number, number>) => {
      const lone = StepThreads.make({ candidates: [1, 2], window: 4, exploreEvery: 20 })
      const { used } = drive(lone, 400, cost)
      // steps on the losing count after the first measure
      return used.slice(8).filter((t) => t === 2).length
    }
    // 2 threads 1.2x slower: measured again every ~24 steps; 10x slower: every ~200
    expect(explored({ 1: 5, 2: 6 })).toBeGreaterThan(4 * explored({ 1: 5, 2: 50 }))
  })

  it("pick and settle: a step's period is what its settle says, and a pick left unsettled counts for nothing", () => {
    const chooser = StepThreads.make({ candidates: [1, 2], window: 2, exploreEvery: 1000 })
    const used: Array<number> = []
    // 1 thread: two steps of 9 ms and one left unsettled (the next step was of another kind and
    // its period too long to count); 2 threads: two of 3 ms
    for (const period of [9, undefined, 9, 3, 3]) {
      used.push(chooser.pick())
      if (period !== undefined) chooser.settle(period)
    }
    expect(used).toEqual([1, 1, 1, 2, 2])
    expect(chooser.pick()).toBe(2)
    // a period beyond maxPeriodMs is not counted either
    const waited = StepThreads.make({ candidates: [1, 2], window: 1, exploreEvery: 1000, maxPeriodMs: 100 })
    waited.pick()
    waited.settle(5_000)
    expect(waited.pick()).toBe(1)
  })
})
