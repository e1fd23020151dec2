// The shapes of the node's HTTP API v1 (docs/api-contract, served at /api/openapi.json) as the
// dashboard reads them. Only what the dashboard uses is typed; everything else passes through.

/** Every status a device can be in, in the order the dashboard lists them. */
export const STATUSES = [
  "mining",
  "degraded",
  "sleeping",
  "error",
  "auth_failed",
  "offline",
  "unknown",
] as const;

/** One device status. */
export type Status = (typeof STATUSES)[number];

/** Counts of devices by status. */
export type StatusCounts = Partial<Record<Status, number>>;

/** The signed-in user, from login and `/auth/me`. */
export interface Me {
  username: string;
  role: "viewer" | "operator" | "admin";
  csrf_token: string;
}

/** Fleet figures for one site or container. */
export interface FleetGroup {
  level: "site" | "container" | "rack" | "model" | "vendor" | string;
  /** The group's name in history queries (`site=A`, `container=A/C01`). */
  group?: string;
  site?: string;
  container?: string;
  rack?: string;
  model?: string;
  vendor?: string;
  devices: number;
  by_status: StatusCounts;
  hashrate_ths: number | null;
  expected_hashrate_ths?: number | null;
  power_w: number | null;
  efficiency_j_per_th: number | null;
  chip_temp_max_c: number | null;
}

/** The fleet summary (`/fleet/summary`, and the WebSocket `summary` frame without groups). */
export interface FleetSummary {
  time_unix_ms: number;
  devices: number;
  by_status: StatusCounts;
  hashrate_ths: number | null;
  expected_hashrate_ths: number | null;
  power_w: number | null;
  efficiency_j_per_th: number | null;
  chip_temp_max_c: number | null;
  meters?: { devices: number; power_w: number | null; energy_import_kwh: number | null } | null;
  poller?: {
    interval_s: number;
    last_cycle?: {
      polls: number;
      late: number;
      errors: number;
      max_start_delay_ms: number;
      mean_poll_ms: number;
    } | null;
  } | null;
  groups?: FleetGroup[];
}

/** A time series: `[unix ms, value]` pairs, missing buckets absent. */
export interface History {
  metric: string;
  agg?: string;
  group?: string;
  resolution?: string;
  points: [number, number | null][];
}

/** One row of the device list. */
export interface DeviceRow {
  id: string;
  ip: string;
  family: string | null;
  vendor: string | null;
  model: string | null;
  firmware: string | null;
  status: Status;
  hashrate_ths: number | null;
  expected_hashrate_ths: number | null;
  power_w: number | null;
  efficiency_j_per_th: number | null;
  chip_temp_max_c: number | null;
  fan_rpm_max: number | null;
  site: string | null;
  container: string | null;
  rack: string | null;
  shelf: number | null;
  slot: number | null;
  uptime_s: number | null;
  active_pool: string | null;
  error: string | null;
  last_poll_unix_ms: number | null;
}

/** A page of the device list. */
export interface DevicePage {
  total: number;
  matched: number;
  offset: number;
  items: DeviceRow[];
}

/** Distinct values of each filterable field. */
export interface Facets {
  vendors: string[];
  models: string[];
  sites: string[];
  containers: string[];
  racks: string[];
  statuses: string[];
}

/** A device's full record (`/devices/{id}`). */
export interface DeviceDetail {
  info: Record<string, unknown>;
  state: {
    status: Status;
    last_poll_unix_ms: number | null;
    last_ok_unix_ms: number | null;
    failure: { kind: string; message: string } | null;
    consecutive_failures: number;
  };
  snapshot: Record<string, unknown> | null;
  ip_history: { ip: string; first_seen_unix_ms: number; last_seen_unix_ms: number }[];
  capabilities: Record<string, boolean>;
}

/** A command as the API takes it. */
export type Command =
  | { command: "reboot" }
  | { command: "restart_mining" }
  | { command: "sleep" }
  | { command: "wake" }
  | { command: "locate_led"; on: boolean }
  | { command: "set_power_mode"; mode: "low" | "normal" | "high" }
  | { command: "set_power_target"; power_w: number }
  | { command: "set_pools"; pools: { url: string; user: string; password: string }[] };

/** The outcome of a command on one device. */
export interface JobResult {
  device: string;
  ip?: string;
  result: "confirmed" | "unverified" | "failed" | "unsupported" | string;
  message: string;
  /** Time from sending to the verdict. */
  elapsed_ms?: number | null;
}

/** A command job and its per-device results so far. */
export interface Job {
  id: number;
  command: unknown;
  state: "running" | "done" | string;
  /** Devices named, and finished so far (when the node says). */
  total?: number;
  done?: number;
  results: JobResult[];
}

/** One placed device on the site map. */
export interface MapDevice {
  id: string;
  ip?: string;
  model?: string;
  shelf: number;
  slot: number;
  status: Status;
  chip_temp_max_c: number | null;
  hashrate_ths: number | null;
  expected_hashrate_ths: number | null;
}

/** The site map: sites ▸ containers ▸ racks ▸ devices at shelf and slot. */
export interface SiteMap {
  sites: {
    site: string;
    containers: {
      container: string;
      racks: { rack: string; shelves: number; slots: number; devices: MapDevice[] }[];
    }[];
  }[];
  unplaced: number;
}

/** A WebSocket frame from `/api/v1/ws`. */
export type LiveFrame =
  | { type: "summary"; data: FleetSummary }
  | { type: "devices"; data: DeviceRow[] };
