/**
 * The threads one kind of step decodes with, chosen by measuring both of two counts.
 *
 * With node-llama-cpp's prebuilt binary (no OpenMP) a decode's threads spin at ggml's barriers, so
 * whatever else needs a core meanwhile stalls the whole decode: Node's thread writing each streamed
 * token, the client reading it. Which of fewer or more threads is faster depends on how long a
 * decode is against that work, so on the model, the transport, the step and the machine. Measured
 * on 2 cores (BENCHMARKS.md): on one Intel machine, 2 threads instead of 1 took bench-25m streamed
 * over SSE from ~240 to ~90 tok/s while bench-110m answering JSON rose from ~60 to ~100; on an AMD
 * one, 2 threads made every step of the prebuilt binary 2-7x slower, batches of 4 included.
 *
 * So the schedule measures, with one chooser for each kind of step (BatchSchedule: by its size). A
 * step's period (from its decode's start to the start of the next decode: the decode, the sampling,
 * the JavaScript between) is recorded for the threads it ran on; each count is tried for `window`
 * steps and the one with the shorter mean period is kept. The mean, not the median: a contended
 * count is bimodal (measured: most steps 2 ms, a third 20-100 ms when a compute thread was
 * preempted), and the stalls are what it costs. The longest period of a window is left out (a
 * client's pause). Then the other count is tried again, since the load changes (another transport,
 * another client): after `exploreEvery` steps, times how much slower it was (at most 16), so that
 * trying a bad count costs about window / exploreEvery of the time, and at once when the kept
 * count's last window is half as slow again as when it was chosen (a client that streams after one
 * that did not: measured, bench-25m's 2-thread steps went from 1.5 to 10 ms). A period longer than
 * `maxPeriodMs` is not counted (the sequence waited: for a client, a new request).
 */
export interface StepThreads {
  /** the threads the next step runs on; the period of the one before is `settle`d by then, or not counted */
  readonly pick: () => number
  /** the step last picked for took `period` ms */
  readonly settle: (period: number) => void
  /** the threads steps run on now */
  readonly current: () => number
}

export interface StepThreadsOptions {
  /** the counts to choose from, the first tried first */
  readonly candidates: readonly [number, number]
  readonly window?: number
  readonly exploreEvery?: number
  readonly maxPeriodMs?: number
}

// the mean without the longest one
const score = (periods: ReadonlyArray<number>): number =>
  periods.length < 2
    ? periods[0] ?? 0
    : (periods.reduce((a, b) => a + b, 0) - Math.max(...periods)) / (periods.length - 1)

export const make = (options: StepThreadsOptions): StepThreads => {
  const window = options.window ?? 16
  const exploreEvery = options.exploreEvery ?? 256
  const maxPeriodMs = options.maxPeriodMs ?? 2_000
  const periods: [Array<number>, Array<number>] = [[], []]
  // the arm of the last step picked, until its period is settled
  let pending: 0 | 1 | undefined
  let best: 0 | 1 = 0
  // the kept count's score when it was chosen
  let chosen = 0
  // steps since the last exploration ended, and how many until the next
  let since = 0
  let until = exploreEvery
  // the arm being measured, until its window is full
  let exploring: 0 | 1 | undefined = 0

  const settle = (period: number) => {
    const arm = pending
    pending = undefined
    if (arm === undefined || !(period >= 0) || period > maxPeriodMs) return
    const ring = periods[arm]
    ring.push(period)
    if (ring.length > window) ring.shift()
  }
  const choose = (): 0 | 1 => {
    if (exploring !== undefined) {
      if (periods[exploring].length < window) return exploring
      // its window is full: the other one next, if it has not been measured yet
      const other = exploring === 0 ? 1 : 0
      if (periods[other].length < window) return (exploring = other)
      exploring = undefined
      const [fewer, more] = [score(periods[0]), score(periods[1])]
      best = fewer <= more ? 0 : 1
      chosen = Math.min(fewer, more)
      const slower = best === 0 ? more / Math.max(fewer, 1e-3) : fewer / Math.max(more, 1e-3)
      until = Math.round(exploreEvery * Math.min(16, Math.max(1, slower)))
      since = 0
    }
    const worse = periods[best].length >= window && score(periods[best]) > 1.5 * chosen
    if (++since >= until || worse) {
      // both measured afresh, the other first
      const other = best === 0 ? 1 : 0
      periods[0].length = 0
      periods[1].length = 0
      exploring = other
      return other
    }
    return best
  }

  const pick = () => {
    const arm = choose()
    pending = arm
    return options.candidates[arm]
  }

  return {
    pick,
    settle,
    current: () => options.candidates[exploring ?? best]
  }
}
