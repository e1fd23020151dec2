// The pure side of the charts: putting series on one time axis with gaps for missing
// buckets, dropping a rollup's still-open bucket, time windows, and axis labels in the right
// unit. No DOM here, so it is unit-tested (series.test.ts).

import type uPlot from "uplot";

/** A unit of an axis: values are divided by the first number and labelled with the name. */
export type Unit = [number, string];

/** Tick steps for counts: 1, 2, 5, 10, 20, 50, … */
export const INTEGER_INCRS = Array.from({ length: 8 }, (_, e) => [1, 2, 5].map((m) => m * 10 ** e)).flat();

/** Hashrate in TH/s. */
export const HASH_UNITS: Unit[] = [
  [1e6, "EH/s"],
  [1e3, "PH/s"],
  [1, "TH/s"],
];
/** Power in W. */
export const POWER_UNITS: Unit[] = [
  [1e6, "MW"],
  [1e3, "kW"],
  [1, "W"],
];

/**
 * Axis labels in one unit chosen by the largest tick, with just enough decimals to tell
 * neighbouring ticks apart (25.16 / 25.18 J/TH rather than 25.2 / 25.2).
 */
export function axisLabels(splits: number[], incr: number, units: Unit[]): string[] {
  const top = Math.max(...splits.map((v) => Math.abs(v)));
  const [div, name] = units.find(([d]) => top >= d) ?? units[units.length - 1] ?? [1, ""];
  const step = Math.abs(incr) / div;
  const digits = step > 0 && Number.isFinite(step) ? Math.min(4, Math.max(0, Math.ceil(-Math.log10(step) - 1e-9))) : 0;
  return splits.map((v) =>
    v == null
      ? ""
      : `${(v / div).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })}${name ? ` ${name}` : ""}`,
  );
}

/** `[unix ms, value]` pairs as the API returns them. */
export type Points = [number, number | null][];

/**
 * The points of closed buckets only. A fleet rollup's current bucket holds only the devices
 * polled so far in it, so its sum reads low (a cliff at the right edge of every chart) until
 * the bucket closes; `resolution` is the API's (`1m`, `5m`, `1h`; `raw` keeps everything).
 */
export function closedBuckets(points: Points, resolution: string | undefined, nowMs = Date.now()): Points {
  const m = /^(\d+)([mh])$/.exec(resolution ?? "");
  if (!m) return points;
  const width = Number(m[1]) * (m[2] === "h" ? 3_600_000 : 60_000);
  return points.filter(([t]) => t + width <= nowMs);
}

/** A range name (`1h`, `24h`, `7d`) in milliseconds. */
export function rangeMs(range: string): number {
  const m = /^(\d+)([mhd])$/.exec(range);
  if (!m) return 3_600_000;
  return Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "m" | "h" | "d"];
}

/**
 * Puts several series on one time axis. Within a series a step more than 2.5× its usual step is
 * a missing bucket and becomes `null` (a gap); where a series merely lacks a timestamp another
 * series has, the value is `undefined`, which uPlot draws across.
 */
export function align(series: Points[]): uPlot.AlignedData {
  const withGaps = series.map((pts) => {
    const sorted = pts.filter((p) => Number.isFinite(p[0])).sort((a, b) => a[0] - b[0]);
    const steps: number[] = [];
    for (let i = 1; i < sorted.length; i++) steps.push(sorted[i]![0] - sorted[i - 1]![0]);
    steps.sort((a, b) => a - b);
    const step = steps.length ? steps[Math.floor(steps.length / 2)]! : 0;
    const out: Points = [];
    for (let i = 0; i < sorted.length; i++) {
      const p = sorted[i]!;
      const prev = sorted[i - 1];
      if (prev && step > 0 && p[0] - prev[0] > 2.5 * step) out.push([prev[0] + step, null]);
      out.push([p[0], Number.isFinite(p[1]) ? p[1] : null]);
    }
    return out;
  });
  const xs = [...new Set(withGaps.flatMap((s) => s.map((p) => p[0])))].sort((a, b) => a - b);
  const ys = withGaps.map((s) => {
    const m = new Map(s.map((p) => [p[0], p[1]]));
    return xs.map((x) => (m.has(x) ? m.get(x)! : undefined));
  });
  return [xs.map((x) => x / 1000), ...ys] as uPlot.AlignedData;
}

