// The site map: pick a site, see every container as a block of racks (shelf × slot cells), or
// one container's racks large; colour by temperature, hashrate against expected, or status;
// click a cell to open the device. The drawing code (and ECharts) loads on first visit only.

import * as api from "../api";
import { debounce, h, replace } from "../dom";
import * as f from "../format";
import { deviceHref, replaceQuery, type Page } from "../router";
import { onTheme } from "../theme";
import { STATUSES, type SiteMap } from "../types";
import type { HeatMap } from "../ui/heatmap";
import { SCALES, STATUS_COLORS, cellValue, containerBlock, rackBlocks, type Cell, type ColorBy } from "../ui/maplayout";

const MODES: [ColorBy, string][] = [
  ["temperature", "Temperature"],
  ["hashrate", "Hashrate % of expected"],
  ["status", "Status"],
];
/** How many of the worst devices are listed under the map. */
const WORST = 10;

/** The site map page. */
export function sitemapPage(query: URLSearchParams): Page {
  const abort = new AbortController();
  let data: SiteMap | null = null;
  let site = query.get("site") ?? "";
  let container = query.get("container") ?? "";
  let by: ColorBy = (MODES.map((m) => m[0]) as string[]).includes(query.get("by") ?? "")
    ? (query.get("by") as ColorBy)
    : "temperature";
  let map: HeatMap | null = null;

  const siteSel = h("select", { "aria-label": "Site", "data-testid": "map-site", onchange: () => pickSite(siteSel.value) });
  const contSel = h("select", {
    "aria-label": "Container",
    "data-testid": "map-container",
    onchange: () => pickContainer(contSel.value),
  });
  const modeButtons = MODES.map(([m, text]) =>
    h(
      "button",
      {
        type: "button",
        class: "seg",
        "data-by": m,
        "aria-pressed": String(m === by),
        onclick: () => {
          by = m;
          modeButtons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.by === m)));
          draw();
        },
      },
      text,
    ),
  );
  const legend = h("div", { class: "legend", "data-testid": "map-legend" });
  const status = h("p", { class: "muted" }, "Loading the site map…");
  const error = h("p", { class: "banner error", hidden: true, role: "alert" });
  const chartBox = h("div", { class: "map-canvas", "data-testid": "map" });
  const worst = h("div", { class: "worst" });

  function sync(): void {
    const q = new URLSearchParams();
    if (site) q.set("site", site);
    if (container) q.set("container", container);
    if (by !== "temperature") q.set("by", by);
    replaceQuery(q);
  }

  function pickSite(s: string): void {
    site = s;
    container = "";
    draw();
  }

  function pickContainer(c: string): void {
    container = c;
    draw();
  }

  function showLegend(): void {
    if (by === "status") {
      replace(
        legend,
        STATUSES.map((s) => h("span", { class: "legend-item" }, h("i", { style: `background:${STATUS_COLORS[s]}` }), s.replace("_", " "))),
      );
    } else {
      const sc = SCALES[by];
      replace(
        legend,
        h("span", null, `${sc.min}`),
        h("i", { class: "gradient", style: `background:linear-gradient(90deg,${sc.colors.join(",")})` }),
        h("span", null, `${sc.max} ${sc.unit}`),
        h("span", { class: "legend-item" }, h("i", { class: "nodata" }), "no reading"),
      );
    }
  }

  function showWorst(cells: Cell[]): void {
    let list: Cell[];
    let what: string;
    if (by === "temperature") {
      list = cells.filter((d) => f.isNum(d.chip_temp_max_c)).sort((a, b) => b.chip_temp_max_c! - a.chip_temp_max_c!);
      what = "Hottest devices";
    } else if (by === "hashrate") {
      list = cells
        .filter((d) => cellValue(d, "hashrate") !== null && d.status !== "sleeping")
        .sort((a, b) => cellValue(a, "hashrate")! - cellValue(b, "hashrate")!);
      what = "Furthest below expected hashrate";
    } else {
      list = cells.filter((d) => d.status !== "mining" && d.status !== "sleeping");
      what = "Devices needing attention";
    }
    replace(
      worst,
      h("h2", null, what),
      list.length
        ? h(
            "ol",
            { "data-testid": "map-worst" },
            list.slice(0, WORST).map((d) =>
              h(
                "li",
                null,
                h("a", { href: deviceHref(d.id), title: d.id }, d.ip ?? d.id),
                d.model ? ` ${d.model}` : "",
                h(
                  "span",
                  { class: "muted" },
                  ` ${d.container} ▸ ${d.rack} · ${d.shelf}-${d.slot} · ${d.status.replace("_", " ")} · ${f.temp(d.chip_temp_max_c)} · ${f.pct(d.hashrate_ths, d.expected_hashrate_ths)}`,
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, "Nothing to show."),
    );
  }

  async function draw(): Promise<void> {
    if (!data) return;
    const s = data.sites.find((x) => x.site === site) ?? data.sites[0];
    if (!s) {
      status.textContent = "No device has a place on the site map yet. Give devices a site, container, rack, shelf and slot in the inventory.";
      return;
    }
    site = s.site;
    const c = s.containers.find((x) => x.container === container);
    container = c ? c.container : "";
    replace(siteSel, data.sites.map((x) => h("option", { value: x.site, selected: x.site === site }, `Site ${x.site}`)));
    replace(
      contSel,
      h("option", { value: "" }, `All ${s.containers.length} containers`),
      s.containers.map((x) => h("option", { value: x.container, selected: x.container === container }, x.container)),
    );
    sync();
    showLegend();
    const blocks = c ? rackBlocks(c) : s.containers.map(containerBlock);
    const placed = blocks.reduce((n, b) => n + b.cells.filter((x) => x.dev).length, 0);
    status.textContent =
      `${f.count(placed)} devices placed` +
      (data.unplaced ? ` · ${f.count(data.unplaced)} without a place` : "") +
      (c ? "" : " · click a container's name to see its racks");
    const mod = await import("../ui/heatmap");
    if (abort.signal.aborted) return;
    map ??= new mod.HeatMap(
      chartBox,
      (id) => (window.location.hash = deviceHref(id)),
      (name) => pickContainer(name),
    );
    map.draw(blocks, by, Boolean(c));
    showWorst(blocks.flatMap((b) => b.cells.flatMap((x) => (x.dev ? [x.dev] : []))));
  }

  async function load(): Promise<void> {
    try {
      data = await api.siteMap(abort.signal);
      error.hidden = true;
      await draw();
    } catch (e) {
      if (abort.signal.aborted) return;
      error.hidden = false;
      error.textContent = `Could not load the site map: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  const redraw = debounce(() => map?.render(), 100);
  const resize = new ResizeObserver(redraw);
  const unTheme = onTheme(() => map?.render());
  const wrap = h("div", { class: "map-wrap card" }, chartBox);
  resize.observe(wrap);
  const el = h(
    "div",
    { class: "page sitemap" },
    h("div", { class: "page-head" }, h("h1", null, "Site map"), status),
    error,
    h(
      "div",
      { class: "map-controls" },
      siteSel,
      contSel,
      h("div", { class: "segmented", role: "group", "aria-label": "Colour by" }, modeButtons),
    ),
    legend,
    wrap,
    worst,
  );
  void load();
  const timer = setInterval(() => void load(), 30_000);
  return {
    el,
    destroy() {
      abort.abort();
      clearInterval(timer);
      resize.disconnect();
      unTheme();
      map?.destroy();
    },
  };
}
