// The device table. It stays fast at 100,000 rows because only the rows on screen (plus a few
// either side) are in the DOM and only the pages of rows in view are fetched: filtering, sorting
// and paging all happen on the node (`/api/v1/devices`). Filters live in the URL so a view can
// be shared; selection supports shift-click ranges and "all matching"; the bulk menu sends one
// command to the selection and follows the job.

import * as api from "../api";
import { debounce, h, replace, setText } from "../dom";
import * as f from "../format";
import * as live from "../live";
import { deviceHref, replaceQuery, type Page } from "../router";
import { ACTIONS, canCommand, type Action } from "../ui/commands";
import { confirmDialog } from "../ui/dialog";
import { jobPanel } from "../ui/job";
import { STATUSES, type DeviceRow, type Facets, type Me } from "../types";

/** Row height in pixels; the CSS uses the same figure. */
const ROW_H = 36;
/** Rows per fetched page. */
const PAGE = 100;
/** Rows rendered beyond the visible ones on each side, so fast scrolling shows no blanks. */
const OVERSCAN = 8;
/** Largest page the API serves; used to resolve "all matching" to ids. */
const MAX_LIMIT = 5000;
/** Most devices the node takes in one command job; bigger selections become several jobs. */
const JOB_DEVICES = 10_000;

const SELECT_FILTERS = ["vendor", "model", "site", "container", "rack"] as const;
const TEXT_FILTERS = ["ip", "q"] as const;
const FACET_OF: Record<(typeof SELECT_FILTERS)[number], keyof Facets> = {
  vendor: "vendors",
  model: "models",
  site: "sites",
  container: "containers",
  rack: "racks",
};

interface Column {
  key: string;
  label: string;
  sort?: string;
  num?: boolean;
  cell: (r: DeviceRow) => string | Node;
}

function location(r: DeviceRow): string {
  const path = [r.site, r.container, r.rack].filter((x) => x).join("/");
  const pos = f.isNum(r.shelf) && f.isNum(r.slot) ? ` · ${r.shelf}-${r.slot}` : "";
  return path ? path + pos : "unplaced";
}

const COLUMNS: Column[] = [
  {
    key: "status",
    label: "Status",
    sort: "status",
    cell: (r) =>
      h("span", { class: `badge st-${r.status}`, title: r.status }, h("span", { class: "dot" }), h("span", { class: "st-text" }, r.status.replace("_", " "))),
  },
  {
    key: "ip",
    label: "IP / ID",
    sort: "ip",
    cell: (r) => h("a", { href: deviceHref(r.id), title: r.id }, r.ip || r.id),
  },
  { key: "model", label: "Model", sort: "model", cell: (r) => r.model ?? "—" },
  {
    key: "hashrate_ths",
    label: "Hashrate",
    sort: "hashrate_ths",
    num: true,
    cell: (r) => {
      const low =
        f.isNum(r.hashrate_ths) && f.isNum(r.expected_hashrate_ths) && r.expected_hashrate_ths > 0
          ? r.hashrate_ths / r.expected_hashrate_ths < 0.9
          : false;
      return h("span", { class: low ? "warn-text" : "" }, f.hashrate(r.hashrate_ths));
    },
  },
  { key: "power_w", label: "Power", sort: "power_w", num: true, cell: (r) => f.power(r.power_w) },
  {
    key: "efficiency_j_per_th",
    label: "J/TH",
    sort: "efficiency_j_per_th",
    num: true,
    cell: (r) => f.num(r.efficiency_j_per_th, 1),
  },
  {
    key: "chip_temp_max_c",
    label: "Chip",
    sort: "chip_temp_max_c",
    num: true,
    cell: (r) =>
      h(
        "span",
        { class: f.isNum(r.chip_temp_max_c) && r.chip_temp_max_c >= 95 ? "bad-text" : "" },
        f.temp(r.chip_temp_max_c),
      ),
  },
  { key: "fan_rpm_max", label: "Fan", sort: "fan_rpm_max", num: true, cell: (r) => f.count(r.fan_rpm_max) },
  { key: "location", label: "Location", sort: "site", cell: location },
  { key: "uptime_s", label: "Uptime", sort: "uptime_s", num: true, cell: (r) => f.duration(r.uptime_s) },
  {
    key: "detail",
    label: "Pool / error",
    cell: (r) =>
      r.error ? h("span", { class: "bad-text", title: r.error }, r.error) : h("span", { title: r.active_pool ?? "" }, r.active_pool ?? "—"),
  },
];

