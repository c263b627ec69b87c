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
 * client's pause). Where the two means are closer than twice their standard error, a window of
 * each says little (traced, bench-25m over SSE at K=4 with the local build: 2-thread steps took
 * 6.1 ms a period on average against 8.4 for 1 thread, yet their stalls let 1 thread win a window
 * of 16 now and then and keep the steps for up to 127 in a row: 40% of one run's steps ran on it,
 * 6% of another's), so both are measured for another window, up to `rounds` windows each: a clear
 * difference is decided after one, a close one costs little while it is measured. A window of long
 * steps is full once it holds `windowMs` of them (and at least 4): on bench-1b a step of 4
 * sequences takes ~90 ms on 2 threads and ~170 on 1, so 16 of them on the wrong count cost a short
 * run more than a second (llama-batched-bench's steps at the same commit; the bench's first
 * streamed K=4 cell, where that size's first measure falls, was 0.84 of llama-server, the JSON cell
 * after it 0.97). Then the other count is tried again, since the load changes (another transport,
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
  /** a window is also full once its periods add up to this many ms (at least MIN_WINDOW of them) */
  readonly windowMs?: number
  /** the most windows each count is measured for when their means are too close to tell apart */
  readonly rounds?: number
  readonly exploreEvery?: number
  readonly maxPeriodMs?: number
}

// the periods without the longest one
const withoutLongest = (periods: ReadonlyArray<number>): ReadonlyArray<number> => {
  const longest = periods.indexOf(Math.max(...periods))
  return periods.filter((_, i) => i !== longest)
}
const mean = (periods: ReadonlyArray<number>): number => periods.reduce((a, b) => a + b, 0) / periods.length

// the mean without the longest one
const score = (periods: ReadonlyArray<number>): number =>
  periods.length < 2 ? periods[0] ?? 0 : mean(withoutLongest(periods))

// the mean without the longest one, and its standard error (0 below 3 periods: too few to tell
// their spread, the means decide)
const measure = (periods: ReadonlyArray<number>): { readonly mean: number; readonly error: number } => {
  if (periods.length < 3) return { mean: score(periods), error: 0 }
  const kept = withoutLongest(periods)
  const m = mean(kept)
  const variance = kept.reduce((sum, p) => sum + (p - m) ** 2, 0) / (kept.length - 1)
  return { mean: m, error: Math.sqrt(variance / kept.length) }
}

// the fewest periods a window of long steps holds
const MIN_WINDOW = 4

export const make = (options: StepThreadsOptions): StepThreads => {
  const window = options.window ?? 16
  const rounds = options.rounds ?? 4
  const windowMs = options.windowMs ?? 250
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
  // the arm being measured, for `windows` windows
  let exploring: 0 | 1 | undefined = 0
  let windows = 1
  // whether an arm has been measured for the windows asked of it: by their count, or by their time
  const full = (arm: 0 | 1) => {
    const ring = periods[arm]
    if (ring.length >= windows * window) return true
    return ring.length >= MIN_WINDOW * windows && ring.reduce((a, b) => a + b, 0) >= windowMs * windows
  }

  const settle = (period: number) => {
    const arm = pending
    pending = undefined
    if (arm === undefined || !(period >= 0) || period > maxPeriodMs) return
    const ring = periods[arm]
    ring.push(period)
    if (ring.length > (exploring === undefined ? 1 : windows) * window) ring.shift()
  }
  const choose = (): 0 | 1 => {
    if (exploring !== undefined) {
      if (!full(exploring)) return exploring
      // its window is full: the other one next, if it has not been measured yet
      const other = exploring === 0 ? 1 : 0
      if (!full(other)) return (exploring = other)
      const [a, b] = [measure(periods[0]), measure(periods[1])]
      if (Math.abs(a.mean - b.mean) < 2 * Math.hypot(a.error, b.error) && windows < rounds) {
        // too close to tell: another window of each
        windows++
        return exploring
      }
      exploring = undefined
      windows = 1
      for (const ring of periods) ring.splice(0, ring.length - window)
      const [fewer, more] = [a.mean, b.mean]
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
