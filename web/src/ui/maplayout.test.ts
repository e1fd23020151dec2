// Unit tests of the site map's layout and colour values (Vitest).

import { describe, expect, it } from "vitest";
import type { MapDevice, SiteMap } from "../types";
import { cellValue, containerBlock, labelRows, layout, rackBlocks, type Block } from "./maplayout";

function dev(shelf: number, slot: number, extra: Partial<MapDevice> = {}): MapDevice {
  return {
    id: `d-${shelf}-${slot}`,
    shelf,
    slot,
    status: "mining",
    chip_temp_max_c: 70,
    hashrate_ths: 100,
    expected_hashrate_ths: 110,
    ...extra,
  };
}

const container: SiteMap["sites"][number]["containers"][number] = {
  container: "C01",
  racks: [
    { rack: "R01", shelves: 2, slots: 3, devices: [dev(1, 1), dev(2, 3)] },
    { rack: "R02", shelves: 3, slots: 2, devices: [dev(3, 2)] },
  ],
};

describe("blocks", () => {
  it("a container puts its racks side by side with a blank column between", () => {
    const b = containerBlock(container);
    expect(b.label).toBe("C01");
    expect(b.key).toBe("C01");
    expect(b.w).toBe(3 + 1 + 2);
    expect(b.h).toBe(3);
    expect(b.cells).toHaveLength(2 * 3 + 3 * 2);
    const placed = b.cells.filter((c) => c.dev);
    expect(placed.map((c) => [c.dx, c.dy, c.dev!.id, c.dev!.rack])).toEqual([
      [0, 0, "d-1-1", "R01"],
      [2, 1, "d-2-3", "R01"],
      [5, 2, "d-3-2", "R02"],
    ]);
  });

  it("a container's racks become one block each", () => {
    const racks = rackBlocks(container);
    expect(racks.map((r) => [r.label, r.w, r.h, r.key])).toEqual([
      ["C01 ▸ R01", 3, 2, null],
      ["C01 ▸ R02", 2, 3, null],
    ]);
  });
});

describe("layout", () => {
  const blocks = (n: number, w = 10, h = 4): Block[] =>
    Array.from({ length: n }, (_, i) => ({ label: `B${i}`, key: null, w, h, cells: [] }));

  it("uses the largest cells that fit every block on one screen", () => {
    const l = layout(blocks(4), 1000, 600, 5, 40);
    expect(l.cell).toBeLessThanOrEqual(40);
    expect(l.W * l.cell).toBeLessThanOrEqual(1000);
    expect(l.H * l.cell).toBeLessThanOrEqual(600);
    expect(l.origin).toHaveLength(4);
  });

  it("never overlaps blocks", () => {
    const l = layout(blocks(7), 500, 400, 5, 14);
    for (let i = 0; i < 7; i++) {
      for (let j = i + 1; j < 7; j++) {
        const a = l.origin[i]!;
        const b = l.origin[j]!;
        const apart = a.x + 10 <= b.x || b.x + 10 <= a.x || a.y + 4 <= b.y || b.y + 4 <= a.y;
        expect(apart, `${i} and ${j}`).toBe(true);
      }
    }
  });

  it("shrinks below the minimum cell rather than overflow a narrow box", () => {
    const l = layout(blocks(2, 116, 5), 326, 500, 5, 14);
    expect(l.W * l.cell).toBeLessThanOrEqual(326);
    expect(l.cell).toBeGreaterThanOrEqual(2);
  });

  it("leaves room above each block for its name", () => {
    const l = layout(blocks(1), 100, 100, 5, 40);
    expect(l.origin[0]!.y).toBe(labelRows(l.cell));
    expect(labelRows(40)).toBe(1);
    expect(labelRows(5)).toBe(3);
  });
});

describe("cellValue", () => {
  it("gives temperature, hashrate against expected, or a status index", () => {
    expect(cellValue(dev(1, 1), "temperature")).toBe(70);
    expect(cellValue(dev(1, 1, { hashrate_ths: 55, expected_hashrate_ths: 110 }), "hashrate")).toBe(50);
    expect(cellValue(dev(1, 1, { status: "offline" }), "status")).toBe(5);
  });
  it("has no reading for a device without one, and 0 % for one that is not hashing", () => {
    expect(cellValue(dev(1, 1, { chip_temp_max_c: null }), "temperature")).toBeNull();
    expect(cellValue(dev(1, 1, { status: "mining", expected_hashrate_ths: null }), "hashrate")).toBeNull();
    expect(cellValue(dev(1, 1, { status: "offline", hashrate_ths: null }), "hashrate")).toBe(0);
  });
});
