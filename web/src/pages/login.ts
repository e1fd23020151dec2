// The sign-in page: user name and password, with a clear message for a wrong password, for rate
// limiting, and for a node that cannot be reached.

import { ApiError, login } from "../api";
import { h } from "../dom";
import type { Page } from "../router";
import type { Me } from "../types";
import { logo } from "../ui/logo";

/** The sign-in form; calls `done` with the user once the node accepts the password. */
export function loginPage(message: string, done: (me: Me) => void): Page {
  const user = h("input", {
    id: "login-user",
    name: "username",
    autocomplete: "username",
    value: "admin",
    required: true,
  });
  const pass = h("input", {
    id: "login-password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const err = h("p", { class: "form-error", role: "alert", "data-testid": "login-error" }, message);
  const button = h("button", { class: "btn primary", type: "submit" }, "Sign in");
  const form = h(
    "form",
    {
      class: "login card",
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        button.disabled = true;
        err.textContent = "";
        try {
          done(await login(user.value.trim(), pass.value));
        } catch (e) {
          err.textContent =
            e instanceof ApiError && e.status === 401
              ? "Wrong user name or password."
              : e instanceof ApiError && e.status === 429
                ? "Too many attempts. Wait a minute, then try again."
                : `Could not sign in: ${e instanceof Error ? e.message : String(e)}`;
          pass.select();
        } finally {
          button.disabled = false;
        }
      },
    },
    h("h1", null, logo(), "hashmesh"),
    h("p", { class: "muted" }, "Sign in to manage this site's miners."),
    h("label", { for: "login-user" }, "User name"),
    user,
    h("label", { for: "login-password" }, "Password"),
    pass,
    err,
    button,
  );
  setTimeout(() => pass.focus(), 0);
  return { el: h("div", { class: "login-wrap" }, form) };
}
