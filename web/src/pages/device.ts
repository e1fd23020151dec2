// One device: identity, state, every field of its latest snapshot (per board, fans, pools,
// vendor errors), its IP history, charts of hashrate, power and temperature, and command
// buttons that ask for confirmation and show the read-back outcome.

import * as api from "../api";
import { TimeChart, hashrateChart, powerChart, type Points } from "../charts";
import { h, replace } from "../dom";
import * as f from "../format";
import * as live from "../live";
import { location, replaceQuery, type Page } from "../router";
import { ACTIONS, canCommand, type Action } from "../ui/commands";
import { confirmDialog } from "../ui/dialog";
import { jobPanel } from "../ui/job";
import type { DeviceDetail, Me } from "../types";

const RANGES = ["1h", "24h", "7d"] as const;
/** How often the device's record is re-read while the page is open. */
const REFRESH_MS = 10_000;

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Flattens nested objects into `parent.child` keys, keeping arrays of scalars as lists. */
function flatten(obj: Record<string, unknown>, prefix = ""): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isRecord(v)) out.push(...flatten(v, key));
    else out.push([key, v]);
  }
  return out;
}

function label(key: string): string {
  const parts = key.split(".");
  const [name, unit] = f.field(parts[parts.length - 1]!);
  // Values carry their unit ("36.6 TH/s"), so labels do not repeat it.
  void unit;
  return parts.length > 1 ? `${f.field(parts[0]!)[0]} ${/^[A-Z]{2,}/.test(name) ? name : name.toLowerCase()}` : name;
}

function fmtValue(key: string, v: unknown): string {
  const last = key.split(".").pop() ?? key;
  if (Array.isArray(v)) return v.length ? v.map((x) => f.value(last, x)).join(" · ") : "none";
  return f.value(last, v);
}

/** A two-column list of fields. */
function kv(entries: [string, unknown][], testid?: string): HTMLElement {
  return h(
    "dl",
    { class: "kv", "data-testid": testid },
    entries.map(([k, v]) => [h("dt", null, label(k)), h("dd", { "data-field": k }, fmtValue(k, v))]),
  );
}

/** A table of objects with one column per key any of them has. */
function objectTable(rows: Record<string, unknown>[], testid: string): HTMLElement {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return h(
    "div",
    { class: "table-scroll" },
    h(
      "table",
      { class: "data", "data-testid": testid },
      h("thead", null, h("tr", null, keys.map((k) => h("th", null, label(k))))),
      h(
        "tbody",
        null,
        rows.map((r) =>
          h(
            "tr",
            { class: r.failed === true ? "bad-row" : r.active === true ? "active-row" : "" },
            keys.map((k) => h("td", null, fmtValue(k, r[k]))),
          ),
        ),
      ),
    ),
  );
}

function card(title: string, ...body: (Node | string | null)[]): HTMLElement {
  return h("section", { class: "card panel" }, h("h2", null, title), ...body);
}

/** A card that spans the whole width (wide tables). */
function wideCard(title: string, ...body: (Node | string | null)[]): HTMLElement {
  const c = card(title, ...body);
  c.classList.add("wide");
  return c;
}

