// Follows a command job until it is done and shows each device's outcome: confirmed (the
// device's state shows the change), unverified (accepted, but the device cannot show it),
// failed, or unsupported.

import * as api from "../api";
import { h, replace } from "../dom";
import * as f from "../format";
import { deviceHref } from "../router";
import type { Job } from "../types";

const OUTCOMES = ["confirmed", "unverified", "failed", "unsupported"] as const;
const SHOWN = 200;

/** A panel that polls `/jobs/{id}` every second until the job is done. */
export function jobPanel(jobId: number, title: string): { el: HTMLElement; stop: () => void } {
  const state = h("span", { class: "job-state", "data-testid": "job-state" }, "running");
  const counts = h("div", { class: "job-counts" });
  const list = h("ul", { class: "job-results" });
  const el = h(
    "section",
    { class: "job card", "data-testid": "job", "data-job": String(jobId) },
    h("h3", null, `${title} · job ${jobId} · `, state),
    counts,
    list,
  );
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  function show(job: Job): void {
    state.textContent =
      job.state !== "done" && f.isNum(job.total) && f.isNum(job.done)
        ? `${job.state} (${f.count(job.done)} of ${f.count(job.total)})`
        : job.state;
    el.dataset.state = job.state;
    const by = new Map<string, number>();
    job.results.forEach((r) => by.set(r.result, (by.get(r.result) ?? 0) + 1));
    replace(
      counts,
      OUTCOMES.filter((o) => by.has(o)).map((o) =>
        h("span", { class: `outcome o-${o}`, "data-outcome": o }, `${f.count(by.get(o))} ${o}`),
      ),
    );
    replace(
      list,
      job.results.slice(0, SHOWN).map((r) =>
        h(
          "li",
          { "data-testid": "job-result", "data-result": r.result, "data-device": r.device },
          h("span", { class: `outcome o-${r.result}` }, r.result),
          " ",
          h("a", { href: deviceHref(r.device), title: r.device }, r.ip || r.device),
          r.message ? h("span", { class: "muted" }, ` — ${r.message}`) : null,
          f.isNum(r.elapsed_ms)
            ? h("span", { class: "muted" }, ` (${f.num(r.elapsed_ms! / 1000, 1)} s)`)
            : null,
        ),
      ),
      job.results.length > SHOWN
        ? h("li", { class: "muted" }, `…and ${f.count(job.results.length - SHOWN)} more`)
        : null,
    );
  }

  async function poll(): Promise<void> {
    if (stopped) return;
    try {
      const job = await api.job(jobId);
      show(job);
      if (job.state === "done") return;
    } catch (e) {
      state.textContent = `cannot read the job: ${e instanceof Error ? e.message : String(e)}`;
    }
    if (!stopped) timer = setTimeout(() => void poll(), 1000);
  }
  void poll();
  return {
    el,
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
