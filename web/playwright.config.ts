// Playwright runs the end-to-end tests (e2e/*.spec.ts) in Debian's Chromium, headless, against
// the demo node that scripts/e2e starts. It never downloads a browser of its own.

import { defineConfig } from "@playwright/test";

/** Flags for a headless Chromium in a container that must not reach the network. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export default defineConfig({
  testDir: "./e2e",
  testMatch: /.*\.spec\.ts$/,
  timeout: 120_000,
  expect: { timeout: 20_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  outputDir: "../artifacts/e2e-results",
  use: {
    baseURL: process.env.HASHMESH_URL ?? "http://127.0.0.1:18080",
    browserName: "chromium",
    headless: true,
    viewport: { width: 1440, height: 900 },
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: CHROMIUM_ARGS,
    },
    screenshot: "only-on-failure",
    trace: "off",
  },
});
