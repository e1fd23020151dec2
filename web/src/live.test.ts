// Unit test of the WebSocket reconnect schedule (Vitest); the reconnect itself is tested in a
// real browser against a real node (e2e/dashboard.spec.ts).

import { describe, expect, it } from "vitest";
import { backoffMs } from "./live";

describe("backoffMs", () => {
  it("doubles from half a second to a 30 s ceiling, with ±25 % jitter", () => {
    for (let n = 0; n < 12; n++) {
      const base = Math.min(30_000, 500 * 2 ** n);
      for (let k = 0; k < 50; k++) {
        const ms = backoffMs(n);
        expect(ms).toBeGreaterThanOrEqual(base * 0.75);
        expect(ms).toBeLessThanOrEqual(base * 1.25);
      }
    }
  });
  it("spreads clients out instead of reconnecting in step", () => {
    const samples = new Set(Array.from({ length: 50 }, () => backoffMs(6)));
    expect(samples.size).toBeGreaterThan(10);
  });
});
