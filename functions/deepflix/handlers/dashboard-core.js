// The dashboard's plumbing: requests with the token, error toasts, confirmations, live streams.
"use strict";
const $ = (s, el = document) => el.querySelector(s);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const TERMINAL = ["succeeded", "failed", "cancelled"];
const short = (id) => String(id ?? "").slice(0, 8);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TOKEN_KEY = "deepflix.token";
const token = () => localStorage.getItem(TOKEN_KEY) || "";

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// Every request names its client: a write without that header (or a JSON body) is refused,
// as another site's page could send it (handlers/guard.py).
function headers(extra = {}) {
  const h = { "X-DeepFlix-Client": "dashboard", ...extra };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

// The error envelope's message, with what a person can do about 401, 403 and 429.
async function errorOf(res) {
  let env = null;
  try { env = (await res.json()).error; } catch { /* not JSON: a proxy's page */ }
  const msg = env?.message || res.statusText || "no message";
  const code = env?.code || `http_${res.status}`;
  if (res.status === 401) return new ApiError(401, code, `Not signed in (401): ${msg}. Set an API token with the Token button.`);
  if (res.status === 403) return new ApiError(403, code, `Not allowed (403): ${msg}. This token may not do that.`);
  if (res.status === 429) {
    const after = res.headers.get("Retry-After");
    return new ApiError(429, code, `Too many requests (429): ${msg}.${after ? ` Try again in ${after} s.` : ""}`);
  }
  return new ApiError(res.status, code, `${msg} (${res.status})`);
}

async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  let res;
  try { res = await fetch(path, init); } catch {
    throw new ApiError(0, "network", "Cannot reach the server.");
  }
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return null;
  return (res.headers.get("Content-Type") || "").includes("json") ? res.json() : res.text();
}

function toast(text, kind = "error") {
  // The same message already showing (a stream refused at each reconnect) is not repeated.
  if ([...document.querySelectorAll(".toast span")].some((s) => s.textContent === text)) return;
  const el = document.createElement("div");
  el.className = `toast ${kind}`;
  el.setAttribute("role", kind === "error" ? "alert" : "status");
  el.innerHTML = `<span></span><button type="button" aria-label="Dismiss">✕</button>`;
  el.firstChild.textContent = text;
  el.lastChild.onclick = () => el.remove();
  placeToasts();
  $("#toasts").append(el);
  setTimeout(() => el.remove(), kind === "error" ? 15000 : 6000);
}

// A modal dialog makes the rest of the page inert and dim: toasts live in the open dialog
// (the confirmation first, the one on top), back in the page once none is open.
function placeToasts(closing = null) {
  const box = $("#toasts");
  const open = [...document.querySelectorAll("dialog[open]")].filter((d) => d !== closing);
  const host = open.find((d) => d.id === "confirm") || open.pop() || document.body;
  if (box.parentElement !== host) host.append(box);
}
document.addEventListener("close", (e) => { if (e.target.tagName === "DIALOG") placeToasts(e.target); }, true);

// Runs an action; a failure is never silent: a toast says what failed and why.
async function act(label, fn) {
  try { return { ok: true, value: await fn() }; } catch (e) {
    toast(`${label} failed: ${e.message}`);
    return { ok: false };
  }
}

// A modal question; Escape or "Keep it" answers no.
function confirmAction(text, okLabel) {
  const d = $("#confirm");
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = okLabel;
  d.returnValue = "";
  d.showModal();
  return new Promise((resolve) => d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true }));
}

// Server-Sent Events read through fetch, not EventSource: EventSource cannot send the
// Authorization header, and cannot tell a missing route (404: poll instead) from an outage.
// `on.event(name, data)`, `on.open()`, `on.lost(err)`, `on.missing()`; `on.done()` says whether
// a stream that ended is finished for good (a movie's ends after its terminal state).
function openStream(path, on) {
  let stopped = false, ctrl = null, delay = 1000;
  const stale = 40000;  // heartbeats come every 15 s: silence this long is a lost connection
  (async () => {
    while (!stopped) {
      ctrl = new AbortController();
      let res = null;
      try {
        res = await fetch(path, { headers: headers({ Accept: "text/event-stream" }), signal: ctrl.signal, cache: "no-store" });
      } catch { /* refused or reset: the server is gone for now */ }
      if (stopped) return;
      if (res && (res.status === 404 || res.status === 405)) { on.missing(); return; }
      if (res && res.ok) {
        on.open(); delay = 1000;
        try { await readEvents(res.body, on.event, ctrl, stale); } catch { /* aborted or cut */ }
        if (stopped || (on.done && on.done())) return;
        on.lost(null);
      } else {
        on.lost(res ? await errorOf(res) : null);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 8000);
    }
  })();
  return { stop() { stopped = true; if (ctrl) ctrl.abort(); } };
}

async function readEvents(body, onEvent, ctrl, stale) {
  const reader = body.getReader(), decoder = new TextDecoder();
  let buffer = "", timer = setTimeout(() => ctrl.abort(), stale);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      clearTimeout(timer); timer = setTimeout(() => ctrl.abort(), stale);
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        let name = "message", data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (!data.length) continue;  // a heartbeat comment
        let parsed; try { parsed = JSON.parse(data.join("\n")); } catch { continue; }
        onEvent(name, parsed);
      }
    }
  } finally { clearTimeout(timer); }
}

// Painting changes only: an update that changes nothing leaves the element alone, and one that
// does gives the focus back to the same control, so live updates never throw a keyboard user off.
const painted = new WeakMap();
function setHtml(el, html) {
  if (!el || painted.get(el) === html) return;
  painted.set(el, html);
  const active = document.activeElement;
  const key = active && active !== el && el.contains(active) ? focusKey(active) : null;
  el.innerHTML = html;
  const again = key && el.querySelector(key);
  if (again) again.focus();
}
function focusKey(a) {
  if (a.id) return `#${CSS.escape(a.id)}`;
  const [k, v] = Object.entries(a.dataset)[0] || [];
  return k ? `[data-${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}="${String(v).replace(/["\\]/g, "\\$&")}"]` : null;
}

function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}
const secs = (x) => x == null ? "–" : x < 90 ? `${Number(x).toFixed(x < 10 ? 2 : 0)} s` : `${Math.round(x / 60)} min`;

// The token dialog: kept in localStorage, sent as Bearer from the next request on.
function setupToken() {
  const d = $("#token"), form = $("#token-form");
  $("#token-open").onclick = () => { form.token.value = token(); d.showModal(); };
  d.addEventListener("close", () => {
    if (d.returnValue === "save") localStorage.setItem(TOKEN_KEY, form.token.value.trim());
    if (d.returnValue === "clear") localStorage.removeItem(TOKEN_KEY);
    if (d.returnValue === "save" || d.returnValue === "clear") { paintToken(); live.restart(); }
  });
  paintToken();
}
function paintToken() { $("#token-open").textContent = token() ? "Token ✓" : "Token"; }

document.addEventListener("click", (e) => {
  const closer = e.target.closest("[data-close]");
  if (closer) closer.closest("dialog").close();
});
