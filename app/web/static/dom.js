// Small DOM helpers and the words the pages show for times, months and callers. Text is
// always set with textContent, never innerHTML: everything on these screens (names,
// addresses, narratives) is data, never markup.

export const $ = (id) => document.getElementById(id);

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// Keep one element per key in `container`, in the order of `items`: existing elements are
// updated in place (focus and ticked boxes survive a re-render), new ones created, gone ones
// removed, and nodes only moved when the order really changed.
export function keyed(container, items, key, create, update) {
  const existing = new Map();
  for (const child of Array.from(container.children)) {
    if (child.dataset.key !== undefined) existing.set(child.dataset.key, child);
    else child.remove();
  }
  const wanted = new Set();
  items.forEach((item, index) => {
    const k = String(key(item));
    wanted.add(k);
    let el = existing.get(k);
    if (!el) {
      el = create(item);
      el.dataset.key = k;
    }
    update(el, item);
    const at = container.children[index];
    if (at !== el) container.insertBefore(el, at || null);
  });
  for (const [k, el] of existing) if (!wanted.has(k)) el.remove();
}

export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

export function duration(fromIso, toIso) {
  if (!fromIso) return "";
  const from = Date.parse(fromIso);
  const to = toIso ? Date.parse(toIso) : Date.now();
  let s = Math.max(0, Math.floor((to - from) / 1000));
  const hours = Math.floor(s / 3600);
  s -= hours * 3600;
  const minutes = Math.floor(s / 60);
  const seconds = s - minutes * 60;
  const mm = hours ? String(minutes).padStart(2, "0") : String(minutes);
  return (hours ? hours + ":" : "") + mm + ":" + String(seconds).padStart(2, "0");
}

// Clocks that run: every second, each element matching `selector` that has a start
// (data-from) and no end (data-to) shows the time since its start.
export function runClocks(selector) {
  window.setInterval(() => {
    for (const el of document.querySelectorAll(selector)) {
      if (el.dataset.from && !el.dataset.to) setText(el, duration(el.dataset.from, null));
    }
  }, 1000);
}

export function date(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric" });
}

export function time(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

// "2026-03" -> "Mar 2026" (or "March 2026" with length "long").
export function monthLabel(month, length = "short") {
  if (!month) return "";
  const [year, number] = month.split("-").map(Number);
  return new Date(Date.UTC(year, number - 1, 1)).toLocaleDateString("en-GB", { month: length, year: "numeric", timeZone: "UTC" });
}

export function callerOf(call) {
  const caller = call.caller || {};
  if (typeof caller === "string") return { number: caller, presentation: call.presentation };
  return { number: caller.number, presentation: caller.presentation || call.presentation };
}

// The caller as a call's card, tab or board row names them.
export function callerText(call) {
  const { number, presentation } = callerOf(call);
  if (presentation === "withheld") return "Withheld";
  return number || "Unavailable";
}

export function humanise(value) {
  if (!value) return "";
  const text = String(value).replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// Severity is shown as a word and a symbol as well as a colour (never colour alone).
export const SEVERITY = {
  // A glyph every desktop font has (U+26D4 is missing from many without an emoji font).
  critical: { rank: 4, icon: "\u25A0", label: "Critical" },
  high: { rank: 3, icon: "\u25B2", label: "High" },
  medium: { rank: 2, icon: "\u25C6", label: "Medium" },
  low: { rank: 1, icon: "\u25BD", label: "Low" },
  info: { rank: 0, icon: "\u2139", label: "Info" },
};

export function severityBadge(severity) {
  const s = SEVERITY[severity] || SEVERITY.info;
  return h("span", { class: `sev sev-${severity}` },
    h("span", { class: "sev-icon", "aria-hidden": "true" }, s.icon), " ", s.label);
}

export function bySeverity(a, b) {
  const ra = (SEVERITY[a.severity] || SEVERITY.info).rank;
  const rb = (SEVERITY[b.severity] || SEVERITY.info).rank;
  return rb - ra || Number(a.alert_id) - Number(b.alert_id);
}

// Officer-safety alerts go first on every screen, under their own heading (issue 13).
export function isOfficerSafety(a) {
  return a.category === "officer_safety" || a.kind === "officer_safety";
}