/** The filter and sort state, as in the URL. */
interface View {
  status: string[];
  vendor: string;
  model: string;
  site: string;
  container: string;
  rack: string;
  ip: string;
  q: string;
  sort: string;
  order: "asc" | "desc";
}

function readView(q: URLSearchParams): View {
  const get = (k: string) => q.get(k) ?? "";
  return {
    status: get("status").split(",").filter((s) => s !== ""),
    vendor: get("vendor"),
    model: get("model"),
    site: get("site"),
    container: get("container"),
    rack: get("rack"),
    ip: get("ip"),
    q: get("q"),
    sort: get("sort") || "ip",
    order: get("order") === "desc" ? "desc" : "asc",
  };
}

function viewQuery(v: View): URLSearchParams {
  const q = new URLSearchParams();
  if (v.status.length) q.set("status", v.status.join(","));
  for (const k of [...SELECT_FILTERS, ...TEXT_FILTERS]) if (v[k]) q.set(k, v[k]);
  if (v.sort !== "ip") q.set("sort", v.sort);
  if (v.order !== "asc") q.set("order", v.order);
  return q;
}

function apiParams(v: View, offset: number, limit: number): api.Params {
  return {
    status: v.status.join(","),
    vendor: v.vendor,
    model: v.model,
    site: v.site,
    container: v.container,
    rack: v.rack,
    ip: v.ip,
    q: v.q,
    sort: v.sort,
    order: v.order,
    offset,
    limit,
  };
}

