// The handler's screen: the call ringing at this desk, its alerts with their evidence, the
// household, THRIVE+ prompts and advice, the narrative with the cues found in it, and the
// assessment. Live parts come over the WebSocket (live.js); actions go to the REST API.

import { api } from "./api.js";
import {
  SEVERITY, bySeverity, date, duration, h, humanise, keyed, replaceChildren, setText,
  severityBadge, time,
} from "./dom.js";
import { LiveFeed, bindStatus } from "./live.js";

const root = document.getElementById("handler");
const me = root.dataset.staff;
const pinned = root.dataset.call ? Number(root.dataset.call) : null;
const $ = (id) => document.getElementById(id);

const labels = JSON.parse(document.getElementById("labels").textContent || "{}");
const incidentName = (id) => (labels.incident_types || {})[id] || humanise(id);
const markerName = (kind) => (labels.markers || {})[kind] || humanise(kind);
const screens = new Map(); // call id -> screen state
let current = pinned;

function blankScreen(id) {
  return {
    call: { id, state: null }, // null: not known yet (a message other than call.* came first)
    context: null,
    alerts: new Map(),
    thrive: { incident_type: null, prompts: [], advice: [], cues: [] },
    cues: new Map(),
    ticked: new Set(),
    answered: new Set(),
    narrative: "",
    assessment: null,
    loaded: false,
    loading: false,
    seq: 0, // live messages applied so far
  };
}

function screenFor(id) {
  let screen = screens.get(id);
  if (!screen) {
    screen = blankScreen(id);
    screens.set(id, screen);
  }
  return screen;
}

const ENDED = "ended";

// ---- applying state -------------------------------------------------------------------------

function applyCall(id, data) {
  const screen = screenFor(id);
  const call = data.call || data;
  const merged = { ...screen.call };
  for (const [key, value] of Object.entries(call)) {
    if (["context", "alerts", "call"].includes(key)) continue;
    merged[key] = value;
  }
  merged.id = id;
  if (screen.call.state === ENDED) merged.state = ENDED; // an end is final
  screen.call = merged;
  if (data.context) screen.context = data.context;
  if (Array.isArray(data.alerts)) data.alerts.forEach((a) => applyAlert(id, a));
  return screen;
}

function applyAlert(callId, alert) {
  const screen = screenFor(callId);
  const id = String(alert.alert_id ?? alert.id);
  const previous = screen.alerts.get(id) || {};
  const merged = { ...previous, ...alert, alert_id: id };
  // An acknowledgement is never undone by an older copy of the alert.
  if (previous.acknowledged_at && !alert.acknowledged_at) {
    merged.acknowledged_at = previous.acknowledged_at;
    merged.acknowledged_by = previous.acknowledged_by;
  }
  screen.alerts.set(id, merged);
}

function applyThrive(callId, thrive) {
  const screen = screenFor(callId);
  if (!thrive) return;
  if ("incident_type" in thrive) screen.thrive.incident_type = thrive.incident_type;
  if (Array.isArray(thrive.prompts)) {
    screen.thrive.prompts = thrive.prompts;
    thrive.prompts.filter((p) => p.answered).forEach((p) => screen.answered.add(p.id));
  }
  if (Array.isArray(thrive.advice)) {
    screen.thrive.advice = thrive.advice;
    thrive.advice.filter((a) => a.given).forEach((a) => screen.ticked.add(a.id));
  }
  if (Array.isArray(thrive.cues)) thrive.cues.forEach((c) => applyCue(callId, c));
}

function applyCue(callId, cue) {
  const screen = screenFor(callId);
  const id = String(cue.cue_id ?? cue.id);
  screen.cues.set(id, { ...cue, cue_id: id });
}

function applyScreen(data) {
  const id = Number(data.call.id);
  const screen = applyCall(id, data);
  (data.alerts || []).forEach((a) => applyAlert(id, a));
  applyThrive(id, data.thrive);
  if (data.assessment) screen.assessment = data.assessment;
  if (data.narrative && !screen.narrative) screen.narrative = data.narrative;
  screen.loaded = true;
  return screen;
}

