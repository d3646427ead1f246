// The handler's screen: the calls at this desk, each with its alerts and their evidence, the
// household, THRIVE+ prompts and advice, the narrative with the cues found in it, and the
// assessment. Live parts come over the WebSocket (live.js); every write goes through the
// page's write queue (handler_writes.js), so nothing typed is lost while the service is away.
//
// Everything the handler enters belongs to one call: the desk (handler_calls.js) holds, per
// call, the narrative, ticks, the assessment form and its problems; the page draws the call
// on screen from it (handler_view.js) and never leaves one call's values in the form for the
// next. This module wires them: live messages and reads in, the handler's actions out.

import { acknowledge, acknowledgedIn, raisedIn } from "./alerts.js";
import { api } from "./api.js";
import { $, callerText, humanise, runClocks } from "./dom.js";
import { assessmentOf, formOf, readForm } from "./form.js";
import {
  ENDED, applyAlert, applyCall, applyCue, applyScreen, applyThrive, chooseCurrent, desk, isActive,
  onCall, screenFor, shown,
} from "./handler_calls.js";
import { bindKeys, focusOn } from "./handler_keys.js";
import { createView } from "./handler_view.js";
import { createWrites } from "./handler_writes.js";
import { mountIdentify } from "./identify.js";
import { bindIncident } from "./incident.js";
import { LiveFeed } from "./live.js";
import { bindQualifiers } from "./qualifiers.js";
import { createRinger } from "./ring.js";

const root = $("handler");
desk.me = root.dataset.staff;
desk.pinned = root.dataset.call ? Number(root.dataset.call) : null;
desk.current = desk.pinned;

const labels = JSON.parse($("labels").textContent || "{}");
const names = {
  incident: (id) => (labels.incident_types || {})[id] || humanise(id),
  marker: (kind) => (labels.markers || {})[kind] || humanise(kind),
};

const ringer = createRinger({ button: $("ring-mute"), announcer: $("ring-announce") });

const writes = createWrites({
  settled: () => { choose(); view.render(); },
  submitted: (callId) => {
    // The confirmation is where the handler looks next (it is read out too).
    const focus = document.activeElement;
    if (callId === desk.current && (!focus || focus === document.body || $("assessment").contains(focus))) {
      focusOn($("assessment-status"));
    }
  },
  render: () => view.render(),
  renderWrites: () => view.renderWrites(),
});
// Find and link (identify.js): alerts a link raised show at once, socket or not.
const identify = mountIdentify({
  onAlerts: (callId, alerts) => {
    alerts.forEach((a) => applyAlert(callId, a));
    render();
  },
});
const view = createView({
  writes,
  names,
  grading: labels.grading || {},
  ringer,
  identify,
  actions: { acknowledge: acknowledgeAlert, tick, pick, resolveConflict },
});
const render = () => view.render();

// The call on screen may change: what the one leaving it waited to send goes now.
function choose(arrived = null) {
  const left = chooseCurrent(arrived);
  if (left !== null) writes.flushEdits(left);
}

// ---- what arrives ---------------------------------------------------------------------------

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
    // A call new at this desk takes the main view at once (the ring -> screen path), unless
    // the handler is on another call: then it rings beside it (choose()).
    if (!wasActive && isActive(screen)) {
      arrived = callId;
      if (screen.call.state === "ringing") announceRing(screen); // not a resumed answered one
    }
    if (!screen.loaded && state !== ENDED) loadScreen(callId);
  } else if (type === "alert.raised") {
    raisedIn(data).forEach((a) => applyAlert(callId, a));
  } else if (type === "alert.acknowledged") {
    applyAlert(callId, acknowledgedIn(data));
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
  choose(arrived);
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
      const { body, over } = await writes.reading(() => api("GET", `/web/api/calls/${callId}/screen`));
      if (screen.seq !== seq && attempt < 2) continue;
      // Still moving on the last try: take all but the call's state, which messages keep.
      applyScreen(screen.seq !== seq ? { ...body.screen, call: { id: callId } } : body.screen, over);
      choose();
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
  const path = desk.pinned ? `/web/api/calls/${desk.pinned}/screen` : "/web/api/handler/calls";
  const { body, over } = await writes.reading(() => api("GET", path));
  const list = body.screen ? [body.screen] : body.calls;
  const seen = new Set();
  for (const data of list) {
    applyScreen(data, over);
    seen.add(Number(data.call.id));
  }
  // Calls we showed that are no longer at this desk nor due a wrap-up (missed while away).
  if (!desk.pinned) {
    for (const [id, screen] of desk.screens) {
      if (seen.has(id)) continue;
      if (screen.call.state !== ENDED) screen.call.state = ENDED;
      screen.dismissed = true;
    }
  }
  writes.queue.start(); // the state is known: queued writes (a draft's revision) can go now
  choose();
  render();
  return body.as_of;
}

// ---- what the handler does ------------------------------------------------------------------

async function acknowledgeAlert(callId, alertId, button) {
  const alert = await acknowledge(alertId, button);
  if (!alert) return;
  const hadFocus = document.activeElement === button || document.activeElement === document.body;
  applyAlert(callId, alert);
  render();
  // The button is gone: the focus goes to the next alert to acknowledge, else stays on this
  // alert (its "Acknowledged by" line is read out), never to the page's body.
  if (hadFocus && !nextToAcknowledge()) {
    focusOn(document.querySelector(`#handler li.alert[data-alert-id="${alertId}"]`));
  }
}

