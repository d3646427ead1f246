// The handler's screen: the calls at this desk, each with its alerts and their evidence, the
// household, THRIVE+ prompts and advice, the narrative with the cues found in it, and the
// assessment. Live parts come over the WebSocket (live.js); every write goes through the
// page's write queue (queue.js), so nothing typed is lost while the service is away.
//
// Everything the handler enters belongs to one call: the `screens` map holds, per call, the
// narrative, ticks, the assessment form and its problems; the page draws the call on screen
// from it and never leaves one call's values in the form for the next.

import { api } from "./api.js";
import { duration, h, humanise, keyed, replaceChildren, setText, time } from "./dom.js";
import {
  assessmentOf, blankForm, formOf, problemsOf, readForm, showProblems, writeForm,
} from "./form.js";
import { LiveFeed, bindStatus } from "./live.js";
import {
  ENDED, callerText, renderAdvice, renderAlerts, renderCallCard, renderCues, renderHousehold,
  renderThrive,
} from "./panels.js";
import { WriteQueue } from "./queue.js";
import { bindQualifiers, renderQualifiers } from "./qualifiers.js";

const root = document.getElementById("handler");
const me = root.dataset.staff;
const pinned = root.dataset.call ? Number(root.dataset.call) : null;
const $ = (id) => document.getElementById(id);

const labels = JSON.parse(document.getElementById("labels").textContent || "{}");
const names = {
  incident: (id) => (labels.incident_types || {})[id] || humanise(id),
  marker: (kind) => (labels.markers || {})[kind] || humanise(kind),
};
const screens = new Map(); // call id -> screen state
let current = pinned;
let picked = null; // a call the handler chose (a tab): it stays up until a new call rings

const NARRATIVE_PAUSE_MS = 350; // one post after the handler pauses, not one per keystroke
const DRAFT_PAUSE_MS = 600;

