import { HttpRouter } from "@effect/platform"

/** The OpenAI-compatible `/v1/*` routes (mounted by Server.ts). */
export const openAiRouter = HttpRouter.empty
