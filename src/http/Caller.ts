import { Context } from "effect"

/**
 * Whether the request reached a public path without the API key the server requires (the guard
 * sets it): such a caller learns that the server is up, and nothing about what it runs.
 */
export class Anonymous extends Context.Reference<Anonymous>()("shimmy/http/Anonymous", {
  defaultValue: () => false
}) {}