function onMessage(message) {
  const callId = message.call_id !== null && message.call_id !== undefined
    ? Number(message.call_id) : null;
  const data = message.data || {};
  if (callId === null) return;
  const type = message.type;
  screenFor(callId).seq += 1;
  // A message about a call we know nothing of yet (a resumed socket, an ack after a reload):
  // read the call rather than show a blank one.
  if (!type.startsWith("call.") && !screenFor(callId).call.state) loadScreen(callId);
  if (type.startsWith("call.")) {
    const state = type.slice(5);
    applyCall(callId, { ...data, state: data.state || state });
    const screen = screenFor(callId);
    if (!screen.loaded && state !== ENDED) loadScreen(callId);
  } else if (type === "alert.raised") {
    (Array.isArray(data.alerts) ? data.alerts : [data.alert || data]).forEach((a) => applyAlert(callId, a));
  } else if (type === "alert.acknowledged") {
    applyAlert(callId, data.alert || data);
  } else if (type === "prompts.updated") {
    applyThrive(callId, { incident_type: data.incident_type, prompts: data.prompts });
  } else if (type === "advice.updated") {
    applyThrive(callId, { incident_type: data.incident_type, advice: data.advice });
  } else if (type === "cue.detected") {
    (Array.isArray(data.cues) ? data.cues : [data.cue || data]).forEach((c) => applyCue(callId, c));
  } else {
    return;
  }
  chooseCurrent();
  render();
}

// A call's full screen (THRIVE+ state, assessment) when the first message about it arrives.
// A read that overlapped newer messages about the call may predate them: read again then
// (what was published before a read started is in it: publishing follows the commit).
async function loadScreen(callId) {
  const screen = screenFor(callId);
  if (screen.loading) return;
  screen.loading = true;
  try {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const seq = screen.seq;
      const body = await api("GET", `/web/api/calls/${callId}/screen`);
      if (screen.seq !== seq && attempt < 2) continue;
      // Still moving on the last try: take all but the call's state, which messages keep.
      applyScreen(screen.seq !== seq ? { ...body.screen, call: { id: callId } } : body.screen);
      chooseCurrent();
      render();
      return;
    }
  } catch (err) {
    // Not ours (transferred away) or gone: the live messages still show what we know.
  } finally {
    screen.loading = false;
  }
}

async function snapshot() {
  const path = pinned ? `/web/api/calls/${pinned}/screen` : "/web/api/handler/calls";
  const body = await api("GET", path);
  const list = body.screen ? [body.screen] : body.calls;
  const seen = new Set();
  for (const data of list) {
    applyScreen(data);
    seen.add(Number(data.call.id));
  }
  // Calls we showed that are no longer ours or no longer active (missed while away).
  if (!pinned) {
    for (const [id, screen] of screens) {
      if (!seen.has(id) && screen.call.state !== ENDED) screen.call.state = ENDED;
    }
  }
  chooseCurrent();
  render();
  return body.as_of;
}

// The call on screen: the pinned one; else stay on an active call; else the newest active.
function chooseCurrent() {
  if (pinned) {
    current = pinned;
    return;
  }
  const active = [...screens.values()]
    .filter((s) => s.call.state && s.call.state !== ENDED
      && (!s.call.handler_id || s.call.handler_id === me))
    .sort((a, b) => String(b.call.offered_at || "").localeCompare(String(a.call.offered_at || "")));
  const now = screens.get(current);
  if (now && now.call.state !== ENDED && active.includes(now)) return;
  if (active.length) current = active[0].call.id;
  // With nothing active, the last call stays up (its assessment may still be open).
}

// ---- rendering ------------------------------------------------------------------------------

function callerOf(call) {
  const caller = call.caller || {};
  if (typeof caller === "string") return { number: caller, presentation: call.presentation };
  return { number: caller.number, presentation: caller.presentation || call.presentation };
}

function callerText(call) {
  const { number, presentation } = callerOf(call);
  if (presentation === "withheld") return "Withheld";
  return number || "Unavailable";
}

const baseTitle = document.title;

function render() {
  renderCallList();
  const screen = current !== null ? screens.get(current) : null;
  // A ringing call shows in the tab's title too (the window may be behind another).
  const ringing = [...screens.values()].some((s) => s.call.state === "ringing"
    && (!s.call.handler_id || s.call.handler_id === me));
  document.title = ringing ? `\u260E Ringing \u00B7 ${baseTitle}` : baseTitle;
  document.body.dataset.hasCall = screen ? "yes" : "no";
  renderCallCard(screen);
  renderAlerts(screen);
  renderHousehold(screen);
  renderThrive(screen);
  renderAdvice(screen);
  renderCues(screen);
  renderNarrative(screen);
  renderAssessment(screen);
}

