import parsePrometheus from "parse-prometheus-text-format"
import { describe, expect, it } from "vitest"
import { makeRegistry } from "../src/services/MetricsRegistry.js"

/** The registry's text, read back by a real Prometheus text-format parser. */

describe("MetricsRegistry", () => {
  it("escapes label values and help text, and renders cumulative histogram buckets", () => {
    const registry = makeRegistry()
    const counter = registry.counter("t_things_total", "Things\nseen \\ counted", ["model"])
    const odd = "a \"quoted\"\nname \\ here"
    counter.series([odd]).inc(2)
    counter.series([odd]).inc()
    counter.series(["plain"]).inc(0.5)
    const histogram = registry.histogram("t_wait_seconds", "Waits", [], [0.1, 1, 10])
    const series = histogram.series([])
    series.observe(0.05)
    series.observe(0.1)
    series.observe(0.5, 3)
    series.observe(100)
    const text = registry.render([{
      name: "t_queue",
      help: "Queued",
      labelNames: ["model"],
      samples: [{ labels: ["plain"], value: 4 }]
    }])
    expect(text).toContain(`t_things_total{model="a \\"quoted\\"\\nname \\\\ here"} 3\n`)
    const families = parsePrometheus(text)
    const things = families.find((f) => f.name === "t_things_total")!
    expect(things).toMatchObject({ type: "COUNTER", help: "Things\nseen \\ counted" })
    expect(things.metrics).toEqual([{ value: "3", labels: { model: odd } }, {
      value: "0.5",
      labels: { model: "plain" }
    }])
    const wait = families.find((f) => f.name === "t_wait_seconds")!
    expect(wait.type).toBe("HISTOGRAM")
    // a value on a bound falls in that bucket (le: less or equal)
    expect(wait.metrics[0]).toEqual({
      buckets: { "0.1": "2", "1": "5", "10": "5", "+Inf": "6" },
      count: "6",
      sum: String(0.05 + 0.1 + 1.5 + 100)
    })
    expect(families.find((f) => f.name === "t_queue")).toMatchObject({
      type: "GAUGE",
      metrics: [{ value: "4", labels: { model: "plain" } }]
    })
  })

  it("two registries count apart", () => {
    const a = makeRegistry()
    const b = makeRegistry()
    a.counter("t_total", "T", []).series([]).inc()
    b.counter("t_total", "T", [])
    expect(a.render([])).toContain("t_total 1\n")
    expect(b.render([])).not.toContain("t_total 1")
  })
})
