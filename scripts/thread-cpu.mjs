// The server's main thread per generated token, around one run of ab-generate.mjs: its CPU
// (utime + stime) and its waits on the run queue (schedstat), and the other threads' CPU (the
// decode and sampling threads). Linux only (/proc).
//   node scripts/thread-cpu.mjs PID PORT MODEL json|sse|ws K [N=2] [TOKENS=128]
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const [pid, port, model, mode, k, n = "2", tokens = "128"] = process.argv.slice(2)
const here = path.dirname(fileURLToPath(import.meta.url))
const TICK_MS = 1000 / 100 // USER_HZ

const threads = () =>
  Object.fromEntries(
    fs.readdirSync(`/proc/${pid}/task`).map((tid) => {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8")
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      const [, waitNs, slices] = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").trim().split(" ").map(
        Number
      )
      return [tid, { cpuMs: (Number(fields[11]) + Number(fields[12])) * TICK_MS, waitNs, slices }]
    })
  )

const before = threads()
const tokPerS = execFileSync(process.execPath, [path.join(here, "ab-generate.mjs"), port, model, mode, k, n, tokens], {
  encoding: "utf8"
}).trim()
const after = threads()
const generated = Number(k) * Number(n) * Number(tokens)
const us = (ms) => (ms * 1000 / generated).toFixed(0)
const main = { a: before[pid], b: after[pid] }
const others = Object.keys(after).filter((tid) => tid !== pid)
  .reduce((sum, tid) => sum + after[tid].cpuMs - (before[tid]?.cpuMs ?? 0), 0)
console.log(
  `${mode} K=${k}: ${tokPerS} tok/s; a token: main thread ${us(main.b.cpuMs - main.a.cpuMs)} us CPU, ` +
    `${us((main.b.waitNs - main.a.waitNs) / 1e6)} us on the run queue, ` +
    `${((main.b.slices - main.a.slices) / generated).toFixed(2)} time slices; other threads ${us(others)} us CPU`
)
