// Dark and light themes: follow the operating system until the operator picks one with the
// toggle, then remember the pick in this browser.

/** A colour theme. */
export type Theme = "light" | "dark";

const KEY = "hashmesh.theme";
const listeners: ((t: Theme) => void)[] = [];
const media = window.matchMedia("(prefers-color-scheme: dark)");

function stored(): Theme | null {
  try {
    const v = localStorage.getItem(KEY);
    return v === "light" || v === "dark" ? v : null;
  } catch {
    return null; // storage blocked (private mode): follow the OS
  }
}

/** The theme in force now. */
export function current(): Theme {
  return stored() ?? (media.matches ? "dark" : "light");
}

function apply(): void {
  const t = current();
  document.documentElement.dataset.theme = t;
  listeners.forEach((f) => f(t));
}

/** Switches to the other theme and remembers it. */
export function toggle(): void {
  const next: Theme = current() === "dark" ? "light" : "dark";
  try {
    localStorage.setItem(KEY, next);
  } catch {
    // Not remembered, but still applied for this page.
  }
  document.documentElement.dataset.theme = next;
  listeners.forEach((f) => f(next));
}

/** Calls `f` after every theme change; returns a function that stops it. */
export function onTheme(f: (t: Theme) => void): () => void {
  listeners.push(f);
  return () => {
    const i = listeners.indexOf(f);
    if (i >= 0) listeners.splice(i, 1);
  };
}

/** A CSS custom property's value in the current theme (charts draw with these). */
export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** Applies the theme at start-up and follows OS changes while no pick is stored. */
export function initTheme(): void {
  apply();
  media.addEventListener("change", () => {
    if (stored() === null) apply();
  });
}
