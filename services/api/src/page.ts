// The balance web page (`/`): plain HTML, CSS and JS from services/api/page, read once at start-up
// and served as they are (no framework, no build step). The script reads the member's token from
// the URL fragment or a paste box and polls the member endpoints.
import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";

const PAGE_DIR = new URL("../page/", import.meta.url);

const ASSETS = [
  { url: "/", file: "index.html", type: "text/html; charset=utf-8" },
  { url: "/page.css", file: "page.css", type: "text/css; charset=utf-8" },
  { url: "/page.js", file: "page.js", type: "text/javascript; charset=utf-8" },
] as const;

/** Only our own script and style; the token never leaves for another origin. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function pageRoutes(app: FastifyInstance, pollMs: number): void {
  for (const asset of ASSETS) {
    let text = readFileSync(new URL(asset.file, PAGE_DIR), "utf8");
    if (asset.file === "index.html") text = text.replace("{{POLL_MS}}", String(pollMs));
    app.get(asset.url, { schema: { hide: true } }, async (_request, reply) =>
      reply
        .type(asset.type)
        .header("cache-control", "no-cache")
        .header("content-security-policy", CSP)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .send(text),
    );
  }
}
