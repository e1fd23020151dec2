// The dashboard's entry point: applies the theme, checks the session, then draws the shell
// (header, navigation, live-connection badge) and mounts the page the hash names.

import "./style.css";
import * as api from "./api";
import { h, replace } from "./dom";
import * as live from "./live";
import { loginPage } from "./pages/login";
import { logo } from "./ui/logo";
import { devicePage } from "./pages/device";
import { devicesPage } from "./pages/devices";
import { overviewPage, prefetch } from "./pages/overview";
import { sitemapPage } from "./pages/sitemap";
import { location, type Page } from "./router";
import { current, initTheme, onTheme, toggle } from "./theme";
import type { Me } from "./types";

const root = document.getElementById("app")!;
let page: Page | null = null;
let user: Me | null = null;
let main: HTMLElement | null = null;

function route(): Page {
  const loc = location();
  const [first, second] = loc.parts;
  switch (first) {
    case undefined:
    case "overview":
      return overviewPage();
    case "devices":
      return devicesPage(loc.query, user);
    case "device":
      if (second) return devicePage(second, user);
      break;
    case "sitemap":
      return sitemapPage(loc.query);
  }
  return {
    el: h(
      "div",
      { class: "page" },
      h("h1", null, "Not found"),
      h("p", null, "There is no page at ", h("code", null, window.location.hash), ". "),
      h("a", { href: "#/" }, "Go to the overview"),
    ),
  };
}

function mount(): void {
  if (!main || !user) return;
  page?.destroy?.();
  page = route();
  replace(main, page.el);
  const path = location().parts[0] ?? "overview";
  const section = path === "device" ? "devices" : path;
  root.querySelectorAll<HTMLAnchorElement>("nav a[data-section]").forEach((a) => {
    a.classList.toggle("active", a.dataset.section === section);
  });
  window.scrollTo(0, 0);
}

function themeButton(): HTMLButtonElement {
  const b = h("button", {
    class: "icon-btn",
    type: "button",
    "data-testid": "theme-toggle",
    onclick: () => toggle(),
  });
  const label = () => {
    const dark = current() === "dark";
    b.textContent = dark ? "☀" : "☾";
    b.title = dark ? "Switch to the light theme" : "Switch to the dark theme";
    b.setAttribute("aria-label", b.title);
  };
  label();
  onTheme(label);
  return b;
}

function liveBadge(): HTMLElement {
  const el = h("span", { class: "live-badge", "data-testid": "live-state" });
  live.onState((s) => {
    el.dataset.state = s;
    el.textContent = s === "live" ? "live" : s === "off" ? "offline" : "reconnecting…";
    el.title =
      s === "live"
        ? "Receiving live updates"
        : "Live updates interrupted; reconnecting with backoff";
  });
  return el;
}

function shell(me: Me): void {
  const link = (section: string, href: string, text: string) =>
    h("a", { href, "data-section": section }, text);
  main = h("main", { id: "main" });
  replace(
    root,
    h(
      "header",
      { class: "topbar" },
      h("a", { class: "brand", href: "#/" }, logo(), "hashmesh"),
      h(
        "nav",
        null,
        link("overview", "#/", "Overview"),
        link("devices", "#/devices", "Devices"),
        link("sitemap", "#/sitemap", "Site map"),
        h("a", { href: "/api/docs", target: "_blank", rel: "noopener" }, "API"),
      ),
      h(
        "div",
        { class: "top-right" },
        liveBadge(),
        themeButton(),
        h("span", { class: "user", title: `Role: ${me.role}` }, me.username),
        h(
          "button",
          {
            class: "btn ghost",
            type: "button",
            "data-testid": "logout",
            onclick: async () => {
              await api.logout().catch(() => undefined);
              signedOut("");
            },
          },
          "Sign out",
        ),
      ),
    ),
    main,
  );
  mount();
}

function signedIn(me: Me): void {
  user = me;
  live.start();
  shell(me);
}

function signedOut(message: string): void {
  user = null;
  live.stop();
  page?.destroy?.();
  page = null;
  main = null;
  replace(root, loginPage(message, signedIn).el);
}

async function boot(): Promise<void> {
  initTheme();
  api.onUnauthorized(() => {
    if (user) signedOut("Your session has ended. Sign in again.");
  });
  window.addEventListener("hashchange", mount);
  const start = location();
  if (start.parts.length === 0 || start.parts[0] === "overview") prefetch(start.query.get("range") ?? "1h");
  try {
    const me = await api.me();
    if (me) signedIn(me);
    else signedOut("");
  } catch (e) {
    signedOut(`The node did not answer: ${e instanceof Error ? e.message : String(e)}`);
  }
}

void boot();
