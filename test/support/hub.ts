import { createHash } from "node:crypto"
import * as http from "node:http"
import type { AddressInfo } from "node:net"

/**
 * A local stand-in for the Hugging Face hub, shaped like the real one where Shimmy looks:
 * `GET /api/models/<org>/<repo>/revision/<rev>?blobs=true` (the commit and `siblings` with sizes
 * and `lfs.sha256`), and `GET|HEAD /<org>/<repo>/resolve/<rev>/<file>` answering 302 to a CDN on
 * another origin (another port) with `X-Repo-Commit`, `X-Linked-Etag` and `X-Linked-Size`, as the
 * hub does. The CDN serves the bytes with `Range`. Faults on request: a token required, cuts
 * midway, Range ignored, wrong bytes. Every request is recorded.
 */

export interface HubRepo {
  readonly commit: string
  readonly files: Record<string, Buffer>
}

export interface Recorded {
  readonly server: "hub" | "cdn"
  readonly method: string
  readonly url: string
  readonly range: string | undefined
  readonly authorization: string | undefined
}

export interface HubFaults {
  /** the token the hub wants (401 without it, 403 with another) */
  token?: string
  /** the CDN closes the connection after this many bytes of a body, for the next `cuts` bodies */
  cutAfter?: number
  cuts?: number
  /** the CDN sends this many bytes of a body, then nothing more (the connection stays open) */
  stallAfter?: number
  /** the CDN answers every request with the whole file (200) */
  ignoreRange?: boolean
  /** the CDN sends these bytes for every file instead of the right ones */
  wrongBytes?: boolean
}

export interface FakeHub {
  /** the hub's origin, `http://127.0.0.1:PORT` (HF_ENDPOINT) */
  readonly url: string
  /** the CDN's origin, for plain-URL downloads */
  readonly cdnUrl: string
  readonly repos: Map<string, HubRepo>
  readonly faults: HubFaults
  readonly requests: Array<Recorded>
  /** serves `bytes` at `<cdnUrl>/files/<name>` (a plain https-style file server) */
  readonly serveFile: (name: string, bytes: Buffer) => void
  readonly close: () => Promise<void>
}

export const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex")

const listen = (server: http.Server) =>
  new Promise<string>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))
  )

