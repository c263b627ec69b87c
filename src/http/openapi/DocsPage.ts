import * as crypto from "node:crypto"

/**
 * `GET /docs`: a page that reads `/openapi.json` and lists its tags, operations, parameters and
 * schemas, with nothing loaded from elsewhere (the server is often offline). The script and the
 * style are part of this module, so the bundle (dist/cli/shimmy.js) carries them as it carries any
 * code, with no generated file; they are inline and allowed by their hashes in the
 * Content-Security-Policy, which allows nothing else: no other script, no eval, no inline handler,
 * no request but to this server. The script writes every string of the document with
 * `textContent` (never as HTML).
 */

const style = `
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 70rem; padding: 1rem 1.5rem; color: #1b1b1b; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2rem; text-transform: capitalize; }
details { margin: .35rem 0; }
details.op > summary { cursor: pointer; padding: .3rem .5rem; border-radius: 4px; background: #f4f4f6; }
.method { display: inline-block; min-width: 4.2rem; font-weight: 700; font-family: ui-monospace, monospace; }
.method.get { color: #0b6e2f; } .method.post { color: #1c4fb8; } .method.delete { color: #b3261e; } .method.head { color: #6b5b00; }
.path { font-family: ui-monospace, monospace; }
.summary { color: #555; margin-left: .6rem; }
.body { padding: .3rem 1rem .6rem; }
table { border-collapse: collapse; margin: .3rem 0; }
td, th { border: 1px solid #ddd; padding: .2rem .5rem; text-align: left; vertical-align: top; }
pre { background: #f7f7f9; padding: .5rem; overflow: auto; max-height: 30rem; font-size: 13px; }
.status { font-family: ui-monospace, monospace; font-weight: 700; }
.muted { color: #666; }
.error { color: #b3261e; }
`

const script = `"use strict";
(function () {
  var root = document.getElementById("docs");
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function add(parent, child) { parent.appendChild(child); return child; }
  function fold(title, content, open) {
    var d = el("details");
    if (open) d.open = true;
    add(d, el("summary", title));
    add(d, content);
    return d;
  }
  function json(value) { return el("pre", JSON.stringify(value, null, 2)); }
  function refName(schema) {
    return schema && typeof schema.$ref === "string" ? schema.$ref.replace("#/components/schemas/", "") : null;
  }
  function schemaView(doc, schema, label) {
    var name = refName(schema);
    var shown = name !== null && doc.components && doc.components.schemas ? doc.components.schemas[name] : schema;
    var box = el("div");
    if (schema && schema.description && name !== null) add(box, el("p", schema.description, "muted"));
    add(box, json(shown));
    return fold(label + (name !== null ? " (" + name + ")" : ""), box, false);
  }
  function operation(doc, path, method, op) {
    var d = el("details", null, "op");
    var s = add(d, el("summary"));
    add(s, el("span", method.toUpperCase(), "method " + method));
    add(s, el("span", path, "path"));
    add(s, el("span", op.summary || "", "summary"));
    var body = add(d, el("div", null, "body"));
    if (op.description) add(body, el("p", op.description));
    add(body, el("p", "operationId: " + op.operationId + (op.security && op.security.length === 0 ? " (open: no API key needed)" : ""), "muted"));
    var params = op.parameters || [];
    if (params.length > 0) {
      add(body, el("h4", "Parameters"));
      var t = add(body, el("table"));
      var h = add(t, el("tr"));
      ["name", "in", "required", "description"].forEach(function (c) { add(h, el("th", c)); });
      params.forEach(function (p) {
        var r = add(t, el("tr"));
        [p.name, p.in, p.required ? "yes" : "no", p.description || ""].forEach(function (c) { add(r, el("td", c)); });
      });
    }
    if (op.requestBody && op.requestBody.content) {
      add(body, el("h4", "Request body"));
      Object.keys(op.requestBody.content).forEach(function (type) {
        add(body, schemaView(doc, op.requestBody.content[type].schema, type));
      });
    }
    if (op["x-websocket"]) {
      add(body, el("h4", "WebSocket messages"));
      add(body, el("p", op["x-websocket"].description || ""));
      add(body, schemaView(doc, op["x-websocket"].send, "sent by the client"));
      add(body, schemaView(doc, op["x-websocket"].receive, "sent by the server"));
    }
    add(body, el("h4", "Responses"));
    Object.keys(op.responses || {}).forEach(function (status) {
      var response = op.responses[status];
      var row = add(body, el("div"));
      add(row, el("span", status + " ", "status"));
      add(row, el("span", response.description || ""));
      Object.keys(response.content || {}).forEach(function (type) {
        add(row, schemaView(doc, response.content[type].schema, type));
      });
    });
    return d;
  }
  function render(doc) {
    root.textContent = "";
    add(root, el("h1", (doc.info && doc.info.title) || "API"));
    add(root, el("p", "version " + ((doc.info && doc.info.version) || "?") + " · OpenAPI " + doc.openapi, "muted"));
    if (doc.info && doc.info.description) add(root, el("p", doc.info.description));
    (doc.servers || []).forEach(function (s) { add(root, el("p", "Server: " + s.url, "path")); });
    var raw = add(root, el("p"));
    var link = add(raw, el("a", "/openapi.json"));
    link.href = "/openapi.json";
    var byTag = {};
    var order = (doc.tags || []).map(function (t) { return t.name; });
    Object.keys(doc.paths || {}).forEach(function (path) {
      var item = doc.paths[path];
      Object.keys(item).forEach(function (method) {
        var op = item[method];
        var tag = (op.tags && op.tags[0]) || "other";
        if (order.indexOf(tag) < 0) order.push(tag);
        (byTag[tag] = byTag[tag] || []).push(operation(doc, path, method, op));
      });
    });
    order.forEach(function (tag) {
      if (!byTag[tag]) return;
      add(root, el("h2", tag));
      byTag[tag].forEach(function (node) { add(root, node); });
    });
    var schemas = (doc.components && doc.components.schemas) || {};
    add(root, el("h2", "Schemas"));
    Object.keys(schemas).sort().forEach(function (name) { add(root, fold(name, json(schemas[name]), false)); });
  }
  fetch("/openapi.json", { headers: { accept: "application/json" } })
    .then(function (r) {
      if (!r.ok) throw new Error("GET /openapi.json answered " + r.status);
      return r.json();
    })
    .then(render)
    .catch(function (e) { root.textContent = ""; add(root, el("p", String(e && e.message || e), "error")); });
})();
`

const hash = (text: string) => `'sha256-${crypto.createHash("sha256").update(text, "utf8").digest("base64")}'`

/** The page's policy: its own inline script and style (by hash), requests to this server only. */
export const contentSecurityPolicy = [
  "default-src 'none'",
  `script-src ${hash(script)}`,
  `style-src ${hash(style)}`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join("; ")

export const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Shimmy API</title>
<style>${style}</style>
</head>
<body>
<main id="docs"><p>Loading the API description…</p></main>
<noscript><p>This page needs JavaScript; the description itself is at <a href="/openapi.json">/openapi.json</a>.</p></noscript>
<script>${script}</script>
</body>
</html>
`
