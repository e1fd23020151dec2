// The commands an operator can send from the dashboard, with their labels, whether they
// interrupt hashing (and so get a red confirm button), and the capability each one needs.

import type { Command } from "../types";

/** One command the dashboard offers. */
export interface Action {
  key: string;
  label: string;
  command: Command;
  /** Capability name in a device's `capabilities`. */
  capability: string;
  /** Stops or interrupts hashing. */
  disruptive: boolean;
}

/** Every action, in menu order. */
export const ACTIONS: Action[] = [
  { key: "led-on", label: "Locate LED on", command: { command: "locate_led", on: true }, capability: "locate_led", disruptive: false },
  { key: "led-off", label: "Locate LED off", command: { command: "locate_led", on: false }, capability: "locate_led", disruptive: false },
  { key: "wake", label: "Wake", command: { command: "wake" }, capability: "sleep_wake", disruptive: false },
  { key: "sleep", label: "Sleep", command: { command: "sleep" }, capability: "sleep_wake", disruptive: true },
  { key: "mode-low", label: "Power mode: low", command: { command: "set_power_mode", mode: "low" }, capability: "power_mode", disruptive: false },
  { key: "mode-normal", label: "Power mode: normal", command: { command: "set_power_mode", mode: "normal" }, capability: "power_mode", disruptive: false },
  { key: "mode-high", label: "Power mode: high", command: { command: "set_power_mode", mode: "high" }, capability: "power_mode", disruptive: false },
  { key: "restart", label: "Restart mining", command: { command: "restart_mining" }, capability: "restart_mining", disruptive: true },
  { key: "reboot", label: "Reboot", command: { command: "reboot" }, capability: "reboot", disruptive: true },
];

/** Whether a role may send commands. */
export function canCommand(role: string | undefined): boolean {
  return role === "operator" || role === "admin";
}
