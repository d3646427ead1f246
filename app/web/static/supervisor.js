// The supervisor's board: every call not ended (flagged first) with its handler, state,
// duration and flags; filters; a call's detail with its alerts and acknowledgements; and
// each handler's current status. Live over the WebSocket (the `supervisors` channel).

import { acknowledge, acknowledgedIn, alertItem, drawAlert, mergeAlert, raisedIn } from "./alerts.js";
import { api } from "./api.js";
import {
  $, SEVERITY, bySeverity, callerText, duration, h, humanise, isOfficerSafety, keyed, replaceChildren, runClocks,
  setText, severityBadge, time,
} from "./dom.js";
import { LiveFeed, bindStatus } from "./live.js";

const root = $("supervisor");
const selected = root.dataset.call ? Number(root.dataset.call) : null;

const calls = new Map(); // id -> { call, alerts: Map }
let handlers = []; // [{id, name}]
const FLAG_RANK = SEVERITY.medium.rank;

function entry(id) {
  let item = calls.get(id);
  if (!item) {
    item = { call: { id }, alerts: new Map() };
    calls.set(id, item);
  }
  return item;
}

function applyAlert(callId, alert) {
  mergeAlert(entry(callId).alerts, alert);
}

function applyCall(id, view, alerts) {
  const item = entry(id);
  const ended = item.call.state === "ended";
  item.call = { ...item.call, ...view, id };
  if (ended) item.call.state = "ended";
  (alerts || []).forEach((a) => applyAlert(id, a));
  // The board shows live calls only: forget ended ones (a shift's worth would pile up),
  // except the one whose detail is open.
  if (item.call.state === "ended" && id !== selected) calls.delete(id);
}

function flagged(item) {
  if (item.call.flagged) return true;
  return [...item.alerts.values()].some((a) => (SEVERITY[a.severity] || SEVERITY.info).rank >= FLAG_RANK);
}

function onMessage(message) {
  if (message.call_id === null || message.call_id === undefined) return;
  const callId = Number(message.call_id);
  const data = message.data || {};
  if (message.type.startsWith("call.")) {
    const state = message.type.slice(5);
    applyCall(callId, { ...(data.call || {}), state: (data.call && data.call.state) || state }, data.alerts);
  } else if (message.type === "alert.raised") {
    raisedIn(data).forEach((a) => applyAlert(callId, a));
  } else if (message.type === "alert.acknowledged") {
    applyAlert(callId, acknowledgedIn(data));
  } else {
    return;
  }
  render();
}

async function snapshot() {
  const body = await api("GET", "/web/api/board");
  handlers = body.handlers || [];
  const live = new Set();
  for (const item of body.calls) {
    const { alerts, summary, ...view } = item;
    applyCall(item.id, view, alerts);
    live.add(item.id);
  }
  // Calls we were showing that ended while we were away.
  for (const [id, item] of calls) {
    if (live.has(id)) continue;
    if (id === selected) item.call.state = "ended";
    else calls.delete(id);
  }
  if (selected && !live.has(selected)) {
    try {
      const detail = await api("GET", `/web/api/calls/${selected}/screen`);
      applyCall(selected, detail.screen.call, detail.screen.alerts);
    } catch (err) {
      replaceChildren($("detail"), h("p", { class: "form-error" }, `Call ${selected}: ${err.message}`));
    }
  }
  render();
  return body.as_of;
}

function topSeverity(item) {
  const alerts = [...item.alerts.values()].sort(bySeverity);
  return alerts.length ? alerts[0].severity : null;
}

function render() {
  renderFilters();
  renderBoard();
  renderDetail();
  renderHandlers();
}

function fillSelect(select, values, label) {
  const current = select.value;
  const options = [h("option", { value: "" }, label), ...values.map(([value, text]) => h("option", { value }, text))];
  const signature = values.map(([v]) => v).join("|");
  if (select.dataset.signature !== signature) {
    select.replaceChildren(...options);
    select.dataset.signature = signature;
    select.value = values.some(([v]) => v === current) ? current : "";
  }
}

function renderFilters() {
  const ids = new Map(handlers.map((s) => [s.id, s.name]));
  for (const item of calls.values()) if (item.call.handler_id && !ids.has(item.call.handler_id)) ids.set(item.call.handler_id, null);
  fillSelect($("f-handler"), [...ids.entries()].sort().map(([id, name]) => [id, name ? `${id} \u2014 ${name}` : id]), "All handlers");
  const lines = new Set([...calls.values()].map((i) => i.call.called).filter(Boolean));
  fillSelect($("f-line"), [...lines].sort().map((l) => [l, l]), "All lines");
}

function visibleCalls() {
  const onlyFlagged = $("f-flagged").checked;
  const handler = $("f-handler").value;
  const line = $("f-line").value;
  return [...calls.values()]
    .filter((i) => i.call.state && i.call.state !== "ended") // state unknown: a late message
    .filter((i) => !onlyFlagged || flagged(i))
    .filter((i) => !handler || i.call.handler_id === handler)
    .filter((i) => !line || i.call.called === line)
    .sort((a, b) => (flagged(b) - flagged(a))
      || ((SEVERITY[topSeverity(b)] || { rank: -1 }).rank - (SEVERITY[topSeverity(a)] || { rank: -1 }).rank)
      || String(a.call.offered_at || "").localeCompare(String(b.call.offered_at || "")));
}

