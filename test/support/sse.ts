/**
 * A small Server-Sent Events client for tests: reads a fetch response body as it arrives and
 * yields the `data` of each event (multi-line data joined with "\n"; comments and other fields
 * ignored), as a browser's EventSource would.
 */
export async function* sseData(response: Response): AsyncGenerator<string> {
  if (response.body === null) return
  const decoder = new TextDecoder("utf-8", { fatal: true })
  let buffer = ""
  const reader = response.body.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true })
      let boundary = /\r?\n\r?\n/.exec(buffer)
      while (boundary !== null) {
        const block = buffer.slice(0, boundary.index)
        buffer = buffer.slice(boundary.index + boundary[0].length)
        const data = block
          .split(/\r?\n/)
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
        if (data.length > 0) yield data.join("\n")
        boundary = /\r?\n\r?\n/.exec(buffer)
      }
      if (done) break
    }
    if (buffer.trim().length > 0) throw new Error(`stream ended inside an event: ${JSON.stringify(buffer)}`)
  } finally {
    reader.releaseLock()
  }
}

/** Every event's data until the stream ends. */
export const readSse = async (response: Response): Promise<ReadonlyArray<string>> => {
  const events: Array<string> = []
  for await (const data of sseData(response)) events.push(data)
  return events
}