function renderCallList() {
  const list = $("call-list");
  const items = [...screens.values()]
    .filter((s) => (s.call.state && s.call.state !== ENDED
      && (!s.call.handler_id || s.call.handler_id === me)) || s.call.id === current)
    .sort((a, b) => String(a.call.offered_at || "").localeCompare(String(b.call.offered_at || "")));
  list.hidden = items.length < 2;
  keyed(list, items, (s) => s.call.id, (s) => {
    const button = h("button", { type: "button", class: "call-tab" });
    button.addEventListener("click", () => {
      current = s.call.id;
      render();
      $("call-card").focus();
    });
    return button;
  }, (el, s) => {
    setText(el, `Call ${s.call.id} · ${humanise(s.call.state)} · ${callerText(s.call)}`);
    el.setAttribute("aria-current", s.call.id === current ? "true" : "false");
  });
}

// Redraw a panel only when what it shows changed: a redraw loses the keyboard focus inside it.
function unchanged(el, ...parts) {
  const signature = JSON.stringify(parts);
  if (el.dataset.signature === signature) return true;
  el.dataset.signature = signature;
  return false;
}

function renderCallCard(screen) {
  const card = $("call-card");
  if (unchanged(card, screen && screen.call, pinned)) return;
  if (!screen) {
    card.dataset.state = "none";
    replaceChildren(card, h("p", { class: "muted" }, "No call at your desk. Calls appear here as they ring."));
    return;
  }
  const call = screen.call;
  card.dataset.state = call.state;
  card.dataset.callId = call.id;
  const stateWord = call.state === "ringing" || call.state === "offered" ? "Ringing" : humanise(call.state);
  const waitEnd = call.answered_at || call.ended_at || null;
  const withheld = !callerOf(call).number;
  replaceChildren(card,
    h("div", { class: "call-head" },
      h("span", { class: `call-state call-state-${call.state}` },
        h("span", { "aria-hidden": "true" }, call.state === ENDED ? "\u25A0 " : "\u260E "), stateWord),
      h("span", { class: "call-id" }, `Call ${call.id}`)),
    h("dl", { class: "facts" },
      h("dt", {}, "Caller"),
      h("dd", { id: "caller-number", class: withheld ? "withheld" : "" }, callerText(call)),
      h("dt", {}, "Line"), h("dd", { id: "call-line" }, call.called || "\u2014"),
      h("dt", {}, "Queue"), h("dd", { id: "call-queue" }, call.queue || "\u2014"),
      h("dt", {}, call.answered_at ? "Waited" : "Waiting"),
      h("dd", { id: "call-wait", "data-from": call.offered_at || call.ringing_at || "", "data-to": waitEnd || "" },
        duration(call.offered_at || call.ringing_at, waitEnd)),
      call.handler_id && call.handler_id !== me ? [h("dt", {}, "Now with"), h("dd", {}, call.handler_id)] : null,
      call.answered_at ? h("dt", {}, "On call") : null,
      call.answered_at ? h("dd", { id: "call-duration", "data-from": call.answered_at, "data-to": call.ended_at || "" },
        duration(call.answered_at, call.ended_at)) : null),
    pinned ? null : h("p", { class: "small" }, h("a", { href: `/handler/calls/${call.id}` }, "Open this call on its own page")));
}

function evidenceIndex(context) {
  const index = new Map();
  if (!context) return index;
  const subjects = [...(context.persons || []), ...(context.households || [])];
  for (const contact of context.number_contacts || []) index.set(contact.id, { contact });
  for (const subject of subjects) {
    for (const contact of subject.contacts || []) index.set(contact.id, { contact });
    for (const marker of subject.markers || []) index.set(marker.id, { marker, subject });
  }
  return index;
}

function evidenceItem(id, index) {
  const found = index.get(id);
  if (found && found.contact) {
    const c = found.contact;
    const parts = [date(c.occurred_at), c.incident_type ? incidentName(c.incident_type) : "Contact"];
    if (c.victim) parts.push("victim");
    if (c.domestic_abuse) parts.push("domestic abuse");
    if (c.outcome) parts.push(humanise(c.outcome).toLowerCase());
    return h("li", { class: "evidence-contact" }, h("time", { datetime: c.occurred_at }, parts[0]), " \u00B7 ", parts.slice(1).join(" \u00B7 "));
  }
  if (found && found.marker) {
    const m = found.marker;
    return h("li", { class: "evidence-marker" }, `Marker: ${markerName(m.kind)}`,
      m.set_at ? ` (set ${date(m.set_at)}${m.active === false ? ", expired" : ""})` : "");
  }
  return h("li", { class: "evidence-ref" }, `Record ${id}`);
}

