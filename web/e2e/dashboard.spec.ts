// End-to-end tests of the dashboard in real headless Chromium against a real demo node (a
// simulated farm on loopback, the node polling it, the binary serving the embedded app).
// scripts/e2e starts the demo and passes its address and admin password.

import { expect, test, type Page, type WebSocketRoute } from "@playwright/test";
import { api, chartPoints, login, seriesPixels, shot } from "./helpers";

interface Summary {
  devices: number;
  by_status: Record<string, number>;
  hashrate_ths: number;
  power_w: number;
}
interface Row {
  id: string;
  ip: string;
  status: string;
  kind?: string;
  hashrate_ths: number | null;
}
interface DevicePage {
  total: number;
  matched: number;
  items: Row[];
}
interface Detail {
  capabilities: Record<string, boolean>;
}

/** Ids of the rows the table shows, top to bottom. */
async function tableIds(page: Page): Promise<string[]> {
  return page.$$eval(".dt-canvas .dt-row[data-id]", (rows) =>
    rows
      .map((r) => [Number(r.getAttribute("data-index")), r.getAttribute("data-id") ?? ""] as const)
      .sort((a, b) => a[0] - b[0])
      .map((r) => r[1]),
  );
}

/** The number the table says matched ("1,234 of 5,000 devices"). */
async function matchedCount(page: Page): Promise<number> {
  const text = (await page.getByTestId("matched").textContent()) ?? "";
  const m = /^([\d,]+) of/.exec(text);
  return m ? Number(m[1]!.replace(/,/g, "")) : -1;
}

/** A mining device whose driver can switch its locate LED. */
async function ledDevice(page: Page): Promise<string> {
  const list = await api<DevicePage>(page, "/api/v1/devices?status=mining&limit=200");
  for (const row of list.items) {
    const d = await api<Detail>(page, `/api/v1/devices/${encodeURIComponent(row.id)}`);
    if (d.capabilities.locate_led) return row.id;
  }
  throw new Error("no mining device in the demo farm has a locate LED");
}

test.describe.configure({ mode: "serial" });

