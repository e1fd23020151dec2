// The fleet overview: KPI tiles (hashrate against expected, power, J/TH, hottest chip, counts by
// status), fleet charts over 1 h / 24 h / 7 d, and a per-site and per-container breakdown.
// Tiles follow the live summary frames; charts and the breakdown refresh every minute.

import * as api from "../api";
import { TimeChart, closedBuckets, hashrateChart, powerChart, type Points } from "../charts";
import { h, replace, setText } from "../dom";
import * as f from "../format";
import * as live from "../live";
import { devicesHref, location, replaceQuery, type Page } from "../router";
import { STATUSES, type FleetGroup, type FleetSummary, type StatusCounts } from "../types";

const RANGES = ["1h", "24h", "7d"] as const;
const PROBLEMS = ["degraded", "error", "auth_failed", "offline"] as const;

/** The first chart's data, asked for while the session is being checked (see `prefetch`). */
let early: { range: string; at: number; data: Promise<Points[]> } | null = null;

function firstChartData(range: string, signal?: AbortSignal): Promise<Points[]> {
  const one = async (metric: string) => {
    const r = await api.fleetHistory({ metric, agg: "sum", group: "all", range }, signal);
    return closedBuckets(r.points, r.resolution);
  };
  return Promise.all([one("hashrate_ths"), one("expected_hashrate_ths")]);
}

/**
 * Starts loading the overview's first chart before the session check answers, saving a round
 * trip on the page operators open most. Used only if the overview mounts within a few seconds.
 */
export function prefetch(range: string): void {
  const data = firstChartData(range);
  data.catch(() => undefined); // not signed in: the overview will not mount, nothing to report
  early = { range, at: Date.now(), data };
}

function problems(by: StatusCounts): number {
  return PROBLEMS.reduce((n, s) => n + (by[s] ?? 0), 0);
}

interface Tile {
  el: HTMLElement;
  set(value: number | null | undefined, text: string, sub: string): void;
}

function tile(id: string, label: string): Tile {
  const value = h("div", { class: "tile-value" }, "—");
  const sub = h("div", { class: "tile-sub" });
  const el = h("div", { class: "tile card", "data-testid": `tile-${id}` }, h("div", { class: "tile-label" }, label), value, sub);
  return {
    el,
    set(v, text, s) {
      el.dataset.value = f.isNum(v) ? String(v) : "";
      setText(value, text);
      setText(sub, s);
    },
  };
}

