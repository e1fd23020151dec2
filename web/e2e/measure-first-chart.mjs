// Measures, in real headless Chromium against a running node, how long the overview takes to
// put its first chart on screen, and how long the device list API takes with filters. Prints
// figures for docs/BENCHMARKS.md; asserts nothing (speed is measured on purpose, not tested).
//
//   HASHMESH_URL=http://127.0.0.1:18080 HASHMESH_PASSWORD=… node e2e/measure-first-chart.mjs
//
// RUNS (default 5) page loads are timed: the first with an empty cache, the rest warm.

import { chromium } from "playwright-core";

const url = process.env.HASHMESH_URL ?? "http://127.0.0.1:18080";
const password = process.env.HASHMESH_PASSWORD ?? "";
const runs = Number(process.env.RUNS ?? 5);
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return `median ${q(0.5).toFixed(1)} ms, p90 ${q(0.9).toFixed(1)} ms, min ${s[0].toFixed(1)} ms, max ${s[s.length - 1].toFixed(1)} ms (n=${s.length})`;
}

// Runs in the page before its scripts: notes when the first chart has data and has been
// painted (the frame after uPlot drew it), relative to the start of navigation.
function watchFirstChart() {
  const done = (t) => {
    if (window.__firstChartMs === undefined) window.__firstChartMs = t;
  };
  new MutationObserver((changes) => {
    for (const c of changes) {
      const el = c.target;
      if (el instanceof HTMLElement && el.dataset.chart && Number(el.dataset.points) > 0) {
        requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now())));
      }
    }
  }).observe(document, { attributes: true, attributeFilter: ["data-points"], subtree: true });
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ARGS });
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const login = await context.request.post(`${url}/api/v1/auth/login`, { data: { username: "admin", password } });
  if (!login.ok()) throw new Error(`login failed: HTTP ${login.status()}`);
  const summary = await (await context.request.get(`${url}/api/v1/fleet/summary`)).json();
  console.log(`node at ${url}: ${summary.devices} devices`);

  const firstChart = [];
  for (let i = 0; i < runs; i++) {
    const page = await context.newPage();
    if (i === 0) {
      const cdp = await context.newCDPSession(page);
      await cdp.send("Network.clearBrowserCache");
    }
    await page.addInitScript(watchFirstChart);
    await page.goto(`${url}/#/`);
    await page.waitForFunction(() => window.__firstChartMs !== undefined, null, { timeout: 60_000 });
    const t = await page.evaluate(() => window.__firstChartMs);
    const nav = await page.evaluate(() => {
      const n = performance.getEntriesByType("navigation")[0];
      return n ? n.domContentLoadedEventEnd : NaN;
    });
    console.log(`overview load ${i + 1}${i === 0 ? " (cold cache)" : ""}: first chart on screen at ${t.toFixed(1)} ms (DOMContentLoaded ${nav.toFixed(1)} ms)`);
    firstChart.push(t);
    await page.close();
  }
  console.log(`first chart on screen after opening the overview: ${stats(firstChart)}`);

  const facets = await (await context.request.get(`${url}/api/v1/devices/facets`)).json();
  const firstRow = (await (await context.request.get(`${url}/api/v1/devices?limit=1`)).json()).items[0];
  const ipPrefix = firstRow ? firstRow.ip.split(".").slice(0, 3).join(".") + "." : "127.";
  const queries = [
    ["status=offline", "status=offline&limit=200"],
    ["status=mining,degraded sorted by hashrate", "status=mining,degraded&sort=hashrate_ths&order=desc&limit=200"],
    [`vendor=${facets.vendors?.[0]}`, `vendor=${encodeURIComponent(facets.vendors?.[0] ?? "")}&limit=200`],
    [`ip=${ipPrefix}`, `ip=${encodeURIComponent(ipPrefix)}&limit=200`],
    ["q=free text", `q=${encodeURIComponent((facets.models?.[0] ?? "S19").split(" ").pop())}&limit=200`],
    ["page deep in the list", "sort=chip_temp_max_c&order=desc&offset=50000&limit=200"],
  ];
  for (const [name, q] of queries) {
    const times = [];
    let matched = 0;
    for (let i = 0; i < 21; i++) {
      const t0 = performance.now();
      const res = await context.request.get(`${url}/api/v1/devices?${q}`);
      const body = await res.json();
      const dt = performance.now() - t0;
      if (!res.ok()) throw new Error(`${q}: HTTP ${res.status()} ${JSON.stringify(body)}`);
      matched = body.matched;
      if (i > 0) times.push(dt); // the first warms the node's row cache
    }
    console.log(`GET /api/v1/devices?${q} (${matched} matched): ${stats(times)}`);
  }
} finally {
  await browser.close();
}
