// How numbers look on screen: hashrate in TH/PH/EH per second, power in W/kW/MW, temperatures,
// durations and times, and labels and units for snapshot field names.

const dash = "—";

function fixed(x: number, digits: number): string {
  return x.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** True for a finite number. */
export function isNum(x: unknown): x is number {
  return typeof x === "number" && Number.isFinite(x);
}

/** A count with thousands separators. */
export function count(x: number | null | undefined): string {
  return isNum(x) ? Math.round(x).toLocaleString("en-US") : dash;
}

/** A plain number with `digits` decimals. */
export function num(x: number | null | undefined, digits = 1): string {
  return isNum(x) ? fixed(x, digits) : dash;
}

/** A hashrate given in TH/s, scaled to a readable unit. */
export function hashrate(ths: number | null | undefined): string {
  if (!isNum(ths)) return dash;
  const a = Math.abs(ths);
  if (a >= 1e6) return `${fixed(ths / 1e6, 2)} EH/s`;
  if (a >= 1e3) return `${fixed(ths / 1e3, 2)} PH/s`;
  return `${fixed(ths, a >= 100 ? 1 : 2)} TH/s`;
}

/** A power given in W, scaled to a readable unit. */
export function power(w: number | null | undefined): string {
  if (!isNum(w)) return dash;
  const a = Math.abs(w);
  if (a >= 1e6) return `${fixed(w / 1e6, 2)} MW`;
  if (a >= 1e3) return `${fixed(w / 1e3, a >= 1e5 ? 0 : 1)} kW`;
  return `${fixed(w, 0)} W`;
}

/** A temperature in °C. */
export function temp(c: number | null | undefined): string {
  return isNum(c) ? `${fixed(c, 1)} °C` : dash;
}

/** An efficiency in J/TH. */
export function jth(x: number | null | undefined): string {
  return isNum(x) ? `${fixed(x, 1)} J/TH` : dash;
}

/** A share as a percentage. */
export function pct(part: number | null | undefined, whole: number | null | undefined): string {
  if (!isNum(part) || !isNum(whole) || whole === 0) return dash;
  return `${fixed((100 * part) / whole, 1)} %`;
}

/** A duration in seconds as days, hours, minutes. */
export function duration(s: number | null | undefined): string {
  if (!isNum(s)) return dash;
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${hh}h`;
  if (hh > 0) return `${hh}h ${m}m`;
  if (m > 0) return `${m}m ${Math.floor(s % 60)}s`;
  return `${Math.floor(s)}s`;
}

/** A point in time, local. */
export function time(ms: number | null | undefined): string {
  if (!isNum(ms)) return dash;
  return new Date(ms).toLocaleString();
}

/** How long ago a point in time was. */
export function ago(ms: number | null | undefined, now = Date.now()): string {
  if (!isNum(ms)) return dash;
  const s = Math.max(0, (now - ms) / 1000);
  return s < 1 ? "just now" : `${duration(s)} ago`;
}

// Field-name suffixes and the unit each one means (the API puts units in every field name).
const SUFFIXES: [string, string][] = [
  ["_unix_ms", ""],
  ["_j_per_th", "J/TH"],
  ["_ths", "TH/s"],
  ["_kvarh", "kvarh"],
  ["_kwh", "kWh"],
  ["_var", "var"],
  ["_va", "VA"],
  ["_w", "W"],
  ["_c", "°C"],
  ["_rpm", "rpm"],
  ["_mhz", "MHz"],
  ["_hz", "Hz"],
  ["_v", "V"],
  ["_a", "A"],
  ["_ms", "ms"],
  ["_s", "s"],
];

/** A field name as a label and its unit: `chip_temp_c` → ["Chip temp", "°C"]. */
export function field(name: string): [string, string] {
  for (const [suffix, unit] of SUFFIXES) {
    if (name.endsWith(suffix) && name.length > suffix.length) {
      return [words(name.slice(0, -suffix.length)), unit];
    }
  }
  return [words(name), ""];
}

// Words operators write in capitals.
const ACRONYMS: Record<string, string> = { id: "ID", ip: "IP", mac: "MAC", led: "LED", url: "URL", psu: "PSU", pcb: "PCB" };

function words(snake: string): string {
  const s = snake
    .split("_")
    .map((w) => ACRONYMS[w] ?? w)
    .join(" ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Any snapshot value, formatted by what its field name says it is. */
export function value(name: string, v: unknown): string {
  if (v === null || v === undefined) return dash;
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "number") {
    if (name.endsWith("_unix_ms")) return time(v);
    if (name === "uptime_s") return duration(v);
    if (name.endsWith("_ths")) return hashrate(v);
    if (name.endsWith("_w")) return power(v);
    const [, unit] = field(name);
    const digits = Number.isInteger(v) ? 0 : 2;
    return unit ? `${num(v, digits)} ${unit}` : num(v, digits);
  }
  // Enum values (`firmware_estimated`) read better as words; other strings stay exact.
  if (typeof v === "string") return /^[a-z]+(_[a-z]+)+$/.test(v) ? v.replace(/_/g, " ") : v;
  return JSON.stringify(v);
}
