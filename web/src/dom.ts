// A tiny view layer: `h()` builds DOM elements in one expression. Pages build their DOM once
// and update the parts that change by hand, which keeps tables of 100,000 rows and live charts
// cheap without a framework's diffing.

/** Anything `h()` accepts as a child. */
export type Child = Node | string | number | null | undefined | false | Child[];

/** Attributes and event handlers for `h()`. */
export type Attrs = Record<string, unknown>;

function append(el: Element, c: Child): void {
  if (c === null || c === undefined || c === false) return;
  if (Array.isArray(c)) {
    c.forEach((x) => append(el, x));
  } else if (c instanceof Node) {
    el.appendChild(c);
  } else {
    el.appendChild(document.createTextNode(String(c)));
  }
}

// Properties that must be set on the element, not as attributes, to take effect after creation.
const PROPS = new Set(["value", "checked", "disabled", "selected", "indeterminate"]);

/** Creates an element with attributes (`onclick` etc. become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v as EventListener);
    } else if (PROPS.has(k)) {
      (el as unknown as Record<string, unknown>)[k] = v;
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  children.forEach((c) => append(el, c));
  return el;
}

/** Replaces all children of `el`. */
export function replace(el: Element, ...children: Child[]): void {
  el.textContent = "";
  children.forEach((c) => append(el, c));
}

/** Sets the text of `el` only when it changed (avoids needless layout work in hot paths). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/** Runs `f` at most once per `ms`, with the latest arguments, after calls stop. */
export function debounce<A extends unknown[]>(f: (...a: A) => void, ms: number): (...a: A) => void {
  let t: ReturnType<typeof setTimeout> | undefined;
  return (...a: A) => {
    if (t !== undefined) clearTimeout(t);
    t = setTimeout(() => f(...a), ms);
  };
}
