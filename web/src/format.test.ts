// Unit tests of number formatting and field labels (Vitest).

import { describe, expect, it } from "vitest";
import * as f from "./format";

describe("format", () => {
  it("scales hashrate and power to readable units", () => {
    expect(f.hashrate(110.24)).toBe("110.2 TH/s");
    expect(f.hashrate(1.234)).toBe("1.23 TH/s");
    expect(f.hashrate(32233.7)).toBe("32.23 PH/s");
    expect(f.hashrate(2.5e6)).toBe("2.50 EH/s");
    expect(f.power(3250)).toBe("3.3 kW");
    expect(f.power(810862)).toBe("811 kW");
    expect(f.power(3.01e6)).toBe("3.01 MW");
    expect(f.power(27)).toBe("27 W");
  });

  it("shows a dash for a missing or non-finite value", () => {
    for (const x of [null, undefined, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(f.hashrate(x)).toBe("—");
      expect(f.temp(x)).toBe("—");
      expect(f.count(x)).toBe("—");
    }
    expect(f.pct(1, 0)).toBe("—");
  });

  it("writes durations, shares and counts", () => {
    expect(f.duration(59)).toBe("59s");
    expect(f.duration(3725)).toBe("1h 2m");
    expect(f.duration(9 * 86400 + 23 * 3600 + 5)).toBe("9d 23h");
    expect(f.pct(99.7, 100)).toBe("99.7 %");
    expect(f.count(1234567)).toBe("1,234,567");
  });

  it("labels fields from their names and units", () => {
    expect(f.field("chip_temp_c")).toEqual(["Chip temp", "°C"]);
    expect(f.field("efficiency_j_per_th")).toEqual(["Efficiency", "J/TH"]);
    expect(f.field("last_poll_unix_ms")).toEqual(["Last poll", ""]);
    expect(f.field("ip")).toEqual(["IP", ""]);
    expect(f.field("locate_led_on")).toEqual(["Locate LED on", ""]);
  });

  it("formats snapshot values by their field name, leaving free text alone", () => {
    expect(f.value("frequency_mhz", 490)).toBe("490 MHz");
    expect(f.value("voltage_v", 13.52)).toBe("13.52 V");
    expect(f.value("uptime_s", 90061)).toBe("1d 1h");
    expect(f.value("power_source", "firmware_estimated")).toBe("firmware estimated");
    expect(f.value("user", "farm.worker_1")).toBe("farm.worker_1");
    expect(f.value("failed", true)).toBe("yes");
    expect(f.value("power_target_w", null)).toBe("—");
  });
});
