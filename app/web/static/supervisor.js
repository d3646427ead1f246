// The supervisor's board (issue 15): every call not ended (flagged first) with its caller
// (masked), top alert, incident type and qualifiers, grade, cues, handler, time since ring and
// a timer on each HIGH or CRITICAL alert nobody acknowledged (escalating past the configured
// time); the calls ended in the last hour that still need a look; the queue's counters; each
// handler's status (warned when holding more than one answered call); and a call's detail
// with evidence, cues, assessment and everyone's acknowledgements. Live over the WebSocket.

import { acknowledge, acknowledgedIn, alertTitle, mergeAlert, raisedIn, unacknowledged } from "./alerts.js";
import { api } from "./api.js";
import { alertCell, gradeText, incidentText, maskedCaller, topAlert } from "./board_rows.js";
import { $, SEVERITY, duration, h, humanise, keyed, replaceChildren, setText, time } from "./dom.js";
import { board as clockState, escalates, isMuted, setMuted, waiting } from "./escalation.js";
import { LiveFeed, bindStatus } from "./live.js";
import { renderDetail } from "./supervisor_detail.js";

const root = $("supervisor");
const selected = root.dataset.call ? Number(root.dataset.call) : null;
const labels = JSON.parse($("labels").textContent || "{}");
const names = {
  incident: (id) => (labels.incident_types || {})[id] || humanise(id),
  marker: (kind) => (labels.markers || {})[kind] || humanise(kind),
  qualifier: (id) => (labels.qualifiers || {})[id] || humanise(id),
};
const HOUR = 60 * 60 * 1000;

const calls = new Map(); // id -> { call, alerts: Map, cues: Set, incident_type, qualifiers, grade, assessed }
const abandoned = new Map(); // call id -> ended_at (ms): abandoned calls of the last hour
let handlers = []; // [{id, name}]
let escalateAfter = 60;
let detail = null; // the selected call's detail read (context, thrive, assessment)
const FLAG_RANK = SEVERITY.medium.rank;
const now = () => clockState.clock.now();

function entry(id) {
  let item = calls.get(id);
  if (!item) {
    item = { call: { id }, alerts: new Map(), cues: new Set(), cueCount: 0, qualifiers: [] };
    calls.set(id, item);
  }
  return item;
}

const applyAlert = (callId, alert) => mergeAlert(entry(callId).alerts, alert);
const isEnded = (item) => item.call.state === "ended";
const answered = (item) => Boolean(item.call.answered_at);

// An ended call stays while it needs a look: an alert nobody acknowledged, or answered and
// not assessed, within the last hour (the open detail's call always stays).
function needsLook(item) {
  if (!isEnded(item)) return false;
  const ended = Date.parse(item.call.ended_at || "");
  if (!ended || now() - ended > HOUR) return false;
  return [...item.alerts.values()].some(unacknowledged) || (answered(item) && !item.assessed);
}

function forgetIfDone(id) {
  const item = calls.get(id);
  if (item && isEnded(item) && !needsLook(item) && id !== selected) calls.delete(id);
}

function applyCall(id, view, alerts) {
  const item = entry(id);
  const ended = isEnded(item);
  item.call = { ...item.call, ...view, id };
  if (ended) item.call.state = "ended";
  (alerts || []).forEach((a) => applyAlert(id, a));
  if (isEnded(item) && !answered(item) && item.call.ended_at) abandoned.set(id, Date.parse(item.call.ended_at));
}

function applyRow(row) {
  const { alerts, summary, incident_type, qualifiers, cue_count, grade, suggested_grade, assessed, ...view } = row;
  applyCall(row.id, view, alerts);
  const item = entry(row.id);
  Object.assign(item, { incident_type, qualifiers: qualifiers || [], grade, assessed: Boolean(assessed) });
  item.cueCount = Math.max(cue_count || 0, item.cues.size);
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
  } else if (message.type === "prompts.updated") {
    const item = entry(callId);
    if ("incident_type" in data) item.incident_type = data.incident_type;
    if (Array.isArray(data.qualifiers)) item.qualifiers = data.qualifiers;
  } else if (message.type === "cue.detected") {
    const item = entry(callId);
    if (data.cue_id && !item.cues.has(data.cue_id)) {
      item.cues.add(data.cue_id);
      item.cueCount += 1;
    }
    if (callId === selected) refreshDetail();
  } else {
    return;
  }
  forgetIfDone(callId);
  render();
}