function blankScreen(id) {
  return {
    call: { id, state: null }, // null: not known yet (a message other than call.* came first)
    context: null,
    alerts: new Map(),
    thrive: { incident_type: null, qualifiers: [], qualifier_strands: {}, prompts: [], advice: [], cues: [] },
    cues: new Map(),
    ticked: new Set(),
    answered: new Set(),
    narrative: "",
    narrativeDirty: false, // typed, not yet queued
    form: blankForm(),
    formDirty: false,
    draftRevision: 0, // the last draft revision the service confirmed
    deferred: false,
    deferredAt: null,
    conflict: null, // the draft another tab saved (a 409), until the handler decides
    problems: [], // the service's field problems with the last submission
    refusals: {}, // area -> why the service refused a write
    assessment: null,
    dismissed: false, // no longer on the service's list of this desk's calls
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

const mine = (s) => !s.call.handler_id || s.call.handler_id === me;
const isActive = (s) => Boolean(s.call.state) && s.call.state !== ENDED && mine(s);
// Ended at this desk after being answered, and neither assessed nor deferred yet.
const isWrapUp = (s) => s.call.state === ENDED && mine(s) && Boolean(s.call.answered_at)
  && !s.assessment && !s.deferred && !s.dismissed && s.loaded;

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

// `stored`: the service's whole record of the marks (a screen read): the ticks become exactly
// those, then the writes still queued are laid over them (overlayPending).
function applyThrive(callId, thrive, stored = false) {
  const screen = screenFor(callId);
  if (!thrive) return;
  if ("incident_type" in thrive) screen.thrive.incident_type = thrive.incident_type;
  if (Array.isArray(thrive.qualifiers)) {
    screen.thrive.qualifiers = thrive.qualifiers;
    screen.thrive.qualifier_strands = thrive.qualifier_strands || {};
  }
  if (Array.isArray(thrive.prompts)) {
    screen.thrive.prompts = thrive.prompts;
    if (stored) screen.answered = new Set();
    thrive.prompts.filter((p) => p.answered).forEach((p) => screen.answered.add(p.id));
  }
  if (Array.isArray(thrive.advice)) {
    screen.thrive.advice = thrive.advice;
    if (stored) screen.ticked = new Set();
    thrive.advice.filter((a) => a.given).forEach((a) => screen.ticked.add(a.id));
  }
  if (Array.isArray(thrive.cues)) thrive.cues.forEach((c) => applyCue(callId, c));
}

function applyCue(callId, cue) {
  const screen = screenFor(callId);
  const id = String(cue.cue_id ?? cue.id);
  screen.cues.set(id, { ...cue, cue_id: id });
}

function applyDraft(screen, draft) {
  screen.draftRevision = Math.max(screen.draftRevision, draft.revision || 0); // only grows
  screen.deferred = Boolean(draft.deferred);
  screen.deferredAt = draft.deferred_at || null;
}

// What the handler did that the service has not confirmed yet, over what it has stored.
function overlayPending(screen) {
  const id = screen.call.id;
  for (const entry of queue.pending((e) => e.callId === id)) {
    const body = entry.body;
    if (entry.kind === "narrative" && !screen.narrativeDirty) screen.narrative = body.text;
    else if (entry.kind === "incident") screen.thrive.incident_type = body.incident_type;
    else if (entry.kind === "qualifiers") applyThrive(id, body);
    else if (entry.kind === "advice" || entry.kind === "prompts") {
      const set = entry.kind === "advice" ? screen.ticked : screen.answered;
      const on = entry.kind === "advice" ? body.given !== false : body.answered !== false;
      body.ids.forEach((i) => (on ? set.add(i) : set.delete(i)));
    } else if (entry.kind === "draft") {
      if (!screen.formDirty) screen.form = formOf(body);
      screen.deferred = Boolean(body.deferred);
    }
  }
}

function applyScreen(data) {
  const id = Number(data.call.id);
  const screen = applyCall(id, data);
  (data.alerts || []).forEach((a) => applyAlert(id, a));
  applyThrive(id, data.thrive, true);
  if (data.assessment) screen.assessment = data.assessment;
  if (!screen.narrativeDirty && typeof data.narrative === "string") screen.narrative = data.narrative;
  if (data.draft) {
    applyDraft(screen, data.draft);
    if (!screen.formDirty) screen.form = formOf(data.draft);
  }
  overlayPending(screen);
  screen.dismissed = false;
  screen.loaded = true;
  return screen;
}

function onMessage(message) {
  const callId = message.call_id !== null && message.call_id !== undefined
    ? Number(message.call_id) : null;
  const data = message.data || {};
  if (callId === null) return;
  const type = message.type;
  const screen = screenFor(callId);
  screen.seq += 1;
  // A message about a call we know nothing of yet (a resumed socket, an ack after a reload):
  // read the call rather than show a blank one.
  if (!type.startsWith("call.") && !screen.call.state) loadScreen(callId);
  let arrived = null;
  if (type.startsWith("call.")) {
    const state = type.slice(5);
    const wasActive = isActive(screen);
    applyCall(callId, { ...data, state: data.state || state });
    // A call new at this desk takes the main view at once (the ring -> screen path).
    if (!wasActive && isActive(screen)) arrived = callId;
    if (!screen.loaded && state !== ENDED) loadScreen(callId);
  } else if (type === "alert.raised") {
    (Array.isArray(data.alerts) ? data.alerts : [data.alert || data]).forEach((a) => applyAlert(callId, a));
  } else if (type === "alert.acknowledged") {
    applyAlert(callId, data.alert || data);
  } else if (type === "prompts.updated") {
    applyThrive(callId, {
      incident_type: data.incident_type, qualifiers: data.qualifiers,
      qualifier_strands: data.qualifier_strands, prompts: data.prompts,
    });
  } else if (type === "advice.updated") {
    applyThrive(callId, { incident_type: data.incident_type, advice: data.advice });
  } else if (type === "cue.detected") {
    (Array.isArray(data.cues) ? data.cues : [data.cue || data]).forEach((c) => applyCue(callId, c));
  } else {
    return;
  }
  chooseCurrent(arrived);
  render();
}

// A call's full screen (THRIVE+ state, draft, assessment) when the first message about it
// arrives. A read that overlapped newer messages about the call may predate them: read again
// then (what was published before a read started is in it: publishing follows the commit).
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
  // Calls we showed that are no longer at this desk nor due a wrap-up (missed while away).
  if (!pinned) {
    for (const [id, screen] of screens) {
      if (seen.has(id)) continue;
      if (screen.call.state !== ENDED) screen.call.state = ENDED;
      screen.dismissed = true;
    }
  }
  queue.start(); // the state is known: queued writes (a draft's revision) can go now
  chooseCurrent();
  render();
  return body.as_of;
}

// The call on screen: the pinned one; a call new at this desk; else the one chosen or still
// in progress or in wrap-up; else the newest active call, then the oldest wrap-up.
function chooseCurrent(arrived = null) {
  const before = current;
  if (pinned) {
    current = pinned;
  } else if (arrived !== null) {
    current = arrived;
    picked = null;
  } else {
    const now = screens.get(current);
    if (!(now && (isActive(now) || isWrapUp(now) || current === picked))) {
      const all = [...screens.values()];
      const active = all.filter(isActive)
        .sort((a, b) => String(b.call.offered_at || "").localeCompare(String(a.call.offered_at || "")));
      const wrapUp = all.filter(isWrapUp).sort((a, b) => a.call.id - b.call.id);
      if (active.length) current = active[0].call.id;
      else if (wrapUp.length) current = wrapUp[0].call.id;
      // With nothing active or due, the last call stays up (its confirmation on screen).
    }
  }
  if (before !== null && before !== current) flushEdits(before);
}

// ---- writes: one queue, in order, each confirmed by the service --------------------------------

const queue = new WriteQueue({
  storageKey: `firstcontact.writes.${me}`,
  prepare(entry) {
    // A draft is saved over the revision the last confirmed save returned.
    if (entry.kind === "draft") entry.body.revision = screenFor(entry.callId).draftRevision;
  },
  onConfirmed(entry, body) {
    const screen = screenFor(entry.callId);
    delete screen.refusals[entry.area];
    if (entry.kind === "narrative") (body.new_cues || []).forEach((c) => applyCue(entry.callId, c));
    else if (entry.kind === "incident" || entry.kind === "qualifiers") applyThrive(entry.callId, body);
    else if (entry.kind === "draft") applyDraft(screen, body);
    else if (entry.kind === "assessment") {
      screen.assessment = body;
      screen.problems = [];
    }
    chooseCurrent();
    render();
  },
  onRefused(entry, err) {
    const screen = screenFor(entry.callId);
    const why = err.explain ? err.explain() : err.message;
    if (entry.kind === "assessment") {
      screen.problems = problemsOf(err);
      screen.refusals.assessment = `Not submitted: ${err.message}`;
      if (entry.callId === current) {
        render();
        // Take the handler to the first problem (its reason is read out with it).
        const first = document.querySelector("#handler [aria-invalid=true]");
        if (first) {
          first.scrollIntoView({ block: "center" });
          if (first.matches("select, textarea, input")) first.focus({ preventScroll: true });
        }
        return;
      }
    } else if (entry.kind === "draft" && err.status === 409 && err.details) {
      screen.conflict = err.details;
      // Later saves of this form would be refused the same way: the handler decides first.
      queue.discard((e) => e.kind === "draft" && e.callId === entry.callId);
    } else {
      screen.refusals[entry.area] = `Not saved: ${why}`;
      if (entry.kind === "advice" || entry.kind === "prompts") {
        // The service kept its marks: show them as they are.
        const set = entry.kind === "advice" ? screen.ticked : screen.answered;
        const on = entry.kind === "advice" ? entry.body.given !== false : entry.body.answered !== false;
        entry.body.ids.forEach((i) => (on ? set.delete(i) : set.add(i)));
      }
    }
    render();
  },
  onChange: () => renderWrites(),
});

const timers = new Map(); // "<area>:<call id>" -> { timer, write }

function later(area, callId, ms, write) {
  const key = `${area}:${callId}`;
  const pending = timers.get(key);
  if (pending) window.clearTimeout(pending.timer);
  const timer = window.setTimeout(() => { timers.delete(key); write(); }, ms);
  timers.set(key, { timer, write });
  renderWrites();
}

// Queue now what is waiting for a pause in typing (leaving the call, submitting, unloading).
function flushEdits(callId = null) {
  for (const [key, pending] of [...timers]) {
    if (callId !== null && !key.endsWith(`:${callId}`)) continue;
    window.clearTimeout(pending.timer);
    timers.delete(key);
    pending.write();
  }
}

const callPath = (callId, tail) => `/api/v1/calls/${callId}/${tail}`;
const same = (kind, callId) => (e) => e.kind === kind && e.callId === callId;

function writeNarrative(callId) {
  const screen = screenFor(callId);
  screen.narrativeDirty = false;
  queue.push({
    kind: "narrative", area: "narrative", callId, method: "POST", path: callPath(callId, "narrative"),
    body: { text: screen.narrative, mode: "replace" }, // the whole text: a later one supersedes
  }, same("narrative", callId));
}

function writeDraft(callId) {
  const screen = screenFor(callId);
  screen.formDirty = false;
  queue.push({
    kind: "draft", area: "draft", callId, method: "PUT", path: callPath(callId, "draft"),
    body: { ...structuredClone(screen.form), deferred: screen.deferred },
  }, same("draft", callId));
}

function writeMark(callId, kind, id, on) {
  const body = kind === "advice" ? { ids: [id], given: on } : { ids: [id], answered: on };
  queue.push({
    kind, area: kind, callId, method: "POST",
    path: callPath(callId, kind === "advice" ? "advice/given" : "prompts/answered"), body,
  });
}

// ---- rendering ------------------------------------------------------------------------------

const baseTitle = document.title;
const feedStatus = { value: "connecting" };
const showBadge = bindStatus($("conn"), document.getElementById("main"));

// "Live" only when the socket is live and every write is confirmed.
function renderBadge() {
  const pending = queue.size + timers.size;
  const status = feedStatus.value === "live" && pending ? "unsaved" : feedStatus.value;
  showBadge(status, pending);
}

function render() {
  const screen = current !== null ? screens.get(current) : null;
  renderCallList();
  // A ringing call shows in the tab's title too (the window may be behind another).
  const ringing = [...screens.values()].some((s) => s.call.state === "ringing" && mine(s));
  document.title = ringing ? `\u260E Ringing \u00B7 ${baseTitle}` : baseTitle;
  document.body.dataset.hasCall = screen ? "yes" : "no";
  renderCallCard(screen, { me, pinned, wrapUp: Boolean(screen && isWrapUp(screen)) });
  renderAlerts(screen, { names, acknowledge });
  renderHousehold(screen, { names });
  renderThrive(screen, { current, tick });
  renderQualifiers(screen ? screen.thrive : null, current);
  renderAdvice(screen, { tick });
  renderCues(screen);
  renderNarrative(screen);
  renderAssessment(screen);
  renderWrites();
}

function pendingFor(callId, ...areas) {
  const queued = queue.pending((e) => e.callId === callId && areas.includes(e.area));
  const typing = areas.filter((a) => timers.has(`${a}:${callId}`));
  return { count: queued.length + typing.length, error: queued.map((e) => e.error).find(Boolean) };
}

function renderCallList() {
  const list = $("call-list");
  const items = [...screens.values()]
    .filter((s) => isActive(s) || isWrapUp(s) || s.call.id === current)
    .sort((a, b) => String(a.call.offered_at || "").localeCompare(String(b.call.offered_at || "")));
  list.hidden = items.length < 2;
  keyed(list, items, (s) => s.call.id, (s) => {
    const button = h("button", { type: "button", class: "call-tab" });
    button.addEventListener("click", () => {
      picked = s.call.id;
      const before = current;
      current = s.call.id;
      if (before !== null && before !== current) flushEdits(before);
      render();
      $("call-card").focus();
    });
    return button;
  }, (el, s) => {
    const wrapUp = isWrapUp(s);
    const unsaved = pendingFor(s.call.id, "narrative", "incident", "advice", "prompts", "draft", "assessment").count;
    setText(el, `Call ${s.call.id} \u00B7 ${wrapUp ? "wrap-up: assessment due" : humanise(s.call.state)}`
      + ` \u00B7 ${callerText(s.call)}${unsaved ? " \u00B7 not saved" : ""}`);
    el.dataset.callId = s.call.id;
    el.dataset.wrapUp = wrapUp ? "true" : "false";
    el.setAttribute("aria-current", s.call.id === current ? "true" : "false");
  });
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

let shownNarrativeFor = null;
function renderNarrative(screen) {
  const box = $("narrative");
  box.disabled = !screen;
  if (!screen) { shownNarrativeFor = null; box.value = ""; return; }
  if (shownNarrativeFor !== screen.call.id
      || (document.activeElement !== box && box.value !== screen.narrative)) {
    box.value = screen.narrative || "";
    shownNarrativeFor = screen.call.id;
  }
}

let shownFormFor = null;
function renderAssessment(screen) {
  const form = $("assessment");
  const id = screen ? screen.call.id : null;
  const switched = shownFormFor !== id;
  shownFormFor = id;
  for (const control of form.querySelectorAll("select, textarea, input")) control.disabled = !screen;
  writeForm(form, screen ? screen.form : blankForm(), switched ? null : document.activeElement);
  const loose = showProblems(screen ? screen.problems : []);
  const submitting = screen ? pendingFor(id, "assessment").count > 0 : false;
  form.querySelector("button[type=submit]").disabled = !screen || submitting;
  const defer = $("defer");
  defer.hidden = !screen || screen.call.state !== ENDED || Boolean(screen.assessment) || !mine(screen);
  setText(defer, screen && screen.deferred ? "Take back the deferral" : "Defer assessment");
  defer.setAttribute("aria-pressed", screen && screen.deferred ? "true" : "false");
  form.dataset.callId = id ?? "";
  form.dataset.loose = loose.map((p) => p.reason).join(" ");
}

// The "Not saved" lines of each area, the conflict choice of the draft, the badge.
function renderWrites() {
  renderBadge();
  const screen = current !== null ? screens.get(current) : null;
  const line = (el, text, kind) => {
    setText(el, text);
    if (kind) el.dataset.kind = kind; else delete el.dataset.kind;
  };
  const area = (el, areas, refusal) => {
    if (!screen) return line(el, "", null);
    const { count, error } = pendingFor(screen.call.id, ...areas);
    if (count) return line(el, `Not saved${error ? ` (${error}): will retry` : ""}`, "pending");
    return line(el, refusal || "", refusal ? "error" : null);
  };
  const r = screen ? screen.refusals : {};
  area($("narrative-status"), ["narrative"], r.narrative);
  area($("thrive-status"), ["incident", "qualifiers", "advice"], r.incident || r.qualifiers || r.advice);
  area($("prompts-status"), ["prompts"], r.prompts);

  const draft = $("draft-status");
  if (screen && screen.conflict) {
    const other = screen.conflict;
    const keep = h("button", { type: "button", class: "secondary" }, "Keep this form");
    keep.addEventListener("click", () => resolveConflict(screen, false));
    const load = h("button", { type: "button", class: "secondary" }, "Load the saved one");
    load.addEventListener("click", () => resolveConflict(screen, true));
    replaceChildren(draft, h("span", {}, `This call's draft was saved in another tab or window`
      + ` (revision ${other.revision}). Nothing here was saved over it. `), keep, " ", load);
    draft.dataset.kind = "error";
  } else {
    const { count, error } = screen ? pendingFor(screen.call.id, "draft") : { count: 0 };
    if (count) line(draft, `Draft not saved${error ? ` (${error}): will retry` : ""}`, "pending");
    else if (screen && screen.refusals.draft) line(draft, screen.refusals.draft, "error");
    else if (screen && screen.deferred) line(draft, `Assessment deferred${screen.deferredAt ? " at " + time(screen.deferredAt) : ""}.`, "note");
    else if (screen && screen.draftRevision) line(draft, "Draft saved.", "note");
    else line(draft, "", null);
  }

  const status = $("assessment-status");
  const submitting = screen ? pendingFor(screen.call.id, "assessment") : { count: 0 };
  if (screen && submitting.count) {
    delete status.dataset.version;
    line(status, `Not saved: the assessment is waiting to be sent${submitting.error ? ` (${submitting.error})` : ""}.`, "pending");
  } else if (screen && screen.refusals.assessment) {
    delete status.dataset.version;
    const loose = $("assessment").dataset.loose;
    line(status, `${screen.refusals.assessment}${screen.problems.length ? ": see the problems marked beside the fields" : ""}${loose ? `. ${loose}` : ""}`, "error");
  } else if (screen && screen.assessment) {
    const a = screen.assessment;
    status.dataset.version = a.version;
    line(status, `\u2714 Assessment version ${a.version} submitted at ${time(a.submitted_at)} (grade: ${humanise(a.grade)}).`, "ok");
  } else {
    delete status.dataset.version;
    line(status, "", null);
  }
}

function resolveConflict(screen, load) {
  const other = screen.conflict;
  screen.conflict = null;
  screen.draftRevision = other.revision;
  if (load) {
    screen.form = formOf(other);
    screen.deferred = Boolean(other.deferred);
    screen.deferredAt = other.deferred_at || null;
    render();
  } else {
    writeDraft(screen.call.id); // this tab's form, over the revision saved elsewhere
    render();
  }
}

// ---- actions --------------------------------------------------------------------------------

function tick(kind, id, on) {
  const screen = screens.get(current);
  if (!screen) return;
  const set = kind === "advice" ? screen.ticked : screen.answered;
  if (on) set.add(id); else set.delete(id);
  delete screen.refusals[kind];
  writeMark(screen.call.id, kind, id, on);
}

$("incident-type").addEventListener("change", (event) => {
  const screen = screens.get(current);
  const value = event.target.value;
  if (!screen || !value) return;
  screen.thrive.incident_type = value;
  delete screen.refusals.incident;
  const callId = screen.call.id;
  queue.push({
    kind: "incident", area: "incident", callId, method: "PUT", path: callPath(callId, "incident-type"),
    body: { incident_type: value },
  }, same("incident", callId));
});

bindQualifiers((body) => {
  const screen = screens.get(current);
  if (!screen) return;
  screen.thrive.qualifiers = body.qualifiers;
  screen.thrive.qualifier_strands = body.qualifier_strands;
  delete screen.refusals.qualifiers;
  const callId = screen.call.id;
  queue.push({
    kind: "qualifiers", area: "qualifiers", callId, method: "PUT", path: callPath(callId, "qualifiers"),
    body,
  }, same("qualifiers", callId));
});

$("narrative").addEventListener("input", (event) => {
  const screen = screens.get(current);
  if (!screen) return;
  screen.narrative = event.target.value;
  screen.narrativeDirty = true;
  const callId = screen.call.id;
  later("narrative", callId, NARRATIVE_PAUSE_MS, () => writeNarrative(callId));
});

function formEdited() {
  const screen = screens.get(current);
  if (!screen) return;
  screen.form = readForm($("assessment"));
  screen.formDirty = true;
  const callId = screen.call.id;
  later("draft", callId, DRAFT_PAUSE_MS, () => writeDraft(callId));
}
$("assessment").addEventListener("input", formEdited);
$("assessment").addEventListener("change", formEdited);

$("defer").addEventListener("click", () => {
  const screen = screens.get(current);
  if (!screen) return;
  screen.deferred = !screen.deferred;
  screen.deferredAt = screen.deferred ? new Date().toISOString() : null;
  flushEdits(screen.call.id);
  writeDraft(screen.call.id);
  render();
});

$("assessment").addEventListener("submit", (event) => {
  event.preventDefault();
  const screen = screens.get(current);
  if (!screen) return;
  const callId = screen.call.id;
  if (pendingFor(callId, "assessment").count) return; // already on its way: never twice
  // What is still waiting for a pause in typing goes first (the narrative's last words too).
  flushEdits(callId);
  const offeredAdvice = new Set(screen.thrive.advice.map((a) => a.id));
  const offeredPrompts = new Set(screen.thrive.prompts.map((p) => p.id));
  const payload = {
    incident_type: screen.thrive.incident_type || null,
    ...assessmentOf(screen.form),
    advice_given: [...screen.ticked].filter((id) => offeredAdvice.has(id)),
    prompts_answered: [...screen.answered].filter((id) => offeredPrompts.has(id)),
  };
  screen.problems = [];
  delete screen.refusals.assessment;
  queue.push({
    kind: "assessment", area: "assessment", callId, method: "POST", path: callPath(callId, "assessment"),
    body: payload,
  });
  render();
});

// Leaving the page (a reload, closing the tab): what is waiting for a pause is queued, and
// the queue is in sessionStorage, so the next page in this tab sends it.
window.addEventListener("pagehide", () => flushEdits());
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") flushEdits();
});
window.addEventListener("online", () => queue.retryNow());

window.setInterval(() => {
  for (const id of ["call-wait", "call-duration"]) {
    const el = $(id);
    if (el && el.dataset.from && !el.dataset.to) setText(el, duration(el.dataset.from, null));
  }
}, 1000);

const feed = new LiveFeed({
  onMessage,
  snapshot,
  onStatus: (status) => {
    feedStatus.value = status;
    renderBadge();
    if (status === "live") queue.retryNow(); // back: send what waited
  },
});
window.firstcontactFeed = feed; // for the browser tests and a curious developer's console
window.firstcontactWrites = queue;
feed.start();
render();
