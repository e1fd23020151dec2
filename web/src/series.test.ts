// Unit tests of the chart data helpers (Vitest): gaps, alignment of series, open buckets, axis
// labels.

import { describe, expect, it } from "vitest";
import { HASH_UNITS, POWER_UNITS, align, axisLabels, closedBuckets, rangeMs, type Points } from "./series";

const MIN = 60_000;

describe("align", () => {
  it("puts series on one axis in seconds, undefined where a series lacks a time", () => {
    const a: Points = [
      [0, 1],
      [MIN, 2],
      [2 * MIN, 3],
    ];
    const b: Points = [
      [MIN, 20],
      [2 * MIN, 30],
    ];
    const [xs, ya, yb] = align([a, b]);
    expect(xs).toEqual([0, 60, 120]);
    expect(ya).toEqual([1, 2, 3]);
    expect(yb).toEqual([undefined, 20, 30]);
  });

  it("turns a missing bucket into a null so the line breaks there", () => {
    const pts: Points = [
      [0, 1],
      [MIN, 1],
      [2 * MIN, 1],
      [10 * MIN, 1],
      [11 * MIN, 1],
    ];
    const [xs, ys] = align([pts]);
    expect(xs).toEqual([0, 60, 120, 180, 600, 660]);
    expect(ys).toEqual([1, 1, 1, null, 1, 1]);
  });

  it("sorts unordered points and keeps NaN as a gap", () => {
    const [xs, ys] = align([
      [
        [2 * MIN, 3],
        [0, 1],
        [MIN, Number.NaN],
      ],
    ]);
    expect(xs).toEqual([0, 60, 120]);
    expect(ys).toEqual([1, null, 3]);
  });

  it("handles no data", () => {
    expect(align([[]])).toEqual([[], []]);
  });
});

describe("closedBuckets", () => {
  const now = 10 * MIN + 30_000;
  const pts: Points = [
    [8 * MIN, 5],
    [9 * MIN, 5],
    [10 * MIN, 1], // the minute still being filled
  ];
  it("drops the bucket that has not closed yet", () => {
    expect(closedBuckets(pts, "1m", now)).toEqual(pts.slice(0, 2));
    // 5-minute buckets at 0 and 5 min are closed at 10.5 min; the one at 10 min is not.
    expect(
      closedBuckets(
        [
          [0, 1],
          [5 * MIN, 2],
          [10 * MIN, 3],
        ],
        "5m",
        now,
      ),
    ).toEqual([
      [0, 1],
      [5 * MIN, 2],
    ]);
    expect(closedBuckets([[3_600_000, 1]], "1h", 2 * 3_600_000)).toEqual([[3_600_000, 1]]);
  });
  it("keeps raw points", () => {
    expect(closedBuckets(pts, "raw", now)).toEqual(pts);
    expect(closedBuckets(pts, undefined, now)).toEqual(pts);
  });
});

describe("rangeMs", () => {
  it("reads the dashboard's ranges", () => {
    expect(rangeMs("1h")).toBe(3_600_000);
    expect(rangeMs("24h")).toBe(86_400_000);
    expect(rangeMs("7d")).toBe(604_800_000);
    expect(rangeMs("90m")).toBe(5_400_000);
    expect(rangeMs("bogus")).toBe(3_600_000);
  });
});

describe("axisLabels", () => {
  it("picks the unit of the largest tick and enough decimals to tell ticks apart", () => {
    expect(axisLabels([32_200, 32_250, 32_300], 50, HASH_UNITS)).toEqual(["32.20 PH/s", "32.25 PH/s", "32.30 PH/s"]);
    expect(axisLabels([0, 500, 1000], 500, POWER_UNITS)).toEqual(["0.0 kW", "0.5 kW", "1.0 kW"]);
    expect(axisLabels([25.14, 25.16, 25.18], 0.02, [[1, "J/TH"]])).toEqual(["25.14 J/TH", "25.16 J/TH", "25.18 J/TH"]);
    expect(axisLabels([0, 200, 400], 200, [[1, ""]])).toEqual(["0", "200", "400"]);
    expect(axisLabels([1_000_000, 2_000_000], 1_000_000, POWER_UNITS)).toEqual(["1 MW", "2 MW"]);
  });
});
