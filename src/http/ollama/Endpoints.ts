import type { Route } from "../Dialect.js"
import { handlers as generation } from "./Generate.js"
import { handlers as models } from "./Models.js"
import { pull } from "./Pull.js"
import { dialect } from "./Render.js"

/**
 * Ollama's API (docs/api.md), written once relative to its root: Routes.ts mounts it under
 * `/ollama` and at the root of the main port (but `POST /api/generate`, the seed API's there), and
 * whole at the root of the Ollama-only port.
 */
export const routes: ReadonlyArray<Route> = [
  { method: "GET", path: "/", dialect, handler: models.root, summary: "\"Ollama is running\"" },
  { method: "HEAD", path: "/", dialect, handler: models.root, summary: "\"Ollama is running\"" },
  { method: "GET", path: "/api/version", dialect, handler: models.version, summary: "The Ollama version served" },
  { method: "GET", path: "/api/tags", dialect, handler: models.tags, summary: "The usable models" },
  { method: "HEAD", path: "/api/tags", dialect, handler: models.tags, summary: "The usable models" },
  { method: "POST", path: "/api/show", dialect, handler: models.show, summary: "One model's details" },
  { method: "GET", path: "/api/ps", dialect, handler: models.ps, summary: "The models in memory" },
  {
    method: "POST",
    path: "/api/chat",
    dialect,
    handler: generation.chat,
    promptParam: "messages",
    summary: "Chat (NDJSON chunks, or JSON), with tools and thinking"
  },
  {
    method: "POST",
    path: "/api/generate",
    dialect,
    handler: generation.generate,
    summary: "Generate from a prompt (NDJSON chunks, or JSON)"
  },
  {
    method: "POST",
    path: "/api/embed",
    dialect,
    handler: generation.embed,
    promptParam: "input",
    summary: "Embeddings"
  },
  {
    method: "POST",
    path: "/api/embeddings",
    dialect,
    handler: generation.embeddings,
    summary: "One embedding (the older endpoint)"
  },
  {
    method: "POST",
    path: "/api/pull",
    dialect,
    handler: pull,
    summary: "Download a model from the Hugging Face hub (hf.co/org/repo:Q4_K_M), NDJSON progress"
  },
  { method: "POST", path: "/api/push", dialect, handler: models.push, summary: "Not supported (501)" },
  { method: "POST", path: "/api/create", dialect, handler: models.create, summary: "Not supported (501)" },
  { method: "POST", path: "/api/copy", dialect, handler: models.copy, summary: "Not supported (501)" },
  { method: "DELETE", path: "/api/delete", dialect, handler: models.delete, summary: "Not supported (501)" },
  { method: "POST", path: "/api/blobs/:digest", dialect, handler: models.blobs, summary: "Not supported (501)" },
  { method: "HEAD", path: "/api/blobs/:digest", dialect, handler: models.blobs, summary: "Not supported (501)" }
]
