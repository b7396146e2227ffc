#!/usr/bin/env node
// A static file server for web/ (no dependencies): correct MIME types (application/wasm for
// .wasm, so WebAssembly.instantiateStreaming works), no caching, loopback only. It also serves
// the repository's models/ folder at /models/ (read-only: GET and HEAD), so that lm.html
// fetches ../models/<name>/config.json and model.safetensors without copies in web/ (the
// same relative URL works when a server's root is the repository: /web/lm.html, /models/).
//
//   node web/serve.mjs [port]        serves http://127.0.0.1:8080/ (or the port given, 0 = any free)
//
// test.mjs imports startServer() to run the same server on a free port.

import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL(".", import.meta.url)));
// URL prefixes served from other folders than web/.
const MOUNTS = [["/models/", resolve(ROOT, "..", "models")]];

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".ts": "text/plain; charset=utf-8",
  ".md": "text/plain; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".ico": "image/x-icon",
  ".safetensors": "application/octet-stream",
};

/** The file a URL path names: under a mount's folder, or under `root`; null outside them. */
function fileFor(path, root) {
  const [prefix, dir] = MOUNTS.find(([p]) => path.startsWith(p)) ?? ["/", root];
  const file = normalize(join(dir, path.slice(prefix.length)));
  return file === dir || file.startsWith(dir + sep) ? file : null;
}

/** Starts the server on 127.0.0.1:`port` (0: a free port). Resolves to `{server, port, url}`. */
export function startServer(port = 0, root = ROOT) {
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url, "http://localhost");
      let path = decodeURIComponent(url.pathname);
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" }).end("read-only");
        return;
      }
      if (path.endsWith("/")) path += "index.html";
      const file = fileFor(path, root);
      if (!file) {
        res.writeHead(403).end("forbidden");
        return;
      }
      const info = await stat(file).catch(() => null);
      if (!info || !info.isFile()) {
        res.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${path}`);
        return;
      }
      const body = await readFile(file);
      res.writeHead(200, {
        "content-type": MIME[extname(file).toLowerCase()] ?? "application/octet-stream",
        "content-length": body.length,
        "cache-control": "no-store",
      });
      res.end(req.method === "HEAD" ? undefined : body);
    } catch (e) {
      res.writeHead(500, { "content-type": "text/plain" }).end(String(e));
    }
  });
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, "127.0.0.1", () => {
      const p = server.address().port;
      ok({ server, port: p, url: `http://127.0.0.1:${p}/` });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
  const { url } = await startServer(port);
  console.log(`webattn demo: ${url}  (tests: ${url}test.html; Ctrl-C to stop)`);
}
