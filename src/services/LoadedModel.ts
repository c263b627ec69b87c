import type { Effect, Scope } from "effect"
import type { LlamaContextSequence, LlamaModel } from "node-llama-cpp"
import type { ServerBusy } from "../domain/Errors.js"
import type { RegisteredModel } from "./ModelRegistry.js"

/** A model in memory with one context whose sequences are handed out one request at a time. */
export interface LoadedModel {
  readonly registered: RegisteredModel
  readonly model: LlamaModel
  /** tokens per sequence */
  readonly contextSize: number
  /** CPU threads its contexts use */
  readonly threads: number
  readonly loadMillis: number
  /** native memory each evaluation leaves for the garbage collector (see NativeGarbage) */
  readonly evaluationGarbage: number
  /** a free sequence for the life of the scope; waits in FIFO order, `ServerBusy` past the queue limit */
  readonly sequence: Effect.Effect<LlamaContextSequence, ServerBusy, Scope.Scope>
  /** sequences free right now */
  readonly free: Effect.Effect<number>
}