// The next alert's Acknowledge button (officer safety first, as the page lists them), focused.
function nextToAcknowledge() {
  const button = [...document.querySelectorAll("#officer-safety-alerts button.ack, #alerts button.ack")]
    .find((b) => !b.hidden && !b.disabled);
  return button ? focusOn(button) : false;
}

// Read out as the call rings at this desk: a second call while the handler is on one is said
// as clearly as the first (the same assertive region), with the key that shows it.
function announceRing(screen) {
  const call = screen.call;
  const on = shown();
  const busy = onCall(on, call.id);
  const where = [call.called && `line ${call.called}`, call.queue && `${call.queue} queue`].filter(Boolean);
  const what = `call ${call.id} from ${callerText(call)}${where.length ? ", " + where.join(", ") : ""}`;
  ringer.announce(busy
    ? `Second call ringing while you are on call ${on.call.id}: ${what}. Alt+R shows it.`
    : `Call ringing: ${what}.`);
}

// The first call ringing at this desk that is not on screen, shown (Alt+R, or its banner).
function showRinging() {
  const other = [...desk.screens.values()].find((s) => isActive(s) && s.call.state === "ringing"
    && s.call.id !== desk.current);
  if (other) pick(other.call.id);
  else focusOn($("call-card"));
}

function tick(kind, id, on) {
  const screen = shown();
  if (!screen) return;
  const set = kind === "advice" ? screen.ticked : screen.answered;
  if (on) set.add(id); else set.delete(id);
  delete screen.refusals[kind];
  writes.writeMark(screen.call.id, kind, id, on);
}

// A call's tab: it stays on screen until a new call rings.
function pick(callId) {
  desk.picked = callId;
  const before = desk.current;
  desk.current = callId;
  if (before !== null && before !== desk.current) writes.flushEdits(before);
  render();
  $("call-card").focus();
}

function resolveConflict(screen, load) {
  const other = screen.conflict;
  screen.conflict = null;
  screen.draftRevision = other.revision;
  if (load) {
    screen.form = formOf(other);
    screen.deferred = Boolean(other.deferred);
    screen.deferredAt = other.deferred_at || null;
  } else {
    writes.writeDraft(screen.call.id); // this tab's form, over the revision saved elsewhere
  }
  render();
}

bindIncident($("incident-type"), (value) => {
  const screen = shown();
  if (!screen || !value || value === screen.thrive.incident_type) return;
  screen.thrive.incident_type = value;
  delete screen.refusals.incident;
  writes.writeIncident(screen.call.id, value);
});

bindQualifiers((body) => {
  const screen = shown();
  if (!screen) return;
  screen.thrive.qualifiers = body.qualifiers;
  screen.thrive.qualifier_strands = body.qualifier_strands;
  delete screen.refusals.qualifiers;
  writes.writeQualifiers(screen.call.id, body);
});

$("narrative").addEventListener("input", (event) => {
  const screen = shown();
  if (!screen) return;
  screen.narrative = event.target.value;
  screen.narrativeDirty = true;
  writes.narrativeTyped(screen.call.id);
});

function formEdited() {
  const screen = shown();
  if (!screen) return;
  screen.form = readForm($("assessment"));
  screen.formDirty = true;
  writes.formEdited(screen.call.id);
  view.renderSuggestion(); // a grade below the suggestion asks for a reason at once
}
$("assessment").addEventListener("input", formEdited);
$("assessment").addEventListener("change", formEdited);

$("defer").addEventListener("click", () => {
  const screen = shown();
  if (!screen) return;
  screen.deferred = !screen.deferred;
  screen.deferredAt = screen.deferred ? new Date().toISOString() : null;
  writes.flushEdits(screen.call.id);
  writes.writeDraft(screen.call.id);
  render();
});

$("assessment").addEventListener("submit", (event) => {
  event.preventDefault();
  const screen = shown();
  if (!screen) return;
  const callId = screen.call.id;
  if (writes.pendingFor(callId, "assessment").count) return; // already on its way: never twice
  // What is still waiting for a pause in typing goes first (the narrative's last words too).
  writes.flushEdits(callId);
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
  writes.submitAssessment(callId, payload);
  render();
});

// Leaving the page (a reload, closing the tab): what is waiting for a pause is queued, and
// the queue is in sessionStorage, so the next page in this tab sends it.
window.addEventListener("pagehide", () => writes.flushEdits());
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") writes.flushEdits();
});
window.addEventListener("online", () => writes.queue.retryNow());

bindKeys({
  call: () => focusOn($("call-card")),
  ringing: showRinging,
  acknowledge: () => nextToAcknowledge() || focusOn($("alerts-h")),
  narrative: () => focusOn($("narrative").disabled ? $("narrative-h") : $("narrative")),
  incident: () => focusOn($("incident-type")),
  advice: () => focusOn(document.querySelector("#advice input[type=checkbox]") || $("incident-type")),
  prompts: () => focusOn(document.querySelector("#prompts input[type=checkbox]") || $("prompts-h")),
  assessment: () => {
    $("assessment-h").scrollIntoView({ block: "start" });
    focusOn($("grade"));
  },
  link: () => focusOn($("identify-q").disabled ? $("identify-h") : $("identify-q")),
  mute: () => ringer.toggle(),
});

runClocks("#call-wait, #call-duration");

const feed = new LiveFeed({
  onMessage,
  snapshot,
  onStatus: (status) => {
    view.feedStatus(status);
    if (status === "live") writes.queue.retryNow(); // back: send what waited
  },
});
window.firstcontactFeed = feed; // for the browser tests and a curious developer's console
window.firstcontactWrites = writes.queue;
feed.start();
render();
