// Live updates: one WebSocket to `/api/v1/ws` while signed in, reconnecting with exponential
// backoff and jitter when the node restarts or the network drops, fanning frames out to pages.

import type { DeviceRow, FleetSummary, LiveFrame } from "./types";

/** Connection state, shown in the header. */
export type LiveState = "connecting" | "live" | "reconnecting" | "off";

type Listener<T> = (x: T) => void;

const summaryListeners = new Set<Listener<FleetSummary>>();
const deviceListeners = new Set<Listener<DeviceRow[]>>();
const stateListeners = new Set<Listener<LiveState>>();

let ws: WebSocket | null = null;
let wanted = false;
let attempt = 0;
let timer: ReturnType<typeof setTimeout> | undefined;
let state: LiveState = "off";

function setState(s: LiveState): void {
  state = s;
  stateListeners.forEach((f) => f(s));
}

/** Milliseconds before reconnect attempt `n`: 0.5 s doubling to 30 s, ±25 % jitter. */
export function backoffMs(n: number): number {
  const base = Math.min(30_000, 500 * 2 ** n);
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

function open(): void {
  const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
  const sock = new WebSocket(`${proto}//${window.location.host}/api/v1/ws`);
  ws = sock;
  setState(attempt === 0 ? "connecting" : "reconnecting");
  sock.onopen = () => {
    attempt = 0;
    setState("live");
  };
  sock.onmessage = (ev) => {
    if (typeof ev.data !== "string") return;
    let frame: LiveFrame;
    try {
      frame = JSON.parse(ev.data) as LiveFrame;
    } catch {
      return; // a frame we cannot read is skipped; the next summary replaces it
    }
    if (frame.type === "summary") summaryListeners.forEach((f) => f(frame.data));
    else if (frame.type === "devices") deviceListeners.forEach((f) => f(frame.data));
  };
  sock.onclose = () => {
    if (ws !== sock) return;
    ws = null;
    if (!wanted) {
      setState("off");
      return;
    }
    setState("reconnecting");
    timer = setTimeout(open, backoffMs(attempt++));
  };
}

/** Opens the connection (after sign-in). */
export function start(): void {
  if (wanted) return;
  wanted = true;
  attempt = 0;
  open();
}

/** Closes the connection (on sign-out). */
export function stop(): void {
  wanted = false;
  if (timer !== undefined) clearTimeout(timer);
  const s = ws;
  ws = null;
  s?.close();
  setState("off");
}

function sub<T>(set: Set<Listener<T>>, f: Listener<T>): () => void {
  set.add(f);
  return () => set.delete(f);
}

/** Every fleet summary as it arrives; returns the unsubscribe function. */
export const onSummary = (f: Listener<FleetSummary>) => sub(summaryListeners, f);
/** Rows of devices whose status changed; returns the unsubscribe function. */
export const onDevices = (f: Listener<DeviceRow[]>) => sub(deviceListeners, f);
/** Connection state changes (called at once with the current one). */
export function onState(f: Listener<LiveState>): () => void {
  f(state);
  return sub(stateListeners, f);
}
