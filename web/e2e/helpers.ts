// Shared steps of the end-to-end tests: signing in through the real form, reading the real API
// with the browser's session, counting chart pixels, and saving screenshots as artefacts.

import { expect, type Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

/** The admin password scripts/e2e gave the demo. */
export const PASSWORD = process.env.HASHMESH_PASSWORD ?? "";
const SHOTS = process.env.HASHMESH_SCREENSHOTS ?? join(process.cwd(), "..", "artifacts", "screenshots");

/** Signs in as admin through the login form and waits for the overview. */
export async function login(page: Page): Promise<void> {
  expect(PASSWORD, "HASHMESH_PASSWORD must be set (scripts/e2e does)").not.toBe("");
  await page.goto("/");
  await page.locator("#login-user").fill("admin");
  await page.locator("#login-password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.locator("header.topbar")).toBeVisible();
}

/** GETs an API path with the page's session cookie and returns the JSON. */
export async function api<T>(page: Page, path: string): Promise<T> {
  const res = await page.request.get(path);
  expect(res.status(), `GET ${path}`).toBe(200);
  return (await res.json()) as T;
}

/** Saves a full-page screenshot to artifacts/screenshots/<name>.png. */
export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Waits until the named chart has data points and returns how many. */
export async function chartPoints(page: Page, title: string, timeout = 120_000): Promise<number> {
  const chart = page.locator(`[data-chart="${title}"]`);
  await expect(chart).toBeVisible();
  await expect
    .poll(async () => Number(await chart.getAttribute("data-points")), { timeout, intervals: [500, 1000, 2000] })
    .toBeGreaterThan(0);
  return Number(await chart.getAttribute("data-points"));
}

/**
 * Counts the pixels of a chart's canvas drawn in its first series' colour: more than a few
 * means the line was really drawn, not just axes and a legend.
 */
export async function seriesPixels(page: Page, title: string, cssVar = "--c-hash"): Promise<number> {
  return page.evaluate(
    ({ title, cssVar }) => {
      const canvas = document.querySelector<HTMLCanvasElement>(`[data-chart="${title}"] canvas`);
      if (!canvas) return -1;
      const hex = getComputedStyle(document.documentElement).getPropertyValue(cssVar).trim();
      const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
      const ctx = canvas.getContext("2d");
      if (!ctx) return -1;
      const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      let n = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (
          data[i + 3]! > 200 &&
          Math.abs(data[i]! - want[0]!) < 12 &&
          Math.abs(data[i + 1]! - want[1]!) < 12 &&
          Math.abs(data[i + 2]! - want[2]!) < 12
        ) {
          n++;
        }
      }
      return n;
    },
    { title, cssVar },
  );
}