/** Renders the snapshot: every scalar field, then each list in its own table. */
function snapshotView(snap: Record<string, unknown> | null): HTMLElement[] {
  if (!snap) return [card("Latest reading", h("p", { class: "muted" }, "No successful poll yet."))];
  const scalars = flatten(
    Object.fromEntries(Object.entries(snap).filter(([, v]) => !Array.isArray(v) || v.every((x) => !isRecord(x)))),
  ).filter(([k]) => k !== "fans_rpm" && k !== "errors");
  const out = [card("Latest reading", kv(scalars, "snapshot"))];
  const boards = snap.boards;
  if (Array.isArray(boards) && boards.length) {
    out.push(wideCard(`Hash boards (${boards.length})`, objectTable(boards.filter(isRecord), "boards")));
  }
  const fans = snap.fans_rpm;
  if (Array.isArray(fans)) {
    out.push(
      card(
        `Fans (${fans.length})`,
        fans.length
          ? h(
              "div",
              { class: "fans", "data-testid": "fans" },
              fans.map((rpm, i) =>
                h("span", { class: `fan ${rpm === 0 ? "bad" : ""}` }, `Fan ${i + 1}: ${f.count(Number(rpm))} rpm`),
              ),
            )
          : h("p", { class: "muted" }, "No fans reported."),
      ),
    );
  }
  const pools = snap.pools;
  if (Array.isArray(pools)) {
    out.push(
      wideCard(
        `Pools (${pools.length})`,
        pools.length ? objectTable(pools.filter(isRecord), "pools") : h("p", { class: "muted" }, "No pools configured."),
      ),
    );
  }
  const errors = snap.errors;
  if (Array.isArray(errors)) {
    out.push(
      card(
        "Vendor errors",
        errors.length
          ? h(
              "ul",
              { class: "errors", "data-testid": "vendor-errors" },
              errors.filter(isRecord).map((e) => h("li", null, h("code", null, String(e.code ?? "")), " ", String(e.message ?? ""))),
            )
          : h("p", { class: "muted", "data-testid": "vendor-errors" }, "None active."),
      ),
    );
  }
  // Any other list of objects a newer node adds is still shown.
  for (const [k, v] of Object.entries(snap)) {
    if (["boards", "pools", "errors"].includes(k) || !Array.isArray(v) || !v.some(isRecord)) continue;
    out.push(card(label(k), objectTable(v.filter(isRecord), k)));
  }
  return out;
}