// Every test fails on a script error or a console error in the page (a CSP violation, a failed
// asset, an exception), except the 401s the app expects (the session check before sign-in and
// the refused password).
let pageErrors: string[] = [];
test.beforeEach(({ page }) => {
  pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(`exception: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 401/.test(m.text())) pageErrors.push(`console: ${m.text()}`);
  });
});
test.afterEach(() => {
  expect(pageErrors).toEqual([]);
});

test("a wrong password is refused with a clear message", async ({ page }) => {
  await page.goto("/");
  await page.locator("#login-user").fill("admin");
  await page.locator("#login-password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("login-error")).toHaveText("Wrong user name or password.");
  await expect(page.locator("header.topbar")).toHaveCount(0);
  await shot(page, "login-refused");
});

test("the overview shows the farm's real numbers and draws its charts", async ({ page }) => {
  await login(page);
  const tile = page.getByTestId("tile-devices");
  await expect(tile).not.toHaveAttribute("data-value", "");
  await expect(page.getByTestId("live-state")).toHaveText("live");

  // The tiles against the API. The farm changes every poll cycle (and the tiles follow it
  // live), so compare a tile reading with the API's answer right after it, until one pair
  // agrees: device and mining counts exactly, hashrate and power within 5 %.
  const mismatch = async (): Promise<string> => {
    const shown = {
      devices: Number(await tile.getAttribute("data-value")),
      hashrate: Number(await page.getByTestId("tile-hashrate").getAttribute("data-value")),
      power: Number(await page.getByTestId("tile-power").getAttribute("data-value")),
      mining: Number(((await page.getByTestId("count-mining").textContent()) ?? "").replace(/,/g, "")),
    };
    const s = await api<Summary>(page, "/api/v1/fleet/summary");
    const off: string[] = [];
    if (shown.devices !== s.devices) off.push(`devices ${shown.devices} vs ${s.devices}`);
    if (shown.mining !== (s.by_status.mining ?? 0)) off.push(`mining ${shown.mining} vs ${s.by_status.mining}`);
    if (!(s.hashrate_ths > 0) || Math.abs(shown.hashrate - s.hashrate_ths) / s.hashrate_ths > 0.05) {
      off.push(`hashrate ${shown.hashrate} vs ${s.hashrate_ths}`);
    }
    if (!(s.power_w > 0) || Math.abs(shown.power - s.power_w) / s.power_w > 0.05) off.push(`power ${shown.power} vs ${s.power_w}`);
    return off.join("; ");
  };
  await expect.poll(mismatch, { timeout: 60_000, intervals: [1000, 2000, 3000] }).toBe("");
  await expect(page.getByTestId("tile-hashrate")).toContainText(/[TPE]H\/s/);

  // A site row per site in the breakdown, linking to its devices.
  await expect(page.locator('[data-testid="groups"] tr.site-row').first()).toBeVisible();

  expect(await chartPoints(page, "Hashrate")).toBeGreaterThan(0);
  await expect.poll(() => seriesPixels(page, "Hashrate"), { timeout: 90_000 }).toBeGreaterThan(5);
  await shot(page, "overview-light");
});

test("the device table filters by status and IP prefix, sorts, and selects", async ({ page }) => {
  await login(page);
  await page.goto("/#/devices");
  await expect.poll(() => matchedCount(page)).toBeGreaterThan(0);
  const all = await matchedCount(page);
  const api_all = await api<DevicePage>(page, "/api/v1/devices?limit=1");
  expect(all).toBe(api_all.matched);
  // Only the rows in view are in the DOM, not the whole farm.
  const rendered = await page.locator(".dt-canvas .dt-row").count();
  expect(rendered).toBeGreaterThan(5);
  expect(rendered).toBeLessThan(Math.min(all, 80));
  await shot(page, "devices");

  // A status filter shows only rows of that status, as many as the API counts: offline, and
  // the rarest status the farm has right now besides mining (the demo's faulty devices).
  const summary = await api<Summary>(page, "/api/v1/fleet/summary");
  const rare = Object.entries(summary.by_status)
    .filter(([st, n]) => st !== "mining" && st !== "offline" && n > 0)
    .sort((a, b) => a[1] - b[1])[0]?.[0];
  for (const status of ["offline", ...(rare ? [rare] : [])]) {
    const want = await api<DevicePage>(page, `/api/v1/devices?status=${status}&limit=1`);
    await page.locator(`.chips [data-status="${status}"]`).click();
    await expect(page).toHaveURL(new RegExp(`status=${status}`));
    await expect.poll(() => matchedCount(page)).toBe(want.matched);
    if (want.matched === 0) {
      await expect(page.getByText("No device matches these filters.")).toBeVisible();
    } else {
      await expect(page.locator(".dt-canvas .dt-row[data-id]").first()).toBeVisible();
      const statuses = await page.$$eval(".dt-canvas .dt-row[data-id]", (rows) =>
        rows.map((r) => r.getAttribute("data-status")),
      );
      // A few matches all fit on screen: every one of them is drawn.
      if (want.matched <= 15) expect(statuses.length).toBe(want.matched);
      expect(new Set(statuses)).toEqual(new Set([status]));
      expect(want.matched).toBeLessThan(all);
    }
    await page.locator(`.chips [data-status="${status}"]`).click();
    await expect.poll(() => matchedCount(page)).toBe(all);
  }
  expect(rare, "the demo farm should have a few faulty devices").toBeTruthy();

  // An IP prefix narrows the list to addresses that start with it.
  const first = api_all.items[0]!.ip;
  const prefix = first.slice(0, first.lastIndexOf(".") + 2); // e.g. "127.31.0.1"
  await page.locator('input[data-filter="ip"]').fill(prefix);
  const narrowed = await api<DevicePage>(page, `/api/v1/devices?ip=${encodeURIComponent(prefix)}&limit=1`);
  expect(narrowed.matched).toBeLessThan(all);
  await expect.poll(() => matchedCount(page)).toBe(narrowed.matched);
  const ips = await page.$$eval(".dt-canvas .dt-row[data-id] .c-ip a", (as) => as.map((a) => a.textContent ?? ""));
  expect(ips.length).toBeGreaterThan(0);
  for (const ip of ips) expect(ip.startsWith(prefix)).toBe(true);
  await page.locator('input[data-filter="ip"]').fill("");
  await expect.poll(() => matchedCount(page)).toBe(all);

  // Sorting by hashrate, highest first, gives the API's order.
  await page.locator('button.sort[data-sort="hashrate_ths"]').click();
  await expect(page).toHaveURL(/sort=hashrate_ths/);
  await expect(page.locator('button.sort[data-sort="hashrate_ths"]')).toHaveAttribute("aria-sort", "descending");
  const top = await api<DevicePage>(page, "/api/v1/devices?sort=hashrate_ths&order=desc&limit=5");
  await expect.poll(async () => (await tableIds(page)).slice(0, 3)).toEqual(top.items.slice(0, 3).map((r) => r.id));
  await page.locator('button.sort[data-sort="hashrate_ths"]').click();
  await expect(page.locator('button.sort[data-sort="hashrate_ths"]')).toHaveAttribute("aria-sort", "ascending");

  // Shift-click selects a range; "select all matching" selects every match.
  const checks = page.locator(".dt-canvas .dt-row[data-id] .c-select input");
  await checks.nth(1).click();
  await checks.nth(5).click({ modifiers: ["Shift"] });
  await expect(page.getByTestId("selected-count")).toHaveText("5 selected");
  await page.getByTestId("select-all-matching").click();
  await expect(page.getByTestId("selected-count")).toHaveText(`${all.toLocaleString("en-US")} selected`);
  await expect(page.getByTestId("bulk-actions")).toBeVisible();
});

test("a bulk action on selected rows reports each device's outcome", async ({ page }) => {
  await login(page);
  const id = await ledDevice(page);
  await page.goto(`/#/devices?q=${encodeURIComponent(id)}`);
  await expect.poll(() => matchedCount(page)).toBe(1);
  await page.locator(".dt-canvas .dt-row[data-id] .c-select input").first().click();
  await expect(page.getByTestId("selected-count")).toHaveText("1 selected");
  await page.getByTestId("bulk-actions").locator("summary").click();
  await page.locator('[data-testid="bulk-actions"] [data-action="led-off"]').click();
  await expect(page.getByTestId("confirm-dialog")).toBeVisible();
  await page.getByTestId("confirm-ok").click();
  const result = page.locator(`[data-testid="job-result"][data-device="${id}"]`);
  await expect(result).toBeVisible({ timeout: 60_000 });
  await expect(result).toHaveAttribute("data-result", /confirmed|unverified/, { timeout: 60_000 });
});

test("a device page shows its reading and charts, and a command is confirmed", async ({ page }) => {
  await login(page);
  const id = await ledDevice(page);
  await page.goto(`/#/devices?q=${encodeURIComponent(id)}`);
  await page.locator(`.dt-canvas .dt-row[data-id="${id}"] .c-ip a`).click();
  await expect(page).toHaveURL(new RegExp(`#/device/${encodeURIComponent(id).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  await expect(page.getByTestId("device-status")).toHaveText("mining");
  await expect(page.getByTestId("boards")).toBeVisible();
  await expect(page.getByTestId("pools")).toBeVisible();
  await expect(page.locator('[data-testid="snapshot"] [data-field="hashrate_ths"]')).toContainText("TH/s");

  expect(await chartPoints(page, "Hashrate")).toBeGreaterThan(0);
  await expect.poll(() => seriesPixels(page, "Hashrate"), { timeout: 60_000 }).toBeGreaterThan(5);
  await shot(page, "device-detail");

  // Locate LED on: confirm, then the read-back outcome appears.
  await page.locator('[data-testid="device-actions"] [data-action="led-on"]').click();
  await expect(page.getByTestId("confirm-dialog")).toContainText("Locate LED on");
  await page.getByTestId("confirm-ok").click();
  const result = page.locator('[data-testid="job-result"]').first();
  await expect(result).toHaveAttribute("data-result", "confirmed", { timeout: 60_000 });
  await expect(result).toContainText("confirmed");
  await expect(page.getByTestId("job-state")).toHaveText("done");
  await shot(page, "device-command-confirmed");

  // And off again, so the farm is left as it was.
  await page.locator('[data-testid="device-actions"] [data-action="led-off"]').click();
  await page.getByTestId("confirm-ok").click();
  await expect(page.locator('[data-testid="job"]').first()).toHaveAttribute("data-state", "done", { timeout: 60_000 });
});

test("the site map draws the racks and a cell opens its device", async ({ page }) => {
  await login(page);
  await page.goto("/#/sitemap");
  const map = page.getByTestId("map");
  await expect.poll(async () => Number(await map.getAttribute("data-cells")), { timeout: 30_000 }).toBeGreaterThan(0);
  await expect(page.getByTestId("map-legend")).toContainText("°C");
  await shot(page, "sitemap-temperature");
  await page.locator('[data-by="status"]').click();
  await expect(page.getByTestId("map-legend")).toContainText("mining");
  await shot(page, "sitemap-status");

  // One container, large cells; clicking the first placed cell opens that device.
  const container = page.getByTestId("map-container");
  const second = await container.locator("option").nth(1).getAttribute("value");
  await container.selectOption(second!);
  await expect(page).toHaveURL(/container=/);
  await expect.poll(async () => Number(await map.getAttribute("data-cell-px"))).toBeGreaterThanOrEqual(12);
  await shot(page, "sitemap-container");
  const [x, y] = ((await map.getAttribute("data-first-cell")) ?? "0,0").split(",").map(Number);
  await map.click({ position: { x: x!, y: y! } });
  await expect(page).toHaveURL(/#\/device\//);
  await expect(page.getByTestId("device-status")).not.toBeEmpty();
});

test("the theme toggle switches and is remembered", async ({ page }) => {
  await page.emulateMedia({ colorScheme: "light" });
  await login(page);
  const html = page.locator("html");
  await expect(html).toHaveAttribute("data-theme", "light");
  await page.getByTestId("theme-toggle").click();
  await expect(html).toHaveAttribute("data-theme", "dark");
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(bg).toBe("rgb(11, 15, 22)");
  await chartPoints(page, "Hashrate");
  await shot(page, "overview-dark");
  await page.goto("/#/devices");
  await expect.poll(() => matchedCount(page)).toBeGreaterThan(0);
  await shot(page, "devices-dark");
  await page.reload();
  await expect(html).toHaveAttribute("data-theme", "dark");
  await page.getByTestId("theme-toggle").click();
  await expect(html).toHaveAttribute("data-theme", "light");
});

test.describe("on a phone", () => {
  test.use({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });

  test("pages fit a 390 px screen", async ({ page }) => {
    await login(page);
    await chartPoints(page, "Hashrate");
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(await overflow()).toBeLessThanOrEqual(0);
    await shot(page, "phone-overview");
    await page.goto("/#/devices");
    await expect.poll(() => matchedCount(page)).toBeGreaterThan(0);
    expect(await overflow()).toBeLessThanOrEqual(0);
    await shot(page, "phone-devices");
    const id = (await tableIds(page))[0]!;
    await page.goto(`/#/device/${encodeURIComponent(id)}`);
    await expect(page.getByTestId("device-status")).not.toBeEmpty();
    expect(await overflow()).toBeLessThanOrEqual(0);
    await shot(page, "phone-device");
    await page.goto("/#/sitemap");
    await expect.poll(async () => Number(await page.getByTestId("map").getAttribute("data-cells"))).toBeGreaterThan(0);
    await shot(page, "phone-sitemap");
  });
});

test("live updates come back after the WebSocket drops", async ({ page }) => {
  // The page's WebSocket goes through Playwright to the real node, so the test can cut it.
  const sockets: WebSocketRoute[] = [];
  await page.routeWebSocket(/\/api\/v1\/ws$/, (ws) => {
    sockets.push(ws);
    ws.connectToServer();
  });
  await login(page);
  const badge = page.getByTestId("live-state");
  await expect(badge).toHaveText("live");
  await expect(page.getByTestId("poller")).toContainText("updated");
  const before = await page.getByTestId("poller").textContent();

  await sockets[0]!.close({ code: 4000, reason: "test cut the connection" });
  await expect(badge).toHaveText("reconnecting…");
  await expect(badge).toHaveText("live", { timeout: 15_000 });
  expect(sockets.length).toBe(2);
  // Frames flow again: the next summary (one poll interval) updates the overview.
  await expect(page.getByTestId("poller")).not.toHaveText(before ?? "", { timeout: 30_000 });
});

test("API docs are served from the binary", async ({ page }) => {
  await page.goto("/api/docs");
  await expect(page.locator(".swagger-ui .info .title")).toBeVisible({ timeout: 30_000 });
  await shot(page, "api-docs");
});
