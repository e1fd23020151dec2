// Vite build of the dashboard into web/dist, which the node embeds (crates/node/src/webui.rs).
// After the bundle is written, a small plugin copies Swagger UI from the swagger-ui-dist
// package into dist/apidocs (served at /api/docs, no CDN), writes a .gz beside every text
// file (the node serves those to browsers that accept gzip), and fails the build when the
// dashboard's gzipped size passes its 300 KB budget.

import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
/** The dashboard's budget, gzipped, in bytes (Swagger UI is not part of it). */
const BUDGET_GZ_BYTES = 300_000;
const TEXT = /\.(js|mjs|css|html|svg|json|txt|map)$/;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const DOCS_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="UTF-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>hashmesh API</title>
    <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
    <link rel="stylesheet" href="/api/docs/swagger-ui.css" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/api/docs/swagger-ui-bundle.js"></script>
    <script src="/api/docs/init.js"></script>
  </body>
</html>
`;

// "Try it out" runs in the browser with the dashboard's session cookie; writes need the CSRF
// token, which /auth/me hands out again on every read.
const DOCS_INIT = `window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  requestInterceptor: async (req) => {
    if (req.method && req.method !== "GET" && !req.headers["X-CSRF-Token"]) {
      try {
        const r = await fetch("/api/v1/auth/me", { credentials: "same-origin" });
        if (r.ok) req.headers["X-CSRF-Token"] = (await r.json()).csrf_token;
      } catch (e) {
        console.warn("no CSRF token: not signed in?", e);
      }
    }
    return req;
  },
});
`;

function hashmeshDist(): Plugin {
  return {
    name: "hashmesh-dist",
    apply: "build",
    closeBundle() {
      const require = createRequire(import.meta.url);
      const swagger = dirname(require.resolve("swagger-ui-dist/package.json"));
      const docs = join(dist, "apidocs");
      mkdirSync(docs, { recursive: true });
      for (const f of ["swagger-ui.css", "swagger-ui-bundle.js", "LICENSE", "NOTICE"]) {
        copyFileSync(join(swagger, f), join(docs, f));
      }
      writeFileSync(join(docs, "index.html"), DOCS_HTML);
      writeFileSync(join(docs, "init.js"), DOCS_INIT);

      let appGz = 0;
      let docsGz = 0;
      for (const file of walk(dist)) {
        if (!TEXT.test(file)) continue;
        const gz = gzipSync(readFileSync(file), { level: 9 });
        writeFileSync(`${file}.gz`, gz);
        if (relative(dist, file).startsWith("apidocs")) docsGz += gz.length;
        else appGz += gz.length;
      }
      const kb = (n: number) => `${(n / 1000).toFixed(1)} KB`;
      console.log(`hashmesh: dashboard ${kb(appGz)} gzipped (budget ${kb(BUDGET_GZ_BYTES)}); Swagger UI ${kb(docsGz)} gzipped`);
      if (appGz > BUDGET_GZ_BYTES) {
        throw new Error(`the dashboard is ${kb(appGz)} gzipped, over its ${kb(BUDGET_GZ_BYTES)} budget`);
      }
    },
  };
}

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    sourcemap: false,
    // ECharts is one lazily loaded chunk of ~500 KB raw (~170 KB gzipped), on the site map only.
    chunkSizeWarningLimit: 700,
  },
  plugins: [hashmeshDist()],
  // Unit tests of the pure modules (`npm test`); the browser tests in e2e/ run under Playwright.
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
  server: {
    // `npm run dev` against a node on loopback (e.g. `hashmesh demo --listen 127.0.0.1:18080`;
    // HASHMESH_URL picks another).
    proxy: {
      "/api": { target: process.env.HASHMESH_URL ?? "http://127.0.0.1:18080", ws: true },
    },
  },
});
