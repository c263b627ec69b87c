import { Config, Context, Duration, Effect, Layer, type Option, Redacted } from "effect"

/** Splits `a,b` into origins; `*` allows any. */
export const splitOrigins = (value: string): ReadonlyArray<string> =>
  value.split(",").map((o) => o.trim().replace(/\/+$/, "")).filter((o) => o.length > 0)

/** A key that is more than whitespace. */
export const isUsableKey = (key: Redacted.Redacted): boolean => Redacted.value(key).trim().length > 0

/** Settings only the HTTP server reads, declared once (env `SHIMMY_*`); `serve` flags fall back to these. */
export const serverSettings = {
  apiKey: Config.option(
    Config.redacted("SHIMMY_API_KEY").pipe(
      // an empty key would look protected while `x-api-key:` (empty) got in: refused at start-up
      Config.validate({
        message: "SHIMMY_API_KEY is empty or only whitespace; set a real key, or unset it to run without one",
        validation: isUsableKey
      })
    )
  ),
  corsOrigins: Config.string("SHIMMY_CORS_ORIGINS").pipe(
    Config.map(splitOrigins),
    Config.withDefault([] as ReadonlyArray<string>)
  ),
  maxBodyBytes: Config.integer("SHIMMY_MAX_BODY_BYTES").pipe(
    Config.validate({ message: "SHIMMY_MAX_BODY_BYTES must be at least 1", validation: (n) => n >= 1 }),
    Config.withDefault(1024 * 1024)
  ),
  shutdownTimeout: Config.duration("SHIMMY_SHUTDOWN_TIMEOUT").pipe(Config.withDefault(Duration.seconds(10))),
  bodyTimeout: Config.duration("SHIMMY_BODY_TIMEOUT").pipe(Config.withDefault(Duration.seconds(30))),
  streamInterval: Config.duration("SHIMMY_STREAM_INTERVAL").pipe(
    Config.validate({
      message: "SHIMMY_STREAM_INTERVAL must be at most 10 seconds (a few tens of millis is the useful range)",
      validation: (interval) => Duration.lessThanOrEqualTo(interval, Duration.seconds(10))
    }),
    Config.withDefault(Duration.zero)
  ),
  anthropicModel: Config.option(Config.string("SHIMMY_ANTHROPIC_MODEL"))
}

export interface ServerConfigShape {
  /** clients must send it (`Authorization: Bearer`, `x-api-key`, or `?api_key=` on WebSockets); none: open */
  readonly apiKey: Option.Option<Redacted.Redacted>
  /** origins browsers may call from (`*`: any); empty: cross-origin browser requests are refused */
  readonly corsOrigins: ReadonlyArray<string>
  /** largest request body read; larger ones get 413 */
  readonly maxBodyBytes: number
  /** how long in-flight requests may run on after a shutdown signal before they are cancelled */
  readonly shutdownTimeout: Duration.Duration
  /** how long a request body may take to arrive; past it, 408 (a never-ending body holds nothing) */
  readonly bodyTimeout: Duration.Duration
  /**
   * the shortest time between two writes of a streamed reply (SSE, NDJSON): a fast model's tokens
   * go out a few at a time, each still its own event; zero: every token as it comes
   */
  readonly streamInterval?: Duration.Duration | undefined
  /**
   * the model that serves Anthropic requests for `claude-*` models Shimmy does not have (Claude
   * Code asks for those); unset: the only usable model, if there is just one
   */
  readonly anthropicModel?: Option.Option<string> | undefined
}

export class ServerConfig extends Context.Tag("shimmy/http/ServerConfig")<ServerConfig, ServerConfigShape>() {
  static readonly fromEnv = Layer.effect(ServerConfig, Config.all(serverSettings))

  /** The environment's settings with some replaced (the `serve` flags, tests). */
  static readonly withOverrides = (overrides: Partial<ServerConfigShape>) =>
    Layer.effect(
      ServerConfig,
      Effect.map(Config.all(serverSettings), (base): ServerConfigShape => ({ ...base, ...overrides }))
    )
}
