/**
 * A small Prometheus registry: counters and histograms with fixed label names, rendered in the
 * text exposition format (0.0.4). Hand-rolled rather than Effect's `Metric`: Effect's metrics live
 * in one process-wide registry (two servers in one process, or a library user's own metrics, would
 * mix), a tagged update builds and hashes a `MetricKey` per call, and Effect ships no Prometheus
 * text renderer. Here a label set is resolved once (per request, per generation) into a series
 * handle, and updating a handle allocates nothing: the per-token path is a float compare and an
 * array increment.
 */

/** One label set's counter. */
export interface CounterSeries {
  readonly inc: (by?: number) => void
}

/** One label set's histogram. */
export interface HistogramSeries {
  /** records `count` observations of `value` (an event that carried several tokens) */
  readonly observe: (value: number, count?: number) => void
}

export interface Counter {
  readonly series: (labels: ReadonlyArray<string>) => CounterSeries
}

export interface Histogram {
  readonly series: (labels: ReadonlyArray<string>) => HistogramSeries
}

/** A value read at scrape time (queue depth, memory), with its labels. */
export interface GaugeSample {
  readonly labels: ReadonlyArray<string>
  readonly value: number
}

export interface GaugeFamily {
  readonly name: string
  readonly help: string
  readonly labelNames: ReadonlyArray<string>
  readonly samples: ReadonlyArray<GaugeSample>
  /** "counter" for totals kept elsewhere (decodes) and read at scrape time */
  readonly type?: "gauge" | "counter"
}

interface CounterState {
  readonly labels: ReadonlyArray<string>
  value: number
}

interface HistogramState {
  readonly labels: ReadonlyArray<string>
  /** observations per bucket, not cumulative; the last is +Inf */
  readonly counts: Float64Array
  sum: number
  count: number
}

interface CounterFamily {
  readonly type: "counter"
  readonly name: string
  readonly help: string
  readonly labelNames: ReadonlyArray<string>
  readonly series: Map<string, CounterState>
}

interface HistogramFamily {
  readonly type: "histogram"
  readonly name: string
  readonly help: string
  readonly labelNames: ReadonlyArray<string>
  readonly series: Map<string, HistogramState>
  readonly buckets: ReadonlyArray<number>
}

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")
const escapeHelp = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const formatNumber = (n: number) =>
  Number.isNaN(n) ? "NaN" : n === Infinity ? "+Inf" : n === -Infinity ? "-Inf" : String(n)

const labelText = (names: ReadonlyArray<string>, values: ReadonlyArray<string>, extra?: string) => {
  const parts = names.map((name, i) => `${name}="${escapeLabel(values[i] ?? "")}"`)
  if (extra !== undefined) parts.push(extra)
  return parts.length === 0 ? "" : `{${parts.join(",")}}`
}

const header = (name: string, help: string, type: string) =>
  `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`

// label values never hold NUL in practice; a key per label set
const keyOf = (labels: ReadonlyArray<string>) => labels.join("\u0000")

export interface MetricsRegistry {
  readonly counter: (name: string, help: string, labelNames: ReadonlyArray<string>) => Counter
  readonly histogram: (
    name: string,
    help: string,
    labelNames: ReadonlyArray<string>,
    buckets: ReadonlyArray<number>
  ) => Histogram
  /** everything registered, then the scrape-time gauges, as Prometheus text */
  readonly render: (gauges: ReadonlyArray<GaugeFamily>) => string
}

export const makeRegistry = (): MetricsRegistry => {
  const families: Array<CounterFamily | HistogramFamily> = []

  const counter = (name: string, help: string, labelNames: ReadonlyArray<string>): Counter => {
    const family: CounterFamily = { name, help, type: "counter", labelNames, series: new Map() }
    families.push(family)
    return {
      series: (labels) => {
        const key = keyOf(labels)
        let state = family.series.get(key)
        if (state === undefined) {
          state = { labels: [...labels], value: 0 }
          family.series.set(key, state)
        }
        const s = state
        return { inc: (by = 1) => void (s.value += by) }
      }
    }
  }

  const histogram = (
    name: string,
    help: string,
    labelNames: ReadonlyArray<string>,
    buckets: ReadonlyArray<number>
  ): Histogram => {
    const bounds = Float64Array.from(buckets)
    const family: HistogramFamily = { name, help, type: "histogram", labelNames, series: new Map(), buckets }
    families.push(family)
    return {
      series: (labels) => {
        const key = keyOf(labels)
        let state = family.series.get(key)
        if (state === undefined) {
          state = { labels: [...labels], counts: new Float64Array(bounds.length + 1), sum: 0, count: 0 }
          family.series.set(key, state)
        }
        const s = state
        return {
          observe: (value, count = 1) => {
            let i = 0
            while (i < bounds.length && value > bounds[i]!) i++
            s.counts[i]! += count
            s.sum += value * count
            s.count += count
          }
        }
      }
    }
  }

  const renderFamily = (family: CounterFamily | HistogramFamily): string => {
    let out = header(family.name, family.help, family.type)
    if (family.type === "counter") {
      for (const s of family.series.values()) {
        out += `${family.name}${labelText(family.labelNames, s.labels)} ${formatNumber(s.value)}\n`
      }
      return out
    }
    for (const s of family.series.values()) {
      let cumulative = 0
      family.buckets.forEach((bound, i) => {
        cumulative += s.counts[i]!
        out += `${family.name}_bucket${labelText(family.labelNames, s.labels, `le="${formatNumber(bound)}"`)} ${
          formatNumber(cumulative)
        }\n`
      })
      out += `${family.name}_bucket${labelText(family.labelNames, s.labels, `le="+Inf"`)} ${formatNumber(s.count)}\n`
      out += `${family.name}_sum${labelText(family.labelNames, s.labels)} ${formatNumber(s.sum)}\n`
      out += `${family.name}_count${labelText(family.labelNames, s.labels)} ${formatNumber(s.count)}\n`
    }
    return out
  }

  const renderGauge = (gauge: GaugeFamily): string =>
    header(gauge.name, gauge.help, gauge.type ?? "gauge") +
    gauge.samples.map((s) => `${gauge.name}${labelText(gauge.labelNames, s.labels)} ${formatNumber(s.value)}\n`)
      .join("")

  return {
    counter,
    histogram,
    render: (gauges) => [...families.map(renderFamily), ...gauges.map(renderGauge)].join("")
  }
}
