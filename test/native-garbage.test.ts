import { describe, expect, it } from "@effect/vitest"
import * as vm from "node:vm"
import { exposeCollector, makeNativeGarbage, samplerGarbage } from "../src/services/NativeGarbage.js"

describe("NativeGarbage", () => {
  it("asks for one collection each time the budget fills, and counts them", () => {
    let asked = 0
    const garbage = makeNativeGarbage(1000, () => asked++)
    garbage.add(600)
    expect(asked).toBe(0)
    garbage.add(600)
    expect(asked).toBe(1)
    // the count starts again after a collection
    garbage.add(600)
    expect(asked).toBe(1)
    garbage.add(400)
    expect(asked).toBe(2)
    expect(garbage.collections()).toBe(2)
  })

  it("a zero budget never collects", () => {
    let asked = 0
    const garbage = makeNativeGarbage(0, () => asked++)
    garbage.add(1e9)
    expect(asked).toBe(0)
  })

  it("sizes a sampler's candidates at 12 bytes a token", () => {
    expect(samplerGarbage(32_000)).toBe(384_000)
  })

  it("exposes V8's collector without a flag, and it collects", async () => {
    const gc = exposeCollector()
    expect(typeof gc).toBe("function")
    // the flag is set back: new contexts do not get `gc`
    expect(vm.runInNewContext("typeof gc")).toBe("undefined")
    let finalized = false
    const registry = new FinalizationRegistry(() => {
      finalized = true
    })
    ;(() => registry.register({ payload: new Array(1000).fill(0) }, "gone"))()
    for (let i = 0; i < 20 && !finalized; i++) {
      await gc!({ type: "major", execution: "async" })
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    expect(finalized).toBe(true)
  })
})