/** The overview page. */
export function overviewPage(): Page {
  const abort = new AbortController();
  let range = location().query.get("range") ?? "1h";
  if (!(RANGES as readonly string[]).includes(range)) range = "1h";

  const tiles = {
    hashrate: tile("hashrate", "Hashrate"),
    power: tile("power", "Power"),
    efficiency: tile("efficiency", "Efficiency"),
    temp: tile("temp", "Hottest chip"),
    devices: tile("devices", "Devices"),
  };
  const statusRow = h("div", { class: "status-row", "data-testid": "status-counts" });
  const poller = h("p", { class: "muted small", "data-testid": "poller" });
  const error = h("p", { class: "banner error", hidden: true, role: "alert" });

  const charts = {
    hashrate: hashrateChart(),
    power: powerChart(),
    efficiency: new TimeChart({
      title: "Efficiency",
      series: [{ label: "J/TH", colorVar: "--c-eff" }],
      fmt: (v) => `${f.num(v, 1)} J/TH`,
      units: [[1, "J/TH"]],
    }),
    mining: new TimeChart({
      title: "Devices mining",
      series: [
        { label: "Mining", colorVar: "--c-ok", fill: true },
        { label: "Online", colorVar: "--c-expected", dashed: true },
      ],
      fmt: (v) => f.count(v),
      units: [[1, ""]],
      integer: true,
    }),
  };

  const rangeButtons = RANGES.map((r) =>
    h(
      "button",
      {
        type: "button",
        class: "seg",
        "data-range": r,
        "aria-pressed": String(r === range),
        onclick: () => {
          range = r;
          rangeButtons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range === r)));
          const q = location().query;
          q.set("range", r);
          replaceQuery(q);
          void loadCharts();
        },
      },
      r,
    ),
  );

  const groupsBody = h("tbody");
  const modelsBody = h("tbody");
  const groupHead = (first: string) =>
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        h("th", null, first),
        h("th", { class: "num" }, "Devices"),
        h("th", { class: "num" }, "Mining"),
        h("th", { class: "num" }, "Problems"),
        h("th", { class: "num" }, "Hashrate"),
        h("th", { class: "num hide-sm" }, "Power"),
        h("th", { class: "num hide-sm" }, "J/TH"),
        h("th", { class: "num hide-sm" }, "Hottest chip"),
      ),
    );
  const groupsTable = h("table", { class: "data groups", "data-testid": "groups" }, groupHead("Site / container"), groupsBody);
  const modelsTable = h("table", { class: "data groups", "data-testid": "models" }, groupHead("Model"), modelsBody);

  function showSummary(s: FleetSummary): void {
    tiles.hashrate.set(
      s.hashrate_ths,
      f.hashrate(s.hashrate_ths),
      `${f.pct(s.hashrate_ths, s.expected_hashrate_ths)} of ${f.hashrate(s.expected_hashrate_ths)} expected`,
    );
    const meters = s.meters && s.meters.devices > 0 ? s.meters : null;
    tiles.power.set(
      s.power_w,
      f.power(s.power_w),
      meters
        ? `${f.power(meters.power_w)} at ${f.count(meters.devices)} meter${meters.devices === 1 ? "" : "s"}`
        : "reported by the miners",
    );
    tiles.efficiency.set(s.efficiency_j_per_th, f.jth(s.efficiency_j_per_th), "fleet power ÷ hashrate");
    tiles.temp.set(s.chip_temp_max_c, f.temp(s.chip_temp_max_c), "over every board");
    const online = s.devices - (s.by_status.offline ?? 0) - (s.by_status.unknown ?? 0);
    tiles.devices.set(s.devices, f.count(s.devices), `${f.count(online)} answering`);
    replace(
      statusRow,
      STATUSES.filter((st) => (s.by_status[st] ?? 0) > 0 || st === "mining" || st === "offline").map((st) =>
        h(
          "a",
          { class: `status-chip st-${st}`, href: devicesHref({ status: st }), "data-status": st },
          h("span", { class: "dot" }),
          h("span", { class: "status-name" }, st.replace("_", " ")),
          h("b", { "data-testid": `count-${st}` }, f.count(s.by_status[st] ?? 0)),
        ),
      ),
    );
    const c = s.poller?.last_cycle;
    poller.textContent = s.poller
      ? `Polling every ${s.poller.interval_s} s` +
        (c
          ? ` · last cycle ${f.count(c.polls)} polls, ${f.count(c.errors)} errors, ${f.count(c.late)} late, mean ${f.num(c.mean_poll_ms, 1)} ms`
          : "") +
        ` · updated ${new Date(s.time_unix_ms).toLocaleTimeString()}`
      : `Updated ${new Date(s.time_unix_ms).toLocaleTimeString()}`;
  }

  function groupRow(g: FleetGroup, name: string, cls: string, filters: Record<string, string>): HTMLElement {
    const bad = problems(g.by_status);
    return h(
      "tr",
      { class: cls, "data-group": g.group ?? name },
      h("td", null, h("a", { href: devicesHref(filters) }, name)),
      h("td", { class: "num" }, f.count(g.devices)),
      h("td", { class: "num" }, f.count(g.by_status.mining ?? 0)),
      h("td", { class: `num ${bad > 0 ? "warn-text" : ""}` }, f.count(bad)),
      h("td", { class: "num" }, f.hashrate(g.hashrate_ths)),
      h("td", { class: "num hide-sm" }, f.power(g.power_w)),
      h("td", { class: "num hide-sm" }, f.num(g.efficiency_j_per_th, 1)),
      h("td", { class: "num hide-sm" }, f.temp(g.chip_temp_max_c)),
    );
  }

  function showGroups(groups: FleetGroup[]): void {
    const byName = (a: string | undefined, b: string | undefined) =>
      (a ?? "").localeCompare(b ?? "", undefined, { numeric: true });
    const sites = groups.filter((g) => g.level === "site").sort((a, b) => byName(a.site, b.site));
    const containers = groups.filter((g) => g.level === "container");
    replace(
      groupsBody,
      sites.map((site) => [
        groupRow(site, `Site ${site.site ?? "?"}`, "site-row", { site: site.site ?? "" }),
        containers
          .filter((c) => c.site === site.site)
          .sort((a, b) => byName(a.container, b.container))
          .map((c) =>
            groupRow(c, `${c.container ?? "?"}`, "container-row", {
              site: c.site ?? "",
              container: c.container ?? "",
            }),
          ),
      ]),
    );
    const models = groups
      .filter((g) => g.level === "model")
      .sort((a, b) => (b.hashrate_ths ?? 0) - (a.hashrate_ths ?? 0));
    replace(
      modelsBody,
      models.map((m) => groupRow(m, m.model ?? "?", "", { model: m.model ?? "" })),
    );
  }

  async function loadSummary(): Promise<void> {
    try {
      const s = await api.fleetSummary(abort.signal);
      error.hidden = true;
      showSummary(s);
      if (s.groups) showGroups(s.groups);
    } catch (e) {
      if (abort.signal.aborted) return;
      error.hidden = false;
      error.textContent = `Could not read the fleet summary: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  async function history(metric: string, agg = "sum"): Promise<Points> {
    const r = await api.fleetHistory({ metric, agg, group: "all", range }, abort.signal);
    return closedBuckets(r.points, r.resolution);
  }

  let chartGen = 0;
  async function loadCharts(onFirst?: () => void): Promise<void> {
    const gen = ++chartGen;
    const want = range;
    const pre = early && early.range === want && Date.now() - early.at < 5_000 ? early.data : null;
    early = null;
    const jobs: [TimeChart, () => Promise<Points[]>][] = [
      [charts.hashrate, () => pre ?? firstChartData(want, abort.signal)],
      [charts.power, () => Promise.all([history("power_w")])],
      [charts.efficiency, () => Promise.all([history("efficiency_j_per_th")])],
      [charts.mining, () => Promise.all([history("mining"), history("online")])],
    ];
    const draw = async ([chart, load]: [TimeChart, () => Promise<Points[]>]) => {
      try {
        const series = await load();
        if (gen === chartGen && want === range) chart.set(series, want);
      } catch (e) {
        if (abort.signal.aborted) return;
        chart.el.dataset.error = e instanceof Error ? e.message : String(e);
      }
    };
    // The hashrate chart alone first: on a busy node the other requests would compete with it.
    await draw(jobs[0]!);
    onFirst?.();
    await Promise.all(jobs.slice(1).map(draw));
  }

  const el = h(
    "div",
    { class: "page overview" },
    h("div", { class: "page-head" }, h("h1", null, "Fleet overview"), poller),
    error,
    h("div", { class: "tiles" }, Object.values(tiles).map((t) => t.el)),
    statusRow,
    h(
      "div",
      { class: "section-head" },
      h("h2", null, "History"),
      h("div", { class: "segmented", role: "group", "aria-label": "Time range" }, rangeButtons),
    ),
    h("div", { class: "charts" }, Object.values(charts).map((c) => c.el)),
    h("h2", null, "Sites and containers"),
    h("div", { class: "table-scroll card" }, groupsTable),
    h("h2", null, "Models"),
    h("div", { class: "table-scroll card" }, modelsTable),
  );

  // The first chart is what an operator waits for; the summary walks every device on the node
  // (~150 ms at 30,000 devices), so it is asked for once the hashrate history is in.
  void loadCharts(() => void loadSummary());
  const unLive = live.onSummary(showSummary);
  // Every minute (a new bucket); every 10 s while a young node has no closed bucket yet.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const refresh = () => {
    const empty = Object.values(charts).some((c) => c.el.dataset.points === "0");
    timer = setTimeout(
      async () => {
        await Promise.all([loadCharts(), loadSummary()]);
        if (!abort.signal.aborted) refresh();
      },
      empty ? 10_000 : 60_000,
    );
  };
  refresh();

  return {
    el,
    destroy() {
      abort.abort();
      unLive();
      clearTimeout(timer);
      Object.values(charts).forEach((c) => c.destroy());
    },
  };
}