/** The device page. */
export function devicePage(id: string, me: Me | null): Page {
  const abort = new AbortController();
  let range = location().query.get("range") ?? "1h";
  if (!(RANGES as readonly string[]).includes(range)) range = "1h";
  let detail: DeviceDetail | null = null;
  const stoppers: (() => void)[] = [];

  const title = h("h1", null, id);
  const statusBadge = h("span", { class: "badge", "data-testid": "device-status" });
  const subtitle = h("p", { class: "muted" });
  const failure = h("p", { class: "banner error", hidden: true, "data-testid": "device-failure" });
  const error = h("p", { class: "banner error", hidden: true, role: "alert" });
  const actions = h("div", { class: "actions", "data-testid": "device-actions" });
  const jobs = h("div", { class: "jobs" });
  const body = h("div", { class: "detail-grid" });

  const charts = {
    hashrate: hashrateChart(),
    power: powerChart(),
    temp: new TimeChart({
      title: "Temperature",
      series: [
        { label: "Hottest chip", colorVar: "--c-temp" },
        { label: "Inlet", colorVar: "--c-expected", dashed: true },
      ],
      fmt: f.temp,
      units: [[1, "°C"]],
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

  async function run(a: Action): Promise<void> {
    const name = detail?.info.model ? `${String(detail.info.model)} at ${ipOf(detail)}` : id;
    const ok = await confirmDialog(
      `${a.label}?`,
      `${a.label} on ${name}. ${a.disruptive ? "The device stops hashing for a while. " : ""}The outcome is shown once its state has been read back.`,
      a.label,
      a.disruptive,
    );
    if (!ok) return;
    try {
      const { job_id } = await api.deviceCommand(id, a.command);
      const panel = jobPanel(job_id, a.label);
      stoppers.push(panel.stop);
      jobs.prepend(panel.el);
    } catch (e) {
      error.hidden = false;
      error.textContent = `${a.label} was not sent: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  function ipOf(d: DeviceDetail): string {
    const ip = d.info.ip ?? d.ip_history[d.ip_history.length - 1]?.ip;
    return typeof ip === "string" ? ip : "";
  }

  function show(d: DeviceDetail): void {
    detail = d;
    const model = typeof d.info.model === "string" ? d.info.model : "";
    title.textContent = model ? `${model} · ${ipOf(d)}` : ipOf(d) || id;
    statusBadge.className = `badge st-${d.state.status}`;
    statusBadge.textContent = d.state.status.replace("_", " ");
    statusBadge.dataset.status = d.state.status;
    subtitle.textContent = `${id} · last poll ${f.ago(d.state.last_poll_unix_ms)} · last good reading ${f.ago(d.state.last_ok_unix_ms)}`;
    failure.hidden = !d.state.failure;
    failure.textContent = d.state.failure
      ? `${d.state.failure.kind.replace(/_/g, " ")}: ${d.state.failure.message} (${d.state.consecutive_failures} failed polls in a row)`
      : "";
    if (canCommand(me?.role)) {
      const allowed = ACTIONS.filter((a) => d.capabilities[a.capability] === true);
      replace(
        actions,
        allowed.length
          ? allowed.map((a) =>
              h(
                "button",
                { type: "button", class: `btn ${a.disruptive ? "danger-outline" : ""}`, "data-action": a.key, onclick: () => void run(a) },
                a.label,
              ),
            )
          : h("p", { class: "muted" }, "This device takes no commands."),
      );
    } else {
      replace(actions, h("p", { class: "muted" }, "Your role can read but not send commands."));
    }
    replace(
      body,
      card("Identity", kv(flatten(d.info), "info")),
      card(
        "State",
        kv(
          [
            ["status", d.state.status],
            ["last_poll_unix_ms", d.state.last_poll_unix_ms],
            ["last_ok_unix_ms", d.state.last_ok_unix_ms],
            ["consecutive_failures", d.state.consecutive_failures],
            ["failure", d.state.failure ? `${d.state.failure.kind}: ${d.state.failure.message}` : null],
          ],
          "state",
        ),
        h("h3", null, "Capabilities"),
        h(
          "div",
          { class: "caps" },
          Object.entries(d.capabilities).map(([k, v]) => h("span", { class: `cap ${v ? "on" : "off"}` }, k.replace(/_/g, " "))),
        ),
      ),
      ...snapshotView(d.snapshot),
      card(
        "IP history",
        d.ip_history.length
          ? objectTable(d.ip_history as unknown as Record<string, unknown>[], "ip-history")
          : h("p", { class: "muted" }, "No address recorded yet."),
      ),
    );
  }

  async function loadDetail(): Promise<void> {
    try {
      show(await api.device(id, abort.signal));
      error.hidden = true;
    } catch (e) {
      if (abort.signal.aborted) return;
      error.hidden = false;
      error.textContent =
        e instanceof api.ApiError && e.status === 404
          ? `No device with id ${id}.`
          : `Could not read the device: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  async function metric(m: string): Promise<Points> {
    return (await api.deviceHistory(id, { metric: m, range }, abort.signal)).points;
  }

  let chartGen = 0;
  async function loadCharts(): Promise<void> {
    const g = ++chartGen;
    const jobsList: [TimeChart, Promise<Points[]>][] = [
      [charts.hashrate, Promise.all([metric("hashrate_ths"), metric("expected_hashrate_ths")])],
      [charts.power, Promise.all([metric("power_w")])],
      [charts.temp, Promise.all([metric("chip_temp_max_c"), metric("inlet_temp_c")])],
    ];
    await Promise.all(
      jobsList.map(async ([chart, p]) => {
        try {
          const s = await p;
          if (g === chartGen) chart.set(s, range);
        } catch (e) {
          if (!abort.signal.aborted) chart.el.dataset.error = e instanceof Error ? e.message : String(e);
        }
      }),
    );
  }

  const el = h(
    "div",
    { class: "page device" },
    h("a", { class: "back", href: "#/devices" }, "← Devices"),
    h("div", { class: "page-head" }, title, statusBadge),
    subtitle,
    failure,
    error,
    actions,
    jobs,
    h(
      "div",
      { class: "section-head" },
      h("h2", null, "History"),
      h("div", { class: "segmented", role: "group", "aria-label": "Time range" }, rangeButtons),
    ),
    h("div", { class: "charts" }, Object.values(charts).map((c) => c.el)),
    body,
  );

  void loadDetail();
  void loadCharts();
  const timer = setInterval(() => void loadDetail(), REFRESH_MS);
  const chartTimer = setInterval(() => void loadCharts(), 60_000);
  const unLive = live.onDevices((rows) => {
    if (rows.some((r) => r.id === id)) void loadDetail();
  });

  return {
    el,
    destroy() {
      abort.abort();
      clearInterval(timer);
      clearInterval(chartTimer);
      unLive();
      stoppers.forEach((s) => s());
      Object.values(charts).forEach((c) => c.destroy());
    },
  };
}