export const startHub = async (): Promise<FakeHub> => {
  const repos = new Map<string, HubRepo>()
  const faults: HubFaults = {}
  const requests: Array<Recorded> = []
  const blobs = new Map<string, Buffer>()
  const plain = new Map<string, Buffer>()
  const record = (server: "hub" | "cdn", req: http.IncomingMessage) =>
    requests.push({
      server,
      method: req.method ?? "",
      url: req.url ?? "",
      range: req.headers.range,
      authorization: req.headers.authorization
    })

  const serveBytes = (req: http.IncomingMessage, res: http.ServerResponse, original: Buffer) => {
    const bytes = faults.wrongBytes === true
      ? Buffer.from(original).fill(0x5a, 0, Math.min(64, original.length))
      : original
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "")
    const headers = {
      "accept-ranges": "bytes",
      etag: `"${sha256(original)}"`,
      "content-type": "application/octet-stream"
    }
    let start = 0
    if (range !== null && faults.ignoreRange !== true) {
      start = Number(range[1])
      if (start >= bytes.length) {
        res.writeHead(416, { ...headers, "content-range": `bytes */${bytes.length}` })
        return res.end()
      }
      res.writeHead(206, {
        ...headers,
        "content-range": `bytes ${start}-${bytes.length - 1}/${bytes.length}`,
        "content-length": bytes.length - start
      })
    } else {
      res.writeHead(200, { ...headers, "content-length": bytes.length })
    }
    if (req.method === "HEAD") return res.end()
    const body = bytes.subarray(start)
    if (faults.stallAfter !== undefined && body.length > faults.stallAfter) {
      res.write(body.subarray(0, faults.stallAfter))
      return
    }
    if (faults.cutAfter !== undefined && (faults.cuts ?? 0) > 0 && body.length > faults.cutAfter) {
      faults.cuts = (faults.cuts ?? 0) - 1
      res.write(body.subarray(0, faults.cutAfter), () => res.socket?.destroy())
      return
    }
    res.end(body)
  }

  const cdn = http.createServer((req, res) => {
    record("cdn", req)
    const url = new URL(req.url ?? "/", "http://cdn")
    const blob = /^\/blob\/([0-9a-f]{64})$/.exec(url.pathname)
    const bytes = blob !== null
      ? blobs.get(blob[1]!)
      : plain.get(decodeURIComponent(url.pathname.replace(/^\/files\//, "")))
    if (bytes === undefined) {
      res.writeHead(404, { "content-type": "text/plain" })
      return res.end("Not Found")
    }
    serveBytes(req, res, bytes)
  })
  const cdnUrl = await listen(cdn)

  const refuse = (res: http.ServerResponse, status: number, code: string, error: string) => {
    res.writeHead(status, { "content-type": "application/json", "x-error-code": code, "x-error-message": error })
    res.end(JSON.stringify({ error }))
  }

  const hub = http.createServer((req, res) => {
    record("hub", req)
    const url = new URL(req.url ?? "/", "http://hub")
    if (faults.token !== undefined) {
      const auth = req.headers.authorization
      if (auth === undefined) {
        return refuse(res, 401, "GatedRepo", "Access to this model is restricted. You must be authenticated.")
      }
      if (auth !== `Bearer ${faults.token}`) return refuse(res, 403, "GatedRepo", "Access to this model is restricted.")
    }
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname)
    if (api !== null) {
      const repo = repos.get(api[1]!)
      if (repo === undefined) return refuse(res, 404, "RepoNotFound", "Repository not found")
      const revision = decodeURIComponent(api[2]!)
      if (revision !== "main" && revision !== repo.commit) {
        return refuse(res, 404, "RevisionNotFound", `Invalid rev id: ${revision}`)
      }
      res.writeHead(200, { "content-type": "application/json" })
      return res.end(JSON.stringify({
        _id: "0",
        id: api[1],
        sha: repo.commit,
        siblings: Object.entries(repo.files).map(([rfilename, bytes]) => ({
          rfilename,
          size: bytes.length,
          blobId: createHash("sha1").update(bytes).digest("hex"),
          ...(rfilename.endsWith(".gguf")
            ? { lfs: { sha256: sha256(bytes), size: bytes.length, pointerSize: 134 } }
            : {})
        }))
      }))
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname)
    if (resolve !== null && (req.method === "GET" || req.method === "HEAD")) {
      const repo = repos.get(resolve[1]!)
      if (repo === undefined) return refuse(res, 404, "RepoNotFound", "Repository not found")
      const file = repo.files[decodeURIComponent(resolve[3]!)]
      if (file === undefined) return refuse(res, 404, "EntryNotFound", "Entry not found")
      const digest = sha256(file)
      blobs.set(digest, file)
      // the hub's redirect to its CDN: the commit, the LFS etag and size, a signed-looking URL
      res.writeHead(302, {
        location: `${cdnUrl}/blob/${digest}`,
        "x-repo-commit": repo.commit,
        "x-linked-etag": `"${digest}"`,
        "x-linked-size": String(file.length),
        etag: `"${createHash("sha1").update(file).digest("hex")}"`
      })
      return res.end()
    }
    refuse(res, 404, "EntryNotFound", "Not found")
  })
  const url = await listen(hub)
  const close = (server: http.Server) =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return {
    url,
    cdnUrl,
    repos,
    faults,
    requests,
    serveFile: (name, bytes) => plain.set(name, bytes),
    close: () => Promise.all([close(hub), close(cdn)]).then(() => undefined)
  }
}