async function acknowledge(callId, alertId, button) {
  button.disabled = true;
  const status = button.parentElement.querySelector(".ack-status");
  try {
    const body = await api("POST", `/api/v1/alerts/${alertId}/ack`);
    applyAlert(callId, (body && (body.alert || body)) || { alert_id: alertId });
    render();
  } catch (err) {
    button.disabled = false;
    if (status) status.textContent = `Could not acknowledge: ${err.message}`;
  }
}

function renderAlerts(screen) {
  const list = $("alerts");
  const empty = $("alerts-empty");
  const alerts = screen ? [...screen.alerts.values()].sort(bySeverity) : [];
  empty.hidden = alerts.length > 0;
  empty.textContent = screen && screen.context ? "No alerts for this caller." : "No alerts.";
  const index = evidenceIndex(screen && screen.context);
  const callId = screen ? screen.call.id : null;
  keyed(list, alerts, (a) => `${callId}:${a.alert_id}`, (a) => {
    const ack = h("button", { type: "button", class: "ack" }, "Acknowledge");
    ack.addEventListener("click", () => acknowledge(callId, a.alert_id, ack));
    return h("li", { class: "alert", "data-alert-id": a.alert_id, "data-kind": a.kind },
      h("div", { class: "alert-head" }, h("span", { class: "sev-slot" }), h("strong", { class: "alert-title" })),
      h("ul", { class: "reasons" }),
      h("div", { class: "evidence-box" }),
      h("div", { class: "alert-actions" }, ack, h("span", { class: "ack-status", role: "status" })));
  }, (el, a) => {
    el.dataset.severity = a.severity;
    el.className = `alert sev-${a.severity}${a.acknowledged_at ? " acked" : ""}`;
    replaceChildren(el.querySelector(".sev-slot"), severityBadge(a.severity));
    setText(el.querySelector(".alert-title"), a.title || humanise(a.kind));
    replaceChildren(el.querySelector(".reasons"), (a.reasons || []).map((r) => h("li", {}, r)));
    const evidence = a.evidence || [];
    replaceChildren(el.querySelector(".evidence-box"), evidence.length ? [
      h("span", { class: "evidence-label" }, "Evidence (prior contacts and markers):"),
      h("ul", { class: "evidence" }, evidence.map((id) => evidenceItem(id, index))),
    ] : []);
    const button = el.querySelector("button.ack");
    const status = el.querySelector(".ack-status");
    if (a.acknowledged_at) {
      button.hidden = true;
      setText(status, `\u2714 Acknowledged${a.acknowledged_by ? " by " + a.acknowledged_by : ""} at ${time(a.acknowledged_at)}`);
      el.dataset.acknowledged = "true";
    } else {
      button.hidden = false;
      button.setAttribute("aria-label", `Acknowledge: ${a.title || humanise(a.kind)}`);
      el.dataset.acknowledged = "false";
    }
  });
}

function markerList(markers) {
  if (!markers || !markers.length) return null;
  return h("ul", { class: "markers" }, markers.map((m) => h("li", { class: m.active === false ? "marker expired" : "marker" },
    h("span", { "aria-hidden": "true" }, m.active === false ? "\u25CB " : "\u25CF "),
    markerName(m.kind), m.active === false ? " (expired)" : " (active)")));
}

function renderHousehold(screen) {
  const box = $("household");
  const context = screen && screen.context;
  if (unchanged(box, screen ? screen.call.id : null, context)) return;
  if (!screen) { replaceChildren(box); return; }
  if (!context) { replaceChildren(box, h("p", { class: "muted" }, "Looking up the caller\u2026")); return; }
  if (!context.looked_up) {
    replaceChildren(box, h("p", { class: "muted" }, "Number withheld or unavailable: no history lookup."));
    return;
  }
  if (!context.known) {
    replaceChildren(box, h("p", { class: "muted" }, "No previous contact from this number."));
    return;
  }
  const persons = new Map((context.persons || []).map((p) => [p.id, p]));
  const summary = context.number_summary || {};
  replaceChildren(box,
    h("p", { class: "summary" },
      `From this number: ${summary.contacts_365d ?? 0} contacts in 12 months, ${summary.victim_365d ?? 0} as victim.`),
    (context.persons || []).filter((p) => p.relationship === "caller").map((p) => h("div", { class: "person caller" },
      h("h3", {}, p.name || `Person ${p.id}`, h("span", { class: "muted" }, " \u2014 linked to this number")),
      p.date_of_birth ? h("p", { class: "small" }, `Born ${date(p.date_of_birth)}`) : null,
      markerList(p.markers))),
    (context.households || []).map((hh) => h("div", { class: "household" },
      h("h3", {}, hh.address || `Household ${hh.id}`),
      markerList(hh.markers),
      h("ul", { class: "members" }, (hh.member_ids || []).map((mid) => {
        const p = persons.get(mid);
        return h("li", {},
          h("span", { class: "member-name" }, p ? (p.name || `Person ${p.id}`) : `Person ${mid}`),
          p && p.relationship === "caller" ? " (caller)" : p && p.relation ? ` (${p.relation})` : "",
          p ? markerList(p.markers) : null);
      })))));
}

