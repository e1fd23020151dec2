// The dashboard's only door to the node: typed calls to the HTTP API v1 with the session
// cookie and the CSRF header, and one error type that carries the server's problem document.

import type {
  Command,
  DeviceDetail,
  DevicePage,
  Facets,
  FleetSummary,
  History,
  Job,
  Me,
  SiteMap,
} from "./types";

/** A failed API call: the HTTP status and the server's explanation. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
  ) {
    super(detail || title || `HTTP ${status}`);
  }
}

let csrfToken = "";
const unauthorizedListeners: (() => void)[] = [];

/** Calls `f` whenever the server says the session is gone (401 on a normal call). */
export function onUnauthorized(f: () => void): void {
  unauthorizedListeners.push(f);
}

/** Query parameters; empty strings and nulls are left out. */
export type Params = Record<string, string | number | null | undefined>;

function url(path: string, params?: Params): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return `/api/v1${path}${s ? `?${s}` : ""}`;
}

async function problem(res: Response): Promise<ApiError> {
  let title = res.statusText;
  let detail = "";
  try {
    const body: unknown = await res.json();
    if (body && typeof body === "object") {
      const b = body as { title?: unknown; detail?: unknown };
      if (typeof b.title === "string") title = b.title;
      if (typeof b.detail === "string") detail = b.detail;
    }
  } catch {
    // Not JSON (a proxy's page, or an empty body): the status line is all there is.
  }
  return new ApiError(res.status, title, detail);
}

async function call<T>(
  method: string,
  path: string,
  opts: { params?: Params; body?: unknown; quiet401?: boolean; signal?: AbortSignal } = {},
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const res = await fetch(url(path, opts.params), {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    credentials: "same-origin",
    signal: opts.signal,
  });
  if (!res.ok) {
    const err = await problem(res);
    if (res.status === 401 && !opts.quiet401) unauthorizedListeners.forEach((f) => f());
    throw err;
  }
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** Signs in; keeps the CSRF token for later writes. */
export async function login(username: string, password: string): Promise<Me> {
  const me = await call<Me>("POST", "/auth/login", {
    body: { username, password },
    quiet401: true,
  });
  csrfToken = me.csrf_token;
  return me;
}

/** Who is signed in, or null when nobody is. */
export async function me(): Promise<Me | null> {
  try {
    const m = await call<Me>("GET", "/auth/me", { quiet401: true });
    csrfToken = m.csrf_token;
    return m;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

/** Signs out and forgets the CSRF token. */
export async function logout(): Promise<void> {
  try {
    await call<void>("POST", "/auth/logout", { quiet401: true });
  } finally {
    csrfToken = "";
  }
}

/** Fleet totals, by status and per site and container. */
export const fleetSummary = (signal?: AbortSignal) =>
  call<FleetSummary>("GET", "/fleet/summary", { signal });

/** One fleet metric over a time range. */
export const fleetHistory = (params: Params, signal?: AbortSignal) =>
  call<History>("GET", "/fleet/history", { params, signal });

/** A page of devices, filtered and sorted by the server. */
export const devices = (params: Params, signal?: AbortSignal) =>
  call<DevicePage>("GET", "/devices", { params, signal });

/** Distinct values of every filter. */
export const facets = () => call<Facets>("GET", "/devices/facets");

/** Everything known about one device. */
export const device = (id: string, signal?: AbortSignal) =>
  call<DeviceDetail>("GET", `/devices/${encodeURIComponent(id)}`, { signal });

/** One metric of one device over a time range. */
export const deviceHistory = (id: string, params: Params, signal?: AbortSignal) =>
  call<History>("GET", `/devices/${encodeURIComponent(id)}/history`, { params, signal });

/** Sends a command to one device; returns the job to follow. */
export const deviceCommand = (id: string, command: Command) =>
  call<{ job_id: number }>("POST", `/devices/${encodeURIComponent(id)}/commands`, {
    body: command,
  });

/** Sends a command to many devices; returns the job to follow. */
export const bulkCommand = (ids: string[], command: Command) =>
  call<{ job_id: number }>("POST", "/commands", { body: { devices: ids, command } });

/** A command job and its results so far. */
export const job = (id: number) => call<Job>("GET", `/jobs/${id}`);

/** The site map. */
export const siteMap = (signal?: AbortSignal) => call<SiteMap>("GET", "/sitemap", { signal });
