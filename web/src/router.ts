// Hash-based routing (`#/devices?status=offline`, `#/device/<id>`): the server only ever serves
// `/`, and every view has a link an operator can bookmark or share.

/** A mounted page: its element and what to stop when leaving it. */
export interface Page {
  el: HTMLElement;
  destroy?: () => void;
}

/** Where the browser is: path, path parameters and query. */
export interface Location {
  path: string;
  parts: string[];
  query: URLSearchParams;
}

/** Reads the current hash as a location. */
export function location(): Location {
  const raw = window.location.hash.replace(/^#/, "") || "/";
  const [path = "/", qs = ""] = raw.split("?", 2);
  const parts = path
    .split("/")
    .filter((p) => p !== "")
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p; // a hand-typed malformed escape: use it as written
      }
    });
  return { path, parts, query: new URLSearchParams(qs) };
}

/** The hash link of a device's page. */
export function deviceHref(id: string): string {
  return `#/device/${encodeURIComponent(id)}`;
}

/** The hash link of the device list with filters. */
export function devicesHref(filters: Record<string, string>): string {
  const q = new URLSearchParams(filters).toString();
  return `#/devices${q ? `?${q}` : ""}`;
}

/** Rewrites the query of the current page without reloading it (filters, ranges). */
export function replaceQuery(query: URLSearchParams): void {
  const { path } = location();
  const q = query.toString();
  history.replaceState(null, "", `#${path}${q ? `?${q}` : ""}`);
}
