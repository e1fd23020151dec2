// The site map drawing: blocks (containers, or the racks of one container) laid out in a grid,
// each a shelf × slot grid of cells coloured by temperature, hashrate against expected, or
// status. Drawn with ECharts' heatmap on canvas (tens of thousands of cells stay smooth); this
// module and ECharts load only when the site map is opened, keeping the first load small.

import { use, init, type ComposeOption, type ECharts } from "echarts/core";
import { CustomChart, HeatmapChart, type CustomSeriesOption, type HeatmapSeriesOption } from "echarts/charts";
import {
  GridComponent,
  TooltipComponent,
  VisualMapContinuousComponent,
  VisualMapPiecewiseComponent,
  type GridComponentOption,
  type TooltipComponentOption,
  type VisualMapComponentOption,
} from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";
import * as f from "../format";
import { cssVar } from "../theme";
import { STATUSES } from "../types";
import {
  SCALES,
  STATUS_COLORS,
  cellValue,
  labelPx,
  layout,
  type Block,
  type Cell,
  type ColorBy,
} from "./maplayout";

export type { Block, Cell, ColorBy } from "./maplayout";
use([HeatmapChart, CustomChart, GridComponent, TooltipComponent, VisualMapContinuousComponent, VisualMapPiecewiseComponent, CanvasRenderer]);

type Option = ComposeOption<
  HeatmapSeriesOption | CustomSeriesOption | GridComponentOption | TooltipComponentOption | VisualMapComponentOption
>;

/** A site map chart in `box`; `open` is called with a device id on a click. */
export class HeatMap {
  private chart: ECharts;
  private cells: Cell[] = [];
  private blocks: Block[] = [];
  private by: ColorBy = "temperature";
  private big = false;

  constructor(
    private readonly box: HTMLElement,
    private readonly open: (id: string) => void,
    private readonly pick: (container: string) => void,
  ) {
    this.chart = init(box, undefined, { renderer: "canvas" });
    this.chart.on("click", (p) => {
      const v = p.value as (number | string)[] | undefined;
      if (p.seriesName === "devices" || p.seriesName === "no reading") {
        const d = this.cells[Number(v?.[3])];
        if (d) this.open(d.id);
      } else if (p.seriesName === "labels") {
        const b = this.blocks[Number(v?.[2])];
        if (b?.key) this.pick(b.key);
      }
    });
  }

  /** Draws `blocks` coloured by `by`; `big` asks for large cells (one container's racks). */
  draw(blocks: Block[], by: ColorBy, big: boolean): void {
    this.blocks = blocks;
    this.by = by;
    this.big = big;
    this.render();
  }

