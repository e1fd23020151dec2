// A confirmation dialog for commands: says what will happen to how many devices and waits for
// an explicit yes. Built on the native <dialog> element (focus trap and Escape for free).

import { h } from "../dom";

/** Asks the operator to confirm; resolves true on "confirm", false on cancel or Escape. */
export function confirmDialog(title: string, body: string, confirmText: string, danger = false): Promise<boolean> {
  return new Promise((resolve) => {
    const ok = h(
      "button",
      { class: `btn ${danger ? "danger" : "primary"}`, value: "ok", "data-testid": "confirm-ok" },
      confirmText,
    );
    const dlg = h(
      "dialog",
      { class: "dialog card", "data-testid": "confirm-dialog" },
      h(
        "form",
        { method: "dialog" },
        h("h2", null, title),
        h("p", null, body),
        h(
          "div",
          { class: "dialog-actions" },
          h("button", { class: "btn ghost", value: "cancel", "data-testid": "confirm-cancel" }, "Cancel"),
          ok,
        ),
      ),
    );
    dlg.addEventListener("close", () => {
      resolve(dlg.returnValue === "ok");
      dlg.remove();
    });
    document.body.appendChild(dlg);
    dlg.showModal();
    ok.focus();
  });
}
