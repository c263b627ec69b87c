import type { IncomingMessage } from "node:http"
import { WebSocketServer } from "ws"

/**
 * The size a WebSocket message may reach, enforced by `ws` while the message arrives (its frames'
 * declared lengths are checked before they are buffered; a message over it closes the connection
 * with 1009, Message Too Big). The platform's `WebSocketServer` is made without options, so `ws`'s
 * own cap of 100 MiB would otherwise apply; its upgrade reads the cap when it completes, and with
 * no `verifyClient` it completes synchronously, so the cap is set for the request's own upgrade.
 */

const LIMIT = Symbol.for("shimmy/websocket-max-payload")

interface Limited {
  [LIMIT]?: number
}

type HandleUpgrade = (this: WebSocketServer, request: IncomingMessage, ...rest: Array<unknown>) => unknown

let installed = false

const install = () => {
  if (installed) return
  installed = true
  const original = WebSocketServer.prototype.handleUpgrade as unknown as HandleUpgrade
  const patched: HandleUpgrade = function(request, ...rest) {
    const limit = (request as Limited)[LIMIT]
    if (limit === undefined) return original.call(this, request, ...rest)
    const options = this.options as { maxPayload?: number | undefined }
    const saved = options.maxPayload
    options.maxPayload = limit
    try {
      return original.call(this, request, ...rest)
    } finally {
      options.maxPayload = saved
    }
  }
  WebSocketServer.prototype.handleUpgrade = patched as unknown as typeof WebSocketServer.prototype.handleUpgrade
}

/** Caps the messages of the WebSocket this request is about to become at `bytes`. */
export const limitMessages = (request: IncomingMessage, bytes: number): void => {
  install()
  ;(request as Limited)[LIMIT] = bytes
}