  /** Redraws for a new width or theme. */
  render(): void {
    // The wrapping card has 12 px of padding on each side.
    const width = Math.max(280, (this.box.parentElement?.clientWidth ?? 824) - 24);
    const height = Math.max(240, window.innerHeight - 260);
    const { cell, W, H, origin } = layout(this.blocks, width, height, this.big ? 12 : 5, this.big ? 40 : 14);
    const valued: (number | string)[][] = [];
    const blank: (number | string)[][] = [];
    const empty: number[][] = [];
    this.cells = [];
    let first = null as [number, number] | null;
    for (let bi = 0; bi < this.blocks.length; bi++) {
      const b = this.blocks[bi]!;
      const o = origin[bi]!;
      for (const c of b.cells) {
        const x = o.x + c.dx;
        const y = o.y + c.dy;
        if (!c.dev) {
          empty.push([x, y, 0]);
          continue;
        }
        const v = cellValue(c.dev, this.by);
        const idx = this.cells.push(c.dev) - 1;
        first ??= [x, y];
        if (v === null) blank.push([x, y, 0, idx]);
        else valued.push([x, y, v, idx]);
      }
    }
    this.box.style.width = `${W * cell}px`;
    this.box.style.height = `${H * cell}px`;
    this.box.dataset.cells = String(this.cells.length);
    this.box.dataset.cellPx = String(cell);
    if (first) {
      const [fx, fy] = first;
      this.box.dataset.firstCell = `${Math.round((fx + 0.5) * cell)},${Math.round((fy + 0.5) * cell)}`;
    }
    this.chart.resize({ width: W * cell, height: H * cell });

    const fg = cssVar("--fg") || "#111";
    const bg = cssVar("--bg-card") || "#fff";
    const border = cell >= 8 ? 1 : 0;
    const scale = this.by === "status" ? null : SCALES[this.by];
    const visualMap: VisualMapComponentOption = scale
      ? { type: "continuous", show: false, seriesIndex: 0, dimension: 2, min: scale.min, max: scale.max, inRange: { color: scale.colors } }
      : {
          type: "piecewise",
          show: false,
          seriesIndex: 0,
          dimension: 2,
          pieces: STATUSES.map((s, i) => ({ value: i, color: STATUS_COLORS[s] ?? "#888" })),
        };
    const labelSize = labelPx(cell);
    const option: Option = {
      animation: false,
      grid: { left: 0, right: 0, top: 0, bottom: 0 },
      xAxis: { type: "category", data: Array.from({ length: W }, (_, i) => i), show: false },
      yAxis: { type: "category", data: Array.from({ length: H }, (_, i) => i), show: false, inverse: true },
      visualMap,
      tooltip: {
        trigger: "item",
        confine: true,
        formatter: (p) => {
          const one = Array.isArray(p) ? p[0] : p;
          if (!one || (one.seriesName !== "devices" && one.seriesName !== "no reading")) return "";
          const d = this.cells[Number((one.value as number[])[3])];
          if (!d) return "";
          const pct = f.pct(d.hashrate_ths, d.expected_hashrate_ths);
          return [
            `<b>${escapeHtml(d.ip ?? d.id)}</b>${d.model ? ` · ${escapeHtml(d.model)}` : ""}`,
            `${escapeHtml(d.container)} ▸ ${escapeHtml(d.rack)} · shelf ${d.shelf}, slot ${d.slot}`,
            `Status: ${escapeHtml(d.status)}`,
            `Chip: ${f.temp(d.chip_temp_max_c)}`,
            `Hashrate: ${f.hashrate(d.hashrate_ths)} (${pct})`,
          ].join("<br>");
        },
      },
      series: [
        {
          name: "devices",
          type: "heatmap",
          data: valued,
          itemStyle: { borderColor: bg, borderWidth: border },
          emphasis: { itemStyle: { borderColor: fg, borderWidth: 2 } },
          progressive: 20000,
        },
        {
          name: "no reading",
          type: "heatmap",
          data: blank,
          itemStyle: { color: cssVar("--map-nodata") || "#9ca3af", borderColor: bg, borderWidth: border },
          emphasis: { itemStyle: { borderColor: fg, borderWidth: 2 } },
        },
        {
          name: "empty",
          type: "heatmap",
          data: empty,
          silent: true,
          itemStyle: { color: cssVar("--map-empty") || "#e5e7eb", borderColor: bg, borderWidth: border },
        },
        {
          name: "labels",
          type: "custom",
          // Each name sits just above its block's first row, left-aligned with it.
          data: this.blocks.map((b, i) => [origin[i]!.x, origin[i]!.y, i, b.label]),
          renderItem: (_params, api) => {
            const pt = api.coord([api.value(0), api.value(1)]);
            const text = String(api.value(3));
            return {
              type: "text",
              x: (pt[0] ?? 0) - cell / 2,
              y: (pt[1] ?? 0) - cell / 2 - 3,
              style: { text, fill: fg, font: `600 ${labelSize}px system-ui, sans-serif`, verticalAlign: "bottom" },
              cursor: "pointer",
            };
          },
          silent: false,
          tooltip: { show: false },
        },
      ],
    };
    this.chart.setOption(option, true);
  }

  /** Frees the canvas. */
  destroy(): void {
    this.chart.dispose();
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
