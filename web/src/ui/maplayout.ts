// The site map's pure side: what a cell's colour shows, the colour scales, and how blocks
// (containers, or one container's racks) are laid out in a grid for a box of a given size.
// No ECharts here, so the page can draw its legend before the chart code loads, and the
// layout is unit-tested (maplayout.test.ts).

import * as f from "../format";
import { STATUSES, type MapDevice, type SiteMap } from "../types";

/** What the cells' colour shows. */
export type ColorBy = "temperature" | "hashrate" | "status";

/** A placed device with where it is, for the tooltip. */
export interface Cell extends MapDevice {
  container: string;
  rack: string;
}

/** One block of the map: a container (racks side by side) or a single rack. */
export interface Block {
  label: string;
  /** What clicking the label selects (a container name), if anything. */
  key: string | null;
  w: number;
  h: number;
  /** Cells within the block; `dev` absent for an empty slot. */
  cells: { dx: number; dy: number; dev?: Cell }[];
}

/** Status colours, shared with the legend. */
export const STATUS_COLORS: Record<string, string> = {
  mining: "#22c55e",
  degraded: "#f59e0b",
  sleeping: "#3b82f6",
  error: "#ef4444",
  auth_failed: "#a855f7",
  offline: "#6b7280",
  unknown: "#374151",
};

/** Colour scales for the continuous modes, low to high, with their range. */
export const SCALES: Record<Exclude<ColorBy, "status">, { min: number; max: number; colors: string[]; unit: string }> = {
  temperature: { min: 40, max: 95, colors: ["#2563eb", "#22c55e", "#eab308", "#f97316", "#dc2626"], unit: "°C" },
  hashrate: { min: 0, max: 110, colors: ["#dc2626", "#f97316", "#eab308", "#84cc16", "#16a34a"], unit: "% of expected" },
};

/** The value a device shows in a mode, or null when it has no reading for it. */
export function cellValue(d: MapDevice, by: ColorBy): number | null {
  if (by === "status") return STATUSES.indexOf(d.status);
  if (by === "temperature") return f.isNum(d.chip_temp_max_c) ? d.chip_temp_max_c : null;
  if (f.isNum(d.hashrate_ths) && f.isNum(d.expected_hashrate_ths) && d.expected_hashrate_ths > 0) {
    return (100 * d.hashrate_ths) / d.expected_hashrate_ths;
  }
  return d.status === "sleeping" || d.status === "offline" || d.status === "error" ? 0 : null;
}

const GAP_X = 2;
const GAP_Y = 1;
/** Font size of block names for a cell size. */
export const labelPx = (cell: number) => Math.max(10, Math.min(13, cell * 1.4));
/** Rows above each block for its name: as many cells as the text is tall. */
export const labelRows = (cell: number) => Math.ceil((labelPx(cell) + 5) / cell);

/**
 * Where each block goes and how big a cell is, in a box `width` × `height` pixels: the largest
 * cells (up to `maxCell`) with which every block fits on one screen, or, when none does, the
 * most blocks per row with cells still at least `minCell` (smaller still if one block is wider
 * than the box, so the map never needs sideways scrolling).
 */
export function layout(blocks: Block[], width: number, height: number, minCell: number, maxCell: number) {
  const bw = Math.max(1, ...blocks.map((b) => b.w));
  const bh = Math.max(1, ...blocks.map((b) => b.h));
  const n = Math.max(1, blocks.length);
  const rowH = (c: number) => bh + labelRows(c) + GAP_Y;
  const floor = Math.max(2, Math.min(minCell, Math.floor(width / bw)));
  let perRow = 1;
  let cell = Math.max(floor, Math.min(maxCell, Math.floor(width / bw)));
  for (let p = 1; p <= n; p++) {
    const c = Math.min(maxCell, Math.floor(width / (p * (bw + GAP_X) - GAP_X)));
    if (c < floor) break;
    perRow = p;
    cell = c;
    if (Math.ceil(n / p) * rowH(c) * c <= height) break;
  }
  const rows = Math.ceil(n / perRow);
  const W = perRow * (bw + GAP_X) - GAP_X;
  const H = rows * rowH(cell);
  const origin = blocks.map((_, i) => ({
    x: (i % perRow) * (bw + GAP_X),
    y: Math.floor(i / perRow) * rowH(cell) + labelRows(cell),
  }));
  return { cell, W, H, origin };
}


type SiteEntry = SiteMap["sites"][number];
type ContainerEntry = SiteEntry["containers"][number];

/** A container as one block: its racks side by side, a blank column between them. */
export function containerBlock(c: ContainerEntry): Block {
  const cells: Block["cells"] = [];
  let x = 0;
  for (const r of c.racks) {
    const at = new Map(r.devices.map((d) => [`${d.shelf}-${d.slot}`, d]));
    for (let shelf = 1; shelf <= r.shelves; shelf++) {
      for (let slot = 1; slot <= r.slots; slot++) {
        const d = at.get(`${shelf}-${slot}`);
        cells.push({ dx: x + slot - 1, dy: shelf - 1, dev: d ? { ...d, container: c.container, rack: r.rack } : undefined });
      }
    }
    x += r.slots + 1;
  }
  const h = Math.max(1, ...c.racks.map((r) => r.shelves));
  return { label: c.container, key: c.container, w: Math.max(1, x - 1), h, cells };
}

/** A container's racks, each its own block. */
export function rackBlocks(c: ContainerEntry): Block[] {
  return c.racks.map((r) => {
    const at = new Map(r.devices.map((d) => [`${d.shelf}-${d.slot}`, d]));
    const cells: Block["cells"] = [];
    for (let shelf = 1; shelf <= r.shelves; shelf++) {
      for (let slot = 1; slot <= r.slots; slot++) {
        const d = at.get(`${shelf}-${slot}`);
        cells.push({ dx: slot - 1, dy: shelf - 1, dev: d ? { ...d, container: c.container, rack: r.rack } : undefined });
      }
    }
    return { label: `${c.container} ▸ ${r.rack}`, key: null, w: r.slots, h: r.shelves, cells };
  });
}