/** The device list page. */
export function devicesPage(query: URLSearchParams, me: Me | null): Page {
  const view = readView(query);
  const operator = canCommand(me?.role);

  // Rows by page index; a page is fetched once per view (filters and sort).
  let pages = new Map<number, DeviceRow[]>();
  let inflight = new Set<number>();
  let gen = 0;
  let matched = -1;
  let total = -1;
  const rendered = new Map<number, { el: HTMLElement; row: DeviceRow | undefined; sel: boolean }>();

  // Selection: explicit ids, or everything matching the filters minus exclusions.
  let selected = new Set<string>();
  let allMatching = false;
  let excluded = new Set<string>();
  let lastClicked: number | null = null;

  const isSelected = (id: string) => (allMatching ? !excluded.has(id) : selected.has(id));
  const selectedCount = () => (allMatching ? Math.max(0, matched - excluded.size) : selected.size);

  // ---- filter bar ----
  const statusChips = STATUSES.map((s) =>
    h(
      "button",
      {
        type: "button",
        class: `chip st-${s}`,
        "data-status": s,
        "aria-pressed": String(view.status.includes(s)),
        onclick: () => {
          view.status = view.status.includes(s) ? view.status.filter((x) => x !== s) : [...view.status, s];
          statusChips.forEach((c) => c.setAttribute("aria-pressed", String(view.status.includes(c.dataset.status!))));
          changed();
        },
      },
      h("span", { class: "dot" }),
      s.replace("_", " "),
    ),
  );
  const selects = Object.fromEntries(
    SELECT_FILTERS.map((k) => {
      const sel = h(
        "select",
        {
          "data-filter": k,
          "aria-label": k,
          onchange: () => {
            view[k] = sel.value;
            changed();
          },
        },
        h("option", { value: "" }, `Any ${k}`),
        view[k] ? h("option", { value: view[k], selected: true }, view[k]) : null,
      );
      return [k, sel];
    }),
  ) as Record<(typeof SELECT_FILTERS)[number], HTMLSelectElement>;
  const textChanged = debounce(() => changed(), 250);
  const inputs = Object.fromEntries(
    TEXT_FILTERS.map((k) => {
      const input = h("input", {
        type: "search",
        "data-filter": k,
        placeholder: k === "ip" ? "IP prefix, e.g. 127.20.1." : "Search id, IP, model, serial, MAC, host",
        "aria-label": k === "ip" ? "IP prefix" : "Search",
        value: view[k],
        oninput: () => {
          view[k] = input.value.trim();
          textChanged();
        },
      });
      return [k, input];
    }),
  ) as Record<(typeof TEXT_FILTERS)[number], HTMLInputElement>;
  const clearBtn = h(
    "button",
    {
      type: "button",
      class: "btn ghost",
      onclick: () => {
        view.status = [];
        statusChips.forEach((c) => c.setAttribute("aria-pressed", "false"));
        for (const k of SELECT_FILTERS) {
          view[k] = "";
          selects[k].value = "";
        }
        for (const k of TEXT_FILTERS) {
          view[k] = "";
          inputs[k].value = "";
        }
        changed();
      },
    },
    "Clear filters",
  );

  // ---- summary and bulk actions ----
  const countEl = h("span", { class: "count", "data-testid": "matched" });
  const selEl = h("span", { class: "selection", "data-testid": "selected-count" });
  const selectAllBtn = h("button", { type: "button", class: "btn ghost", "data-testid": "select-all-matching", onclick: () => selectAll(true) });
  const clearSelBtn = h("button", { type: "button", class: "btn ghost", onclick: () => selectAll(false) }, "Clear selection");
  const errorEl = h("p", { class: "banner error", role: "alert", hidden: true });
  const jobs = h("div", { class: "jobs" });
  const stoppers: (() => void)[] = [];

  const actionMenu = h(
    "details",
    { class: "menu", "data-testid": "bulk-actions" },
    h("summary", { class: "btn" }, "Actions ▾"),
    h(
      "div",
      { class: "menu-items card" },
      ACTIONS.map((a) =>
        h(
          "button",
          { type: "button", "data-action": a.key, onclick: () => void bulk(a) },
          a.label,
        ),
      ),
    ),
  );

  // ---- table ----
  const headCheck = h("input", {
    type: "checkbox",
    "aria-label": "Select all matching devices",
    "data-testid": "select-all",
    onchange: () => selectAll(headCheck.checked),
  });
  const sortButtons: HTMLButtonElement[] = [];
  const header = h(
    "div",
    { class: "dt-row dt-head", role: "row" },
    h("div", { class: "c-select" }, headCheck),
    COLUMNS.map((c) => {
      if (!c.sort) return h("div", { class: `c-${c.key}`, role: "columnheader" }, c.label);
      const b = h(
        "button",
        {
          type: "button",
          class: `sort ${c.num ? "num" : ""}`,
          "data-sort": c.sort,
          onclick: () => {
            if (view.sort === c.sort) view.order = view.order === "asc" ? "desc" : "asc";
            else {
              view.sort = c.sort!;
              view.order = c.num ? "desc" : "asc";
            }
            changed();
          },
        },
        c.label,
        h("span", { class: "sort-mark" }),
      );
      sortButtons.push(b);
      return h("div", { class: `c-${c.key} ${c.num ? "num" : ""}`, role: "columnheader" }, b);
    }),
  );
  const canvas = h("div", { class: "dt-canvas", role: "rowgroup" });
  const empty = h("div", { class: "dt-empty", hidden: true }, "No device matches these filters.");
  const viewport = h("div", { class: "dt-viewport card", role: "table", "data-testid": "device-table" }, header, canvas, empty);

  function showSort(): void {
    sortButtons.forEach((b) => {
      const on = b.dataset.sort === view.sort;
      b.setAttribute("aria-sort", on ? (view.order === "asc" ? "ascending" : "descending") : "none");
      b.querySelector(".sort-mark")!.textContent = on ? (view.order === "asc" ? " ▲" : " ▼") : "";
    });
  }

  function showCounts(): void {
    setText(
      countEl,
      matched < 0 ? "Loading…" : total < 0 ? `${f.count(matched)} devices` : `${f.count(matched)} of ${f.count(total)} devices`,
    );
    const n = selectedCount();
    setText(selEl, n > 0 ? `${f.count(n)} selected` : "");
    selEl.hidden = n === 0;
    clearSelBtn.hidden = n === 0;
    selectAllBtn.hidden = allMatching || matched <= 0;
    setText(selectAllBtn, `Select all ${f.count(Math.max(0, matched))} matching`);
    actionMenu.hidden = !operator || n === 0;
    headCheck.checked = allMatching && excluded.size === 0 && matched > 0;
    headCheck.indeterminate = n > 0 && !headCheck.checked;
  }

  function rowEl(i: number, r: DeviceRow | undefined): HTMLElement {
    const sel = r ? isSelected(r.id) : false;
    const check = h("input", {
      type: "checkbox",
      "aria-label": "Select",
      checked: sel,
      disabled: !r,
      onclick: (ev: MouseEvent) => {
        ev.stopPropagation();
        void toggleRow(i, (ev.target as HTMLInputElement).checked, ev.shiftKey);
      },
    });
    const el = h(
      "div",
      {
        class: `dt-row${r ? "" : " loading"}${sel ? " selected" : ""}`,
        role: "row",
        style: `transform: translateY(${i * ROW_H}px)`,
        "data-index": String(i),
        "data-id": r?.id,
        "data-status": r?.status,
        onclick: (ev: MouseEvent) => {
          if (!r || (ev.target as HTMLElement).closest("a, input")) return;
          window.location.hash = deviceHref(r.id);
        },
      },
      h("div", { class: "c-select" }, check),
      COLUMNS.map((c) =>
        h("div", { class: `c-${c.key} ${c.num ? "num" : ""}`, role: "cell" }, r ? c.cell(r) : i === 0 || i % 10 === 0 ? "…" : ""),
      ),
    );
    return el;
  }

  function rowAt(i: number): DeviceRow | undefined {
    return pages.get(Math.floor(i / PAGE))?.[i % PAGE];
  }

  /** Draws the rows in view; rows already drawn with the same data are kept. */
  function render(): void {
    const n = Math.max(0, matched);
    canvas.style.height = `${n * ROW_H}px`;
    empty.hidden = matched !== 0;
    const top = Math.max(0, viewport.scrollTop - header.offsetHeight);
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(n - 1, Math.ceil((top + viewport.clientHeight) / ROW_H) + OVERSCAN);
    for (const [i, r] of rendered) {
      if (i < first || i > last) {
        r.el.remove();
        rendered.delete(i);
      }
    }
    for (let i = first; i <= last; i++) {
      const row = rowAt(i);
      const sel = row ? isSelected(row.id) : false;
      const have = rendered.get(i);
      if (have && have.row === row && have.sel === sel) continue;
      const el = rowEl(i, row);
      if (have) have.el.replaceWith(el);
      else canvas.appendChild(el);
      rendered.set(i, { el, row, sel });
    }
    if (n > 0) fetchPages(first, last);
    showCounts();
  }

  let frame = 0;
  const scheduleRender = () => {
    if (!frame) frame = requestAnimationFrame(() => {
      frame = 0;
      render();
    });
  };

  async function fetchPage(p: number): Promise<void> {
    if (pages.has(p) || inflight.has(p)) return;
    const g = gen;
    inflight.add(p);
    try {
      const res = await api.devices(apiParams(view, p * PAGE, PAGE));
      if (g !== gen) return;
      pages.set(p, res.items);
      matched = res.matched;
      total = res.total;
      errorEl.hidden = true;
      scheduleRender();
    } catch (e) {
      if (g !== gen) return;
      errorEl.hidden = false;
      errorEl.textContent = `Could not load devices: ${e instanceof Error ? e.message : String(e)}`;
      matched = Math.max(matched, 0);
      showCounts();
    } finally {
      if (g === gen) inflight.delete(p);
    }
  }

  // While the scrollbar is dragged across thousands of rows, fetch only where it stops.
  const fetchPages = debounce((first: number, last: number) => {
    for (let p = Math.floor(first / PAGE); p <= Math.floor(last / PAGE); p++) void fetchPage(p);
  }, 60);

  /** Starts over after a change of filters or sort. */
  function changed(): void {
    replaceQuery(viewQuery(view));
    gen++;
    pages = new Map();
    inflight = new Set();
    matched = -1;
    selected = new Set();
    allMatching = false;
    excluded = new Set();
    lastClicked = null;
    rendered.forEach((r) => r.el.remove());
    rendered.clear();
    viewport.scrollTop = 0;
    showSort();
    showCounts();
    void fetchPage(0);
  }

  async function toggleRow(i: number, on: boolean, shift: boolean): Promise<void> {
    const from = shift && lastClicked !== null ? Math.min(lastClicked, i) : i;
    const to = shift && lastClicked !== null ? Math.max(lastClicked, i) : i;
    lastClicked = i;
    // A shift-range may reach rows never scrolled into view: fetch them first.
    const missing: Promise<void>[] = [];
    for (let p = Math.floor(from / PAGE); p <= Math.floor(to / PAGE); p++) missing.push(fetchPage(p));
    await Promise.all(missing);
    for (let k = from; k <= to; k++) {
      const r = rowAt(k);
      if (!r) continue;
      if (allMatching) {
        if (on) excluded.delete(r.id);
        else excluded.add(r.id);
      } else if (on) selected.add(r.id);
      else selected.delete(r.id);
    }
    scheduleRender();
  }

  function selectAll(on: boolean): void {
    allMatching = on;
    selected = new Set();
    excluded = new Set();
    scheduleRender();
  }

  /** The ids the selection stands for (pages through the whole match for "all matching"). */
  async function selectedIds(): Promise<string[]> {
    if (!allMatching) return [...selected];
    const ids: string[] = [];
    for (let offset = 0; ; offset += MAX_LIMIT) {
      const res = await api.devices(apiParams(view, offset, MAX_LIMIT));
      res.items.forEach((r) => {
        if (!excluded.has(r.id)) ids.push(r.id);
      });
      if (res.items.length < MAX_LIMIT || offset + MAX_LIMIT >= res.matched) break;
    }
    return ids;
  }

  async function bulk(a: Action): Promise<void> {
    actionMenu.open = false;
    const n = selectedCount();
    const ok = await confirmDialog(
      `${a.label} on ${f.count(n)} device${n === 1 ? "" : "s"}?`,
      a.disruptive
        ? "These devices will stop hashing for a while. Each device's outcome is shown when it is read back."
        : "Each device's outcome is shown when its state has been read back.",
      a.label,
      a.disruptive,
    );
    if (!ok) return;
    try {
      const ids = await selectedIds();
      for (let i = 0; i < ids.length; i += JOB_DEVICES) {
        const part = ids.slice(i, i + JOB_DEVICES);
        const { job_id } = await api.bulkCommand(part, a.command);
        const panel = jobPanel(job_id, `${a.label} on ${f.count(part.length)} device${part.length === 1 ? "" : "s"}`);
        stoppers.push(panel.stop);
        jobs.prepend(panel.el);
      }
    } catch (e) {
      errorEl.hidden = false;
      errorEl.textContent = `${a.label} was not sent: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  async function loadFacets(): Promise<void> {
    try {
      const fc = await api.facets();
      for (const k of SELECT_FILTERS) {
        const values = fc[FACET_OF[k]] ?? [];
        const sel = selects[k];
        replace(
          sel,
          h("option", { value: "" }, `Any ${k}`),
          values.map((v) => h("option", { value: v, selected: v === view[k] }, v)),
          view[k] && !values.includes(view[k]) ? h("option", { value: view[k], selected: true }, view[k]) : null,
        );
      }
    } catch {
      // Without facets the selects keep "any" and the current value; filtering still works.
    }
  }

  // Live status changes replace the rows we hold; rows that no longer match stay until the
  // next fetch, so the table does not jump under the operator's cursor.
  const unLive = live.onDevices((rows) => {
    const byId = new Map(rows.map((r) => [r.id, r]));
    let hit = false;
    for (const page of pages.values()) {
      for (let i = 0; i < page.length; i++) {
        const fresh = byId.get(page[i]!.id);
        if (fresh) {
          page[i] = fresh;
          hit = true;
        }
      }
    }
    if (hit) scheduleRender();
  });

  viewport.addEventListener("scroll", scheduleRender, { passive: true });
  const resize = new ResizeObserver(scheduleRender);
  resize.observe(viewport);

  const el = h(
    "div",
    { class: "page devices" },
    h("div", { class: "page-head" }, h("h1", null, "Devices"), countEl),
    h(
      "div",
      { class: "filters card", "data-testid": "filters" },
      h("div", { class: "chips", role: "group", "aria-label": "Status" }, statusChips),
      // On a phone the fields fold away behind "More filters" unless one is in use.
      h(
        "details",
        {
          class: "more-filters",
          open:
            !window.matchMedia("(max-width: 760px)").matches ||
            [...SELECT_FILTERS, ...TEXT_FILTERS].some((k) => view[k] !== ""),
        },
        h("summary", null, "More filters"),
        h("div", { class: "filter-fields" }, SELECT_FILTERS.map((k) => selects[k]), inputs.ip, inputs.q, clearBtn),
      ),
    ),
    h("div", { class: "selection-bar" }, selEl, selectAllBtn, clearSelBtn, actionMenu),
    errorEl,
    jobs,
    viewport,
  );

  showSort();
  showCounts();
  void fetchPage(0);
  void loadFacets();

  return {
    el,
    destroy() {
      gen++;
      unLive();
      resize.disconnect();
      if (frame) cancelAnimationFrame(frame);
      stoppers.forEach((s) => s());
    },
  };
}
