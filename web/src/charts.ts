// Time-series charts on uPlot: one wrapper that sizes itself to its box, redraws in the new
// colours when the theme changes, and shows missing buckets as gaps rather than joining across.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h } from "./dom";
import * as f from "./format";
import {
  HASH_UNITS,
  INTEGER_INCRS,
  POWER_UNITS,
  align,
  axisLabels,
  rangeMs,
  type Points,
  type Unit,
} from "./series";
import { cssVar, onTheme } from "./theme";

export { HASH_UNITS, POWER_UNITS, closedBuckets, type Points } from "./series";

/** One line on a chart. */
export interface SeriesSpec {
  label: string;
  /** CSS custom property holding the line colour, e.g. `--c-hash`. */
  colorVar: string;
  dashed?: boolean;
  fill?: boolean;
}

/** A chart's options. */
export interface ChartSpec {
  title: string;
  series: SeriesSpec[];
  /** Formats a y value for the legend. */
  fmt: (v: number) => string;
  /** Units of the y axis, largest first, as `[divisor, name]`: `[[1e3, "PH/s"], [1, "TH/s"]]`. */
  units: Unit[];
  /** Whole numbers only on the axis (device counts). */
  integer?: boolean;
  height?: number;
}


/** A live chart in a card; call `set` with one point list per series. */
export class TimeChart {
  readonly el: HTMLElement;
  private plot: uPlot | null = null;
  private data: uPlot.AlignedData = [[]];
  /** The time window shown, unix seconds; the whole asked-for range even where data is missing. */
  private window: [number, number] | null = null;
  private readonly box: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly resize: ResizeObserver;
  private readonly unTheme: () => void;

  constructor(private readonly spec: ChartSpec) {
    this.box = h("div", { class: "chart-box" });
    this.empty = h("div", { class: "chart-empty", hidden: true }, "No data in this range yet");
    this.el = h(
      "section",
      { class: "chart card", "data-chart": spec.title, "data-points": "0" },
      h("h3", null, spec.title),
      this.box,
      this.empty,
    );
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(this.box);
    this.unTheme = onTheme(() => this.rebuild());
  }

  /** Replaces the data, one point list per series in the spec's order, over `rangeName`
   *  back from now (so a young node's few points sit at the right end, not fill the chart). */
  set(series: Points[], rangeName?: string): void {
    const now = Date.now() / 1000;
    this.window = rangeName ? [now - rangeMs(rangeName) / 1000, now] : null;
    this.data = align(series);
    const n = this.data[0].length;
    this.el.dataset.points = String(n);
    this.empty.hidden = n > 0;
    if (this.plot) this.plot.setData(this.data);
    else this.rebuild();
  }

  private width(): number {
    return Math.max(200, Math.floor(this.box.clientWidth || this.el.clientWidth || 600));
  }

  private fit(): void {
    if (this.plot && this.box.clientWidth > 0) {
      this.plot.setSize({ width: this.width(), height: this.spec.height ?? 220 });
    }
  }

  private rebuild(): void {
    this.plot?.destroy();
    const fg = cssVar("--fg-muted") || "#888";
    const grid = cssVar("--grid") || "rgba(128,128,128,.15)";
    const axis = (): uPlot.Axis => ({
      stroke: fg,
      grid: { stroke: grid, width: 1 },
      ticks: { stroke: grid, width: 1 },
    });
    const fmt = this.spec.fmt;
    const opts: uPlot.Options = {
      width: this.width(),
      height: this.spec.height ?? 220,
      legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false } },
      scales: {
        x: {
          time: true,
          range: (_u, min, max) => this.window ?? [min, max],
        },
        // A flat line (296 devices mining all hour) sits mid-chart with a small margin,
        // instead of uPlot's default of a range from zero to double the value.
        y: {
          range: (_u, min, max) => {
            if (min == null || max == null) return [0, 1];
            if (min === max) {
              const pad = Math.max(this.spec.integer ? 1 : 0, Math.abs(min) * 0.02) || 1;
              return [min - pad, max + pad];
            }
            return uPlot.rangeNum(min, max, 0.1, true);
          },
        },
      },
      axes: [
        { ...axis(), space: 70 },
        {
          ...axis(),
          values: (_u, splits, _axis, _space, incr) => axisLabels(splits, incr, this.spec.units),
          incrs: this.spec.integer ? INTEGER_INCRS : undefined,
          // Wide enough for the longest label at this scale ("102.50 PH/s"), never clipped.
          size: (_u, values) => {
            if (!values?.length) return 50;
            const longest = Math.max(...values.map((v) => String(v ?? "").length));
            return Math.ceil(longest * 7.2) + 18;
          },
        },
      ],
      series: [
        {},
        ...this.spec.series.map((s): uPlot.Series => {
          const color = cssVar(s.colorVar) || "#3b82f6";
          return {
            label: s.label,
            stroke: color,
            width: 2,
            dash: s.dashed ? [6, 4] : undefined,
            fill: s.fill ? `${color}22` : undefined,
            spanGaps: false,
            value: (_u, v) => (v == null ? "—" : fmt(v)),
          };
        }),
      ],
    };
    this.plot = new uPlot(opts, this.data, this.box);
  }

  /** Stops observing size and theme and frees the canvas. */
  destroy(): void {
    this.resize.disconnect();
    this.unTheme();
    this.plot?.destroy();
    this.plot = null;
  }
}

/** The hashrate chart with its expected (nominal) line, as the overview and device pages show it. */
export function hashrateChart(): TimeChart {
  return new TimeChart({
    title: "Hashrate",
    series: [
      { label: "Hashrate", colorVar: "--c-hash", fill: true },
      { label: "Expected", colorVar: "--c-expected", dashed: true },
    ],
    fmt: f.hashrate,
    units: HASH_UNITS,
  });
}

/** The power chart, as the overview and device pages show it. */
export function powerChart(): TimeChart {
  return new TimeChart({
    title: "Power",
    series: [{ label: "Power", colorVar: "--c-power", fill: true }],
    fmt: f.power,
    units: POWER_UNITS,
  });
}