function takeCounters(counters) {
  abandoned.clear();
  for (const a of (counters && counters.abandoned) || []) abandoned.set(a.id, Date.parse(a.ended_at));
}

async function snapshot() {
  const body = await api("GET", "/web/api/board");
  handlers = body.handlers || [];
  escalateAfter = Number(body.escalate_after_seconds) || escalateAfter;
  const kept = new Set();
  for (const row of [...body.calls, ...(body.recently_ended || [])]) {
    applyRow(row);
    kept.add(row.id);
  }
  takeCounters(body.counters);
  // Calls we were showing that ended (and were dealt with) while we were away; the open
  // detail's call stays, its state re-read just below.
  for (const id of [...calls.keys()]) if (!kept.has(id) && id !== selected) calls.delete(id);
  await refreshDetail();
  render();
  return body.as_of;
}

// The assessed flags and counters move without a message to the board (an assessment is the
// handler's): re-read them now and then, leaving the live state alone.
async function refreshSlow() {
  try {
    const body = await api("GET", "/web/api/board");
    for (const row of [...body.calls, ...(body.recently_ended || [])]) {
      const item = calls.get(row.id);
      if (item) Object.assign(item, { grade: row.grade, assessed: Boolean(row.assessed) });
    }
    takeCounters(body.counters);
    for (const id of [...calls.keys()]) forgetIfDone(id);
    render();
  } catch {
    // The live badge says when the service is away; the next pass tries again.
  }
}

async function refreshDetail() {
  if (!selected) return;
  try {
    const body = await api("GET", `/web/api/calls/${selected}/screen`);
    detail = body.screen;
    applyCall(selected, detail.call, detail.alerts);
    const item = entry(selected);
    if (detail.thrive) {
      item.incident_type = detail.thrive.incident_type;
      item.qualifiers = detail.thrive.qualifiers || [];
      for (const cue of detail.thrive.cues || []) item.cues.add(cue.cue_id);
      item.cueCount = Math.max(item.cueCount, item.cues.size);
    }
    if (detail.assessment) Object.assign(item, { grade: detail.assessment.grade, assessed: true });
  } catch (err) {
    replaceChildren($("detail"), h("p", { class: "form-error" }, `Call ${selected}: ${err.message}`));
  }
}

function announce(item, alert) {
  setText($("escalation-announce"),
    `Call ${item.call.id}: ${SEVERITY[alert.severity].label} alert "${alertTitle(alert)}" not acknowledged for over ${escalateAfter} seconds`);
}

// The timer cell: the longest-waiting HIGH or CRITICAL alert nobody acknowledged.
function drawTimer(tr, item) {
  const cell = tr.querySelector(".timer");
  const due = item.call.state && !isEnded(item) ? waiting([...item.alerts.values()]) : [];
  if (!due.length) {
    tr.dataset.escalated = "false";
    tr.classList.remove("escalated");
    replaceChildren(cell, h("span", { class: "muted" }, "\u2014"));
    return;
  }
  const escalated = due.some((d) => escalates(d, escalateAfter, (a) => announce(item, a)));
  tr.dataset.escalated = escalated ? "true" : "false";
  tr.classList.toggle("escalated", escalated);
  const text = duration(new Date(now() - due[0].waited).toISOString(), new Date(now()).toISOString());
  replaceChildren(cell, h("span", { class: escalated ? "timer-late" : "timer-running" },
    escalated ? h("span", { "aria-hidden": "true" }, "\u26A0 ") : null, text,
    due.length > 1 ? ` (${due.length})` : ""));
}