function renderBoard() {
  const items = visibleCalls();
  $("board-empty").hidden = items.length > 0;
  setText($("board-count"), `${items.length} shown`);
  keyed($("board-rows"), items, (i) => i.call.id, (i) => h("tr", {},
    h("th", { scope: "row" }, h("a", { href: `/supervisor/calls/${i.call.id}` }, `Call ${i.call.id}`)),
    h("td", { class: "flags" }), h("td", { class: "state" }), h("td", { class: "handler" }),
    h("td", { class: "line" }), h("td", { class: "queue" }), h("td", { class: "duration" })), (tr, i) => {
    const isFlagged = flagged(i);
    tr.dataset.callId = i.call.id;
    tr.dataset.flagged = isFlagged ? "true" : "false";
    tr.className = (isFlagged ? "flagged " : "") + (i.call.id === selected ? "selected" : "");
    if (i.call.id === selected) tr.setAttribute("aria-current", "true"); else tr.removeAttribute("aria-current");
    const alerts = [...i.alerts.values()];
    const open = alerts.filter((a) => !a.acknowledged_at).length;
    const top = topSeverity(i);
    replaceChildren(tr.querySelector(".flags"), alerts.length
      ? [severityBadge(top), ` ${alerts.length} alert${alerts.length > 1 ? "s" : ""}`, open ? `, ${open} not acknowledged` : ", all acknowledged"]
      : [h("span", { class: "muted" }, "None")]);
    setText(tr.querySelector(".state"), humanise(i.call.state));
    setText(tr.querySelector(".handler"), i.call.handler_id || "\u2014");
    setText(tr.querySelector(".line"), i.call.called || "\u2014");
    setText(tr.querySelector(".queue"), i.call.queue || "\u2014");
    const d = tr.querySelector(".duration");
    d.dataset.from = i.call.offered_at || "";
    setText(d, duration(i.call.offered_at, i.call.ended_at));
  });
}

async function acknowledgeAlert(alertId, button) {
  const alert = await acknowledge(alertId, button);
  if (!alert) return;
  if (selected) applyAlert(selected, alert);
  render();
}

function renderDetail() {
  if (!selected) return;
  const item = calls.get(selected);
  if (!item) return;
  const call = item.call;
  replaceChildren($("detail"),
    h("dl", { class: "facts" },
      h("dt", {}, "Call"), h("dd", {}, String(call.id)),
      h("dt", {}, "State"), h("dd", { id: "detail-state" }, humanise(call.state)),
      h("dt", {}, "Handler"), h("dd", {}, call.handler_id || "\u2014"),
      h("dt", {}, "Caller"), h("dd", {}, callerText(call)),
      h("dt", {}, "Line"), h("dd", {}, call.called || "\u2014"),
      h("dt", {}, "Queue"), h("dd", {}, call.queue || "\u2014"),
      h("dt", {}, "Offered"), h("dd", {}, time(call.offered_at)),
      call.answered_at ? [h("dt", {}, "Answered"), h("dd", {}, time(call.answered_at))] : null,
      call.ended_at ? [h("dt", {}, "Ended"), h("dd", {}, time(call.ended_at))] : null));
  const alerts = [...item.alerts.values()].sort(bySeverity);
  // Officer safety first, under its own heading (issue 13).
  const officer = alerts.filter(isOfficerSafety);
  $("detail-officer-safety").hidden = officer.length === 0;
  renderDetailAlerts($("detail-officer-alerts"), officer);
  renderDetailAlerts($("detail-alerts"), alerts.filter((a) => !isOfficerSafety(a)));
}

function renderDetailAlerts(list, alerts) {
  keyed(list, alerts, (a) => a.alert_id,
    (a) => alertItem((button) => acknowledgeAlert(a.alert_id, button), { summary: true }),
    (el, a) => drawAlert(el, a, { waiting: "\u2716 Not acknowledged yet" }));
}

function renderHandlers() {
  const ids = new Map(handlers.map((s) => [s.id, s.name]));
  for (const item of calls.values()) if (item.call.handler_id && !ids.has(item.call.handler_id)) ids.set(item.call.handler_id, null);
  const rows = [...ids.entries()].sort().map(([id, name]) => {
    const mine = [...calls.values()]
      .filter((i) => i.call.handler_id === id && i.call.state && i.call.state !== "ended");
    const ringing = mine.filter((i) => ["ringing", "offered"].includes(i.call.state));
    const onCall = mine.filter((i) => ["answered", "transferred"].includes(i.call.state));
    let status = "No call";
    if (onCall.length) status = `On call (${onCall.map((i) => "call " + i.call.id).join(", ")})`;
    else if (ringing.length) status = `Ringing (${ringing.map((i) => "call " + i.call.id).join(", ")})`;
    return { id, name, status, busy: mine.length > 0 };
  });
  keyed($("handlers"), rows, (r) => r.id, () => h("li", {}, h("strong", { class: "hid" }), " ", h("span", { class: "hname muted" }), " \u2014 ", h("span", { class: "hstatus" })), (li, r) => {
    li.dataset.handler = r.id;
    li.dataset.busy = r.busy ? "true" : "false";
    setText(li.querySelector(".hid"), r.id);
    setText(li.querySelector(".hname"), r.name || "");
    setText(li.querySelector(".hstatus"), r.status);
  });
}

for (const id of ["f-flagged", "f-handler", "f-line"]) $(id).addEventListener("change", render);
$("filters").addEventListener("submit", (event) => event.preventDefault());

runClocks("#board-rows .duration");

const feed = new LiveFeed({ onMessage, snapshot, onStatus: bindStatus($("conn"), $("main")) });
window.firstcontactFeed = feed;
feed.start();
