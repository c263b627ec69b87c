/**
 * Finds stop strings in streamed text. Text that could still become a stop string is held back
 * until it either completes one (and is dropped with everything after it) or cannot.
 * Works on text, not tokens, so a stop string that starts with a space or spans tokens is found.
 */
export class StopMatcher {
  private held = ""
  private readonly longest: number

  constructor(private readonly stops: ReadonlyArray<string>) {
    this.longest = stops.reduce((max, s) => Math.max(max, s.length), 0)
  }

  /**
   * Adds text; returns what may be emitted now, whether a stop string was reached and which one
   * (the earliest in the text; of two there, the one listed first).
   */
  push(text: string): { readonly emit: string; readonly stopped: boolean; readonly stop?: string } {
    if (this.stops.length === 0) return { emit: text, stopped: false }
    const buffer = this.held + text
    let first = -1
    let matched = ""
    for (const stop of this.stops) {
      const at = buffer.indexOf(stop)
      if (at !== -1 && (first === -1 || at < first)) {
        first = at
        matched = stop
      }
    }
    if (first !== -1) {
      this.held = ""
      return { emit: buffer.slice(0, first), stopped: true, stop: matched }
    }
    const keep = this.partialSuffix(buffer)
    this.held = buffer.slice(buffer.length - keep)
    return { emit: buffer.slice(0, buffer.length - keep), stopped: false }
  }

  /** What is still held back once generation has ended for another reason. */
  flush(): string {
    const rest = this.held
    this.held = ""
    return rest
  }

  /** Length of the longest suffix of `buffer` that is a proper prefix of a stop string. */
  private partialSuffix(buffer: string): number {
    for (let length = Math.min(this.longest - 1, buffer.length); length > 0; length--) {
      const suffix = buffer.slice(buffer.length - length)
      if (this.stops.some((stop) => stop.startsWith(suffix))) return length
    }
    return 0
  }
}