function render() {
  renderFilters();
  renderCounters();
  renderBoard();
  renderRecent();
  if (selected) renderDetail(calls.get(selected), detail, { names, labels, acknowledgeAlert });
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

function handlerIds() {
  const ids = new Map(handlers.map((s) => [s.id, s.name]));
  for (const item of calls.values()) if (item.call.handler_id && !ids.has(item.call.handler_id)) ids.set(item.call.handler_id, null);
  return ids;
}

function renderFilters() {
  fillSelect($("f-handler"), [...handlerIds().entries()].sort().map(([id, name]) => [id, name ? `${id} \u2014 ${name}` : id]), "All handlers");
  const lines = new Set([...calls.values()].map((i) => i.call.called).filter(Boolean));
  fillSelect($("f-line"), [...lines].sort().map((l) => [l, l]), "All lines");
}

function renderCounters() {
  const queued = [...calls.values()].filter((i) => i.call.state === "offered");
  const oldest = queued.map((i) => Date.parse(i.call.offered_at || "")).filter(Boolean).sort((a, b) => a - b)[0];
  for (const [id, at] of abandoned) if (now() - at > HOUR) abandoned.delete(id);
  setText($("c-waiting"), String(queued.length));
  setText($("c-longest"), oldest ? duration(new Date(oldest).toISOString(), new Date(now()).toISOString()) : "0:00");
  setText($("c-abandoned"), String(abandoned.size));
}

function visibleCalls() {
  const onlyFlagged = $("f-flagged").checked;
  const handler = $("f-handler").value;
  const line = $("f-line").value;
  const rank = (i) => (SEVERITY[(topAlert(i) || {}).severity] || { rank: -1 }).rank;
  return [...calls.values()]
    .filter((i) => i.call.state && !isEnded(i)) // state unknown: a late message
    .filter((i) => !onlyFlagged || flagged(i))
    .filter((i) => !handler || i.call.handler_id === handler)
    .filter((i) => !line || i.call.called === line)
    .sort((a, b) => (flagged(b) - flagged(a)) || (rank(b) - rank(a))
      || String(a.call.offered_at || "").localeCompare(String(b.call.offered_at || "")));
}

function callLink(item) {
  return h("a", { href: `/supervisor/calls/${item.call.id}` }, `Call ${item.call.id}`);
}

function renderBoard() {
  const items = visibleCalls();
  $("board-empty").hidden = items.length > 0;
  setText($("board-count"), `${items.length} shown`);
  keyed($("board-rows"), items, (i) => i.call.id, (i) => h("tr", {},
    h("th", { scope: "row" }, callLink(i)), h("td", { class: "caller" }), h("td", { class: "line" }), h("td", { class: "flags" }),
    h("td", { class: "incident" }), h("td", { class: "grade" }), h("td", { class: "cues" }), h("td", { class: "state" }),
    h("td", { class: "handler" }), h("td", { class: "duration" }), h("td", { class: "timer" })), (tr, i) => {
    const isFlagged = flagged(i);
    tr.dataset.callId = i.call.id;
    tr.dataset.flagged = isFlagged ? "true" : "false";
    tr.classList.toggle("flagged", isFlagged);
    tr.classList.toggle("selected", i.call.id === selected);
    if (i.call.id === selected) tr.setAttribute("aria-current", "true"); else tr.removeAttribute("aria-current");
    setText(tr.querySelector(".caller"), maskedCaller(i.call));
    replaceChildren(tr.querySelector(".flags"), alertCell(i));
    setText(tr.querySelector(".incident"), incidentText(i, names));
    setText(tr.querySelector(".grade"), gradeText(i));
    setText(tr.querySelector(".cues"), String(i.cueCount || 0));
    setText(tr.querySelector(".line"), i.call.called || "\u2014");
    setText(tr.querySelector(".state"), humanise(i.call.state));
    setText(tr.querySelector(".handler"), i.call.handler_id || "\u2014");
    const d = tr.querySelector(".duration");
    const rang = i.call.ringing_at || i.call.offered_at || "";
    d.dataset.from = rang;
    setText(d, rang ? duration(rang, null) : "");
    drawTimer(tr, i);
  });
}

function renderRecent() {
  const items = [...calls.values()].filter(needsLook)
    .sort((a, b) => String(b.call.ended_at).localeCompare(String(a.call.ended_at)));
  $("recent-empty").hidden = items.length > 0;
  keyed($("recent-rows"), items, (i) => i.call.id, (i) => h("tr", {},
    h("th", { scope: "row" }, callLink(i)), h("td", { class: "caller" }), h("td", { class: "flags" }),
    h("td", { class: "handler" }), h("td", { class: "ended" }), h("td", { class: "needs" })), (tr, i) => {
    tr.dataset.callId = i.call.id;
    setText(tr.querySelector(".caller"), maskedCaller(i.call));
    replaceChildren(tr.querySelector(".flags"), alertCell(i));
    setText(tr.querySelector(".handler"), i.call.handler_id || (answered(i) ? "\u2014" : "Abandoned"));
    setText(tr.querySelector(".ended"), time(i.call.ended_at));
    const open = [...i.alerts.values()].filter(unacknowledged).length;
    const needs = [];
    if (open) needs.push(`${open} alert${open > 1 ? "s" : ""} not acknowledged`);
    if (answered(i) && !i.assessed) needs.push("no assessment");
    setText(tr.querySelector(".needs"), needs.join("; "));
  });
}

async function acknowledgeAlert(alertId, button) {
  const alert = await acknowledge(alertId, button);
  if (!alert) return;
  if (selected) applyAlert(selected, alert);
  render();
}

function renderHandlers() {
  const holding = [];
  const rows = [...handlerIds().entries()].sort().map(([id, name]) => {
    const mine = [...calls.values()].filter((i) => i.call.handler_id === id && i.call.state && !isEnded(i));
    const ringing = mine.filter((i) => ["ringing", "offered"].includes(i.call.state));
    const onCall = mine.filter((i) => ["answered", "transferred"].includes(i.call.state));
    let status = "No call";
    if (onCall.length) status = `On call (${onCall.map((i) => "call " + i.call.id).join(", ")})`;
    else if (ringing.length) status = `Ringing (${ringing.map((i) => "call " + i.call.id).join(", ")})`;
    if (onCall.length > 1) holding.push(`${id} holds ${onCall.length} answered calls`);
    return { id, name, status, busy: mine.length > 0, many: onCall.length > 1, count: onCall.length };
  });
  keyed($("handlers"), rows, (r) => r.id, () => h("li", {}, h("strong", { class: "hid" }), " ", h("span", { class: "hname muted" }), " \u2014 ", h("span", { class: "hstatus" }), h("span", { class: "hwarn warn" })), (li, r) => {
    li.dataset.handler = r.id;
    li.dataset.busy = r.busy ? "true" : "false";
    li.dataset.holding = String(r.count);
    setText(li.querySelector(".hid"), r.id);
    setText(li.querySelector(".hname"), r.name || "");
    setText(li.querySelector(".hstatus"), r.status);
    setText(li.querySelector(".hwarn"), r.many ? ` \u26A0 holding ${r.count} answered calls` : "");
  });
  const warning = $("holding-warning");
  warning.hidden = holding.length === 0;
  setText(warning, holding.length ? `\u26A0 ${holding.join("; ")}` : "");
}

for (const id of ["f-flagged", "f-handler", "f-line"]) $(id).addEventListener("change", render);
$("filters").addEventListener("submit", (event) => event.preventDefault());

const sound = $("sound");
setMuted(localStorage.getItem("fc-board-muted") === "true");
function drawSound() {
  sound.setAttribute("aria-pressed", isMuted() ? "false" : "true");
  setText(sound, `Escalation sound: ${isMuted() ? "off" : "on"}`);
}
sound.addEventListener("click", () => {
  setMuted(!isMuted());
  localStorage.setItem("fc-board-muted", String(isMuted()));
  drawSound();
});
drawSound();

// Every second: the clocks, the timers (escalating as they pass the threshold), the counters
// and the recently-ended list (a call leaves it an hour after it ended).
window.setInterval(() => {
  for (const id of [...calls.keys()]) forgetIfDone(id);
  render();
}, 1000);
window.setInterval(refreshSlow, 30000);

const feed = new LiveFeed({ onMessage, snapshot, onStatus: bindStatus($("conn"), $("main")) });
window.firstcontactFeed = feed;
window.firstcontactBoard = clockState;
feed.start();
