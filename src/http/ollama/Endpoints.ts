import {
  ChatLine,
  ChatResponse,
  EmbeddingsResponse,
  EmbedResponse,
  GenerateLine,
  GenerateResponse,
  ListResponse,
  LoadChat,
  LoadGenerate,
  ProcessResponse,
  ProgressResponse,
  PullRequest,
  ShowResponse,
  VersionResponse
} from "../../domain/Ollama.js"
import { described, type Route } from "../Dialect.js"
import { bodies } from "./Decode.js"
import { handlers as generation } from "./Generate.js"
import { handlers as models } from "./Models.js"
import { pull } from "./Pull.js"
import { dialect } from "./Render.js"

/**
 * Ollama's API (docs/api.md), written once relative to its root: Routes.ts mounts it under
 * `/ollama` and at the root of the main port (but `POST /api/generate`, the seed API's there), and
 * whole at the root of the Ollama-only port.
 */
const running = { text: { contentType: "text/plain; charset=utf-8", description: "`Ollama is running`" } }
const unsupported = { refuses: 501, description: "Shimmy serves the GGUF files it finds; it keeps no model store" }

/** An endpoint of Ollama's model store, which Shimmy answers with 501. */
const notSupported = (method: Route["method"], path: Route["path"], handler: Route["handler"]): Route => ({
  method,
  path,
  dialect,
  handler,
  summary: "Not supported (501)",
  api: unsupported
})

export const routes: ReadonlyArray<Route> = [
  { method: "GET", path: "/", dialect, handler: models.root, summary: "\"Ollama is running\"", api: running },
  { method: "HEAD", path: "/", dialect, handler: models.root, summary: "\"Ollama is running\"", api: running },
  {
    method: "GET",
    path: "/api/version",
    dialect,
    handler: models.version,
    summary: "The Ollama version served",
    api: { json: described("VersionResponse", VersionResponse) }
  },
  {
    method: "GET",
    path: "/api/tags",
    dialect,
    handler: models.tags,
    summary: "The usable models",
    api: { json: described("ListResponse", ListResponse) }
  },
  {
    method: "HEAD",
    path: "/api/tags",
    dialect,
    handler: models.tags,
    summary: "The usable models",
    api: { json: described("ListResponse", ListResponse) }
  },
  {
    method: "POST",
    path: "/api/show",
    dialect,
    handler: models.show,
    summary: "One model's details",
    api: { body: bodies.show, json: described("ShowResponse", ShowResponse) }
  },
  {
    method: "GET",
    path: "/api/ps",
    dialect,
    handler: models.ps,
    summary: "The models in memory",
    api: { json: described("ProcessResponse", ProcessResponse) }
  },
  {
    method: "POST",
    path: "/api/chat",
    dialect,
    handler: generation.chat,
    promptParam: "messages",
    summary: "Chat (NDJSON chunks, or JSON), with tools and thinking",
    api: {
      body: bodies.chat,
      json: [described("ChatResponse", ChatResponse), described("LoadChat", LoadChat)],
      stream: { ...described("ChatLine", ChatLine), framing: "ndjson" }
    }
  },
  {
    method: "POST",
    path: "/api/generate",
    dialect,
    handler: generation.generate,
    summary: "Generate from a prompt (NDJSON chunks, or JSON)",
    api: {
      body: bodies.generate,
      json: [described("GenerateResponse", GenerateResponse), described("LoadGenerate", LoadGenerate)],
      stream: { ...described("GenerateLine", GenerateLine), framing: "ndjson" }
    }
  },
  {
    method: "POST",
    path: "/api/embed",
    dialect,
    handler: generation.embed,
    promptParam: "input",
    summary: "Embeddings",
    api: { body: bodies.embed, json: described("EmbedResponse", EmbedResponse) }
  },
  {
    method: "POST",
    path: "/api/embeddings",
    dialect,
    handler: generation.embeddings,
    summary: "One embedding (the older endpoint)",
    api: { body: bodies.embeddings, json: described("EmbeddingsResponse", EmbeddingsResponse) }
  },
  {
    method: "POST",
    path: "/api/pull",
    dialect,
    handler: pull,
    summary: "Download a model from the Hugging Face hub (hf.co/org/repo:Q4_K_M), NDJSON progress",
    api: {
      body: described("PullRequest", PullRequest),
      json: described("ProgressResponse", ProgressResponse),
      stream: { ...described("ProgressResponse", ProgressResponse), framing: "ndjson" }
    }
  },
  notSupported("POST", "/api/push", models.push),
  notSupported("POST", "/api/create", models.create),
  notSupported("POST", "/api/copy", models.copy),
  notSupported("DELETE", "/api/delete", models.delete),
  notSupported("POST", "/api/blobs/:digest", models.blobs),
  notSupported("HEAD", "/api/blobs/:digest", models.blobs)
]
