// The handler's calls as the page knows them: per call, what the service sent (the call,
// its context and alerts, THRIVE+ prompts, advice and cues, the draft and assessment) and what
// the handler entered (narrative, ticks, the assessment form and its problems). No drawing
// and no writes here: handler.js applies what arrives, handler_view.js draws it.

import { mergeAlert } from "./alerts.js";
import { blankForm, formOf } from "./form.js";

export const ENDED = "ended"; // the call's last state: final, whatever arrives after it

// The desk: who is at it, the call a page is pinned to (/handler/calls/<id>), every call's
// screen state, the call on screen and the one the handler chose (a tab).
export const desk = {
  me: null,
  pinned: null,
  screens: new Map(), // call id -> screen state
  current: null,
  picked: null, // a call the handler chose (a tab): it stays up until a new call rings
};

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

export function screenFor(id) {
  let screen = desk.screens.get(id);
  if (!screen) {
    screen = blankScreen(id);
    desk.screens.set(id, screen);
  }
  return screen;
}

// The call on screen (null: none).
export const shown = () => (desk.current !== null ? desk.screens.get(desk.current) || null : null);

export const mine = (s) => !s.call.handler_id || s.call.handler_id === desk.me;
export const isActive = (s) => Boolean(s.call.state) && s.call.state !== ENDED && mine(s);
// Ended at this desk after being answered, and neither assessed nor deferred yet.
export const isWrapUp = (s) => s.call.state === ENDED && mine(s) && Boolean(s.call.answered_at)
  && !s.assessment && !s.deferred && !s.dismissed && s.loaded;

export function applyCall(id, data) {
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

export function applyAlert(callId, alert) {
  mergeAlert(screenFor(callId).alerts, alert);
}

// `stored`: the service's whole record of the marks (a screen read): the ticks become exactly
// those, then the writes still queued are laid over them (overlayPending).
export function applyThrive(callId, thrive, stored = false) {
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

export function applyCue(callId, cue) {
  const screen = screenFor(callId);
  const id = String(cue.cue_id ?? cue.id);
  screen.cues.set(id, { ...cue, cue_id: id });
}

export function applyDraft(screen, draft) {
  screen.draftRevision = Math.max(screen.draftRevision, draft.revision || 0); // only grows
  screen.deferred = Boolean(draft.deferred);
  screen.deferredAt = draft.deferred_at || null;
}

// What the handler did that the read may not show (`pending`: this call's writes confirmed
// after the read was sent, then those still queued, oldest first), over what it has stored.
function overlayPending(screen, pending) {
  for (const entry of pending) {
    const body = entry.body;
    if (entry.kind === "narrative" && !screen.narrativeDirty) screen.narrative = body.text;
    // A confirmed write carries the service's answer (`result`): what it stored then.
    else if (entry.kind === "incident" && entry.result) applyThrive(screen.call.id, entry.result);
    else if (entry.kind === "incident") screen.thrive.incident_type = body.incident_type;
    else if (entry.kind === "qualifiers") applyThrive(screen.call.id, entry.result || body);
    else if (entry.kind === "assessment" && entry.result) screen.assessment = entry.result;
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

// A read of a call's whole screen; `pendingFor(callId)`: the writes the read may not show.
export function applyScreen(data, pendingFor) {
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
  overlayPending(screen, pendingFor(id));
  screen.dismissed = false;
  screen.loaded = true;
  return screen;
}

// The handler is talking on `screen` (answered, at this desk): a call arriving then rings
// beside it (the page shows and announces it) and never takes the screen from under them.
export const onCall = (screen, arrived) => Boolean(screen) && screen.call.id !== arrived
  && isActive(screen) && ["answered", "transferred"].includes(screen.call.state);

// The call on screen: the pinned one; a call new at this desk (`arrived`, unless the handler
// is on a call); else the one
// chosen or still in progress or in wrap-up; else the newest active call, then the oldest
// wrap-up. Returns the call that left the screen (its edits are due now), or null.
export function chooseCurrent(arrived = null) {
  const before = desk.current;
  if (desk.pinned) {
    desk.current = desk.pinned;
  } else if (arrived !== null && !onCall(desk.screens.get(desk.current), arrived)) {
    desk.current = arrived;
    desk.picked = null;
  } else {
    const now = desk.screens.get(desk.current);
    if (!(now && (isActive(now) || isWrapUp(now) || desk.current === desk.picked))) {
      const all = [...desk.screens.values()];
      const active = all.filter(isActive)
        .sort((a, b) => String(b.call.offered_at || "").localeCompare(String(a.call.offered_at || "")));
      const wrapUp = all.filter(isWrapUp).sort((a, b) => a.call.id - b.call.id);
      if (active.length) desk.current = active[0].call.id;
      else if (wrapUp.length) desk.current = wrapUp[0].call.id;
      // With nothing active or due, the last call stays up (its confirmation on screen).
    }
  }
  return before !== null && before !== desk.current ? before : null;
}