function renderThrive(screen) {
  const select = $("incident-type");
  select.disabled = !screen;
  const incident = screen ? screen.thrive.incident_type : null;
  if (document.activeElement !== select) select.value = incident || "";
  const prompts = screen ? screen.thrive.prompts : [];
  $("prompts-empty").hidden = prompts.length > 0;
  const byElement = new Map();
  for (const p of prompts) {
    if (!byElement.has(p.element)) byElement.set(p.element, []);
    byElement.get(p.element).push(p);
  }
  const groups = [...byElement.entries()].map(([element, items]) => ({ element, items }));
  keyed($("prompts"), groups, (g) => g.element, (g) => h("li", { class: "prompt-group" },
    h("h3", {}, humanise(g.element)), h("ul", { class: "prompt-items" })), (el, g) => {
    keyed(el.querySelector(".prompt-items"), g.items, (p) => p.id, (p) => {
      const box = h("input", { type: "checkbox", id: `prompt-${p.id}`, value: p.id });
      box.addEventListener("change", () => {
        const s = screens.get(current);
        if (!s) return;
        if (box.checked) s.answered.add(p.id); else s.answered.delete(p.id);
      });
      return h("li", {}, box, h("label", { for: `prompt-${p.id}` }));
    }, (li, p) => {
      setText(li.querySelector("label"), p.text);
      li.querySelector("input").checked = screen.answered.has(p.id);
    });
  });
}

function renderAdvice(screen) {
  const advice = screen ? screen.thrive.advice : [];
  $("advice-empty").hidden = advice.length > 0;
  const kinds = ["preservation", "prevention"].map((kind) => ({ kind, items: advice.filter((a) => a.kind === kind) }))
    .filter((g) => g.items.length);
  const other = advice.filter((a) => !["preservation", "prevention"].includes(a.kind));
  if (other.length) kinds.push({ kind: "other", items: other });
  keyed($("advice"), kinds, (g) => g.kind, (g) => h("fieldset", { class: "advice-group" },
    h("legend", {}, g.kind === "preservation" ? "Evidence preservation" : g.kind === "prevention" ? "Crime prevention" : "Advice"),
    h("ul", { class: "advice-items" })), (el, g) => {
    keyed(el.querySelector(".advice-items"), g.items, (a) => a.id, (a) => {
      const box = h("input", { type: "checkbox", id: `advice-${a.id}`, value: a.id, name: "advice" });
      box.addEventListener("change", () => {
        const s = screens.get(current);
        if (!s) return;
        if (box.checked) s.ticked.add(a.id); else s.ticked.delete(a.id);
      });
      return h("li", { "data-advice-id": a.id }, box, h("label", { for: `advice-${a.id}` }));
    }, (li, a) => {
      setText(li.querySelector("label"), a.text);
      li.querySelector("input").checked = screen.ticked.has(a.id);
    });
  });
}

function renderCues(screen) {
  const cues = screen ? [...screen.cues.values()] : [];
  $("cues-empty").hidden = cues.length > 0;
  keyed($("cues"), cues, (c) => `${screen.call.id}:${c.cue_id}`, () => h("li", { class: "cue" },
    h("span", { "aria-hidden": "true" }, "\u26A0 "), h("strong", { class: "cue-strand" }), " ",
    h("span", { class: "cue-matched" })), (el, c) => {
    el.dataset.cueId = c.cue_id;
    el.dataset.strand = c.strand;
    setText(el.querySelector(".cue-strand"), humanise(c.strand));
    setText(el.querySelector(".cue-matched"), (c.matched || []).length ? `\u2014 heard: \u201C${c.matched.join("\u201D, \u201C")}\u201D` : "");
  });
}

let shownNarrativeFor = null;
function renderNarrative(screen) {
  const box = $("narrative");
  box.disabled = !screen;
  if (!screen) { shownNarrativeFor = null; box.value = ""; return; }
  if (shownNarrativeFor !== screen.call.id) {
    box.value = screen.narrative || "";
    shownNarrativeFor = screen.call.id;
  } else if (!box.value && screen.narrative && document.activeElement !== box) {
    box.value = screen.narrative; // restored from the server after the screen was drawn
  }
}

function renderAssessment(screen) {
  const form = $("assessment");
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = !screen;
  const status = $("assessment-status");
  if (screen && screen.assessment) {
    const a = screen.assessment;
    status.dataset.version = a.version;
    setText(status, `\u2714 Assessment version ${a.version} submitted at ${time(a.submitted_at)} (grade: ${humanise(a.grade)}).`);
  } else if (!status.dataset.error) {
    delete status.dataset.version;
    setText(status, "");
  }
}

// ---- actions --------------------------------------------------------------------------------

$("incident-type").addEventListener("change", async (event) => {
  const screen = screens.get(current);
  const value = event.target.value;
  if (!screen || !value) return;
  const status = $("thrive-status");
  status.textContent = "";
  try {
    const body = await api("PUT", `/api/v1/calls/${screen.call.id}/incident-type`, { incident_type: value });
    applyThrive(screen.call.id, body);
    render();
  } catch (err) {
    status.textContent = `Could not set the incident type: ${err.message}`;
  }
});

let narrativeTimer = null;
let narrativeInFlight = Promise.resolve();
$("narrative").addEventListener("input", (event) => {
  const screen = screens.get(current);
  if (!screen) return;
  screen.narrative = event.target.value;
  window.clearTimeout(narrativeTimer);
  const callId = screen.call.id;
  // Debounced: one post after the handler pauses, not one per keystroke.
  narrativeTimer = window.setTimeout(() => postNarrative(callId), 350);
});

function postNarrative(callId) {
  const screen = screens.get(callId);
  if (!screen) return;
  const text = screen.narrative;
  narrativeInFlight = narrativeInFlight.then(async () => {
    const status = $("narrative-status");
    try {
      const body = await api("POST", `/api/v1/calls/${callId}/narrative`, { text, mode: "replace" });
      (body.new_cues || []).forEach((c) => applyCue(callId, c));
      status.textContent = "";
      render();
    } catch (err) {
      status.textContent = `Narrative not saved: ${err.message}`;
    }
  });
}

$("assessment").addEventListener("submit", async (event) => {
  event.preventDefault();
  const screen = screens.get(current);
  if (!screen) return;
  const form = event.target;
  const status = $("assessment-status");
  const incident = screen.thrive.incident_type || $("incident-type").value;
  const elements = {};
  for (const row of form.querySelectorAll("[data-element]")) {
    elements[row.dataset.element] = {
      risk: row.querySelector("select").value,
      text: row.querySelector("textarea").value,
    };
  }
  const rvc = form.querySelector("[name=repeat_victim_check]").value;
  const reason = form.querySelector("[name=grade_reason]").value.trim();
  const payload = {
    incident_type: incident,
    grade: form.querySelector("[name=grade]").value,
    grade_reason: reason || null,
    elements,
    advice_given: [...screen.ticked],
    prompts_answered: [...screen.answered],
    repeat_victim_check: rvc || null,
    victim: form.querySelector("[name=victim]").checked,
  };
  delete status.dataset.error;
  if (!incident) {
    status.dataset.error = "1";
    status.textContent = "Choose the incident type first.";
    return;
  }
  try {
    // Send the narrative as it stands before the record closes.
    window.clearTimeout(narrativeTimer);
    await narrativeInFlight;
    const body = await api("POST", `/api/v1/calls/${screen.call.id}/assessment`, payload);
    screen.assessment = body;
    render();
  } catch (err) {
    status.dataset.error = "1";
    status.textContent = `Not submitted: ${err.explain ? err.explain() : err.message}`;
  }
});

window.setInterval(() => {
  for (const id of ["call-wait", "call-duration"]) {
    const el = $(id);
    if (el && el.dataset.from && !el.dataset.to) setText(el, duration(el.dataset.from, null));
  }
}, 1000);

const feed = new LiveFeed({
  onMessage,
  snapshot,
  onStatus: bindStatus($("conn"), document.getElementById("main")),
});
window.firstcontactFeed = feed; // for the browser tests and a curious developer's console
feed.start();
render();
