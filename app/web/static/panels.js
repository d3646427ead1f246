// The panels of the handler's screen: the call card, the alerts with their evidence, the
// caller and household, THRIVE+ prompts and advice (ticks go to `tick`), the cues. Each draws
// one call's screen state (or nothing).

import { alertItem, drawAlert } from "./alerts.js";
import {
  $, bySeverity, callerOf, callerText, date, duration, h, humanise, isOfficerSafety, keyed, replaceChildren,
  setText,
} from "./dom.js";
import { ENDED } from "./handler_calls.js";
import { foldedList, splitFolded } from "./prompts_fold.js";

// Redraw a panel only when what it shows changed: a redraw loses the keyboard focus inside it.
function unchanged(el, ...parts) {
  const signature = JSON.stringify(parts);
  if (el.dataset.signature === signature) return true;
  el.dataset.signature = signature;
  return false;
}

export function renderCallCard(screen, { me, pinned, wrapUp }) {
  const card = $("call-card");
  if (unchanged(card, screen && screen.call, pinned, wrapUp)) return;
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
        h("span", { "aria-hidden": "true" }, call.state === ENDED ? "\u25A0 " : "\u260E "), stateWord,
        wrapUp ? h("span", { class: "wrap-up-note" }, " \u00B7 wrap-up: assessment due") : null),
      h("span", { class: "call-id" }, `Call ${call.id}`,
        pinned ? null : [" \u00B7 ", h("a", { href: `/handler/calls/${call.id}` }, "own page")])),
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
        duration(call.answered_at, call.ended_at)) : null));
}

// Calls ringing at this desk that are not on screen (a second call while the handler is on
// one): as plain to see as the first, with the key that shows them.
export function renderOtherRinging(screens, { pick }) {
  const box = $("other-ringing");
  box.hidden = screens.length === 0;
  keyed(box, screens, (s) => s.call.id, (s) => {
    const show = h("button", { type: "button", class: "show-ringing", "aria-keyshortcuts": "Alt+R" }, "Show it (Alt+R)");
    show.addEventListener("click", () => pick(s.call.id));
    return h("div", { class: "ringing-row" }, h("p", { class: "ringing-text" }), show);
  }, (el, s) => {
    el.dataset.callId = s.call.id;
    const { call } = s;
    const alerts = [...s.alerts.values()];
    const serious = alerts.filter((a) => ["critical", "high"].includes(a.severity)).length;
    replaceChildren(el.querySelector(".ringing-text"),
      h("span", { "aria-hidden": "true" }, "\u260E "), h("strong", {}, "Another call is ringing: "),
      `Call ${call.id} \u00B7 ${callerText(call)} \u00B7 ${[call.called, call.queue].filter(Boolean).join(" ")}`,
      alerts.length ? ` \u00B7 ${alerts.length} alert${alerts.length === 1 ? "" : "s"}${serious ? `, ${serious} high or critical` : ""}` : "");
  });
}

export function evidenceIndex(context) {
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

function evidenceItem(id, index, names) {
  const found = index.get(id);
  if (found && found.contact) {
    const c = found.contact;
    const parts = [date(c.occurred_at), c.incident_type ? names.incident(c.incident_type) : "Contact"];
    if (c.victim) parts.push("victim");
    if (c.domestic_abuse) parts.push("domestic abuse");
    if (c.outcome) parts.push(humanise(c.outcome).toLowerCase());
    return h("li", { class: "evidence-contact" }, h("time", { datetime: c.occurred_at }, parts[0]), " \u00B7 ", parts.slice(1).join(" \u00B7 "));
  }
  if (found && found.marker) {
    const m = found.marker;
    return h("li", { class: "evidence-marker" }, `Marker: ${names.marker(m.kind)}`,
      m.set_at ? ` (set ${date(m.set_at)}${m.active === false ? ", expired" : ""})` : "");
  }
  // Never the id itself: handlers read this (issue 13).
  return h("li", { class: "evidence-ref" }, "A record not shown on this screen");
}

// The evidence in plain words (grouped by incident type and outcome), then each record behind
// a disclosure; alerts stored before issue 13 have no lines, so their records show open.
export function evidenceParts(a, index, names) {
  const lines = a.evidence_lines || [];
  const ids = a.evidence || [];
  if (!lines.length && !ids.length) return null;
  // Folded: the reasons above already say what was found, and a ringing call's alerts must
  // fit on the screen together (issue 15); one click or Enter opens it.
  return h("details", { class: "evidence-details" },
    h("summary", {}, `Evidence (${lines.length || ids.length})`),
    lines.length ? h("ul", { class: "evidence-summary" }, lines.map((line) => h("li", {}, line))) : null,
    ids.length ? h("details", { class: "evidence-records", open: !lines.length },
      h("summary", {}, `Each record (${ids.length})`),
      h("ul", { class: "evidence" }, ids.map((id) => evidenceItem(id, index, names)))) : null);
}

export function renderAlerts(screen, { names, acknowledge }) {
  const empty = $("alerts-empty");
  const alerts = screen ? [...screen.alerts.values()].sort(bySeverity) : [];
  const officer = alerts.filter(isOfficerSafety);
  const others = alerts.filter((a) => !isOfficerSafety(a));
  $("officer-safety").hidden = officer.length === 0;
  empty.hidden = others.length > 0;
  empty.textContent = officer.length ? "No other alerts."
    : screen && screen.context ? "No alerts for this caller." : "No alerts.";
  const index = evidenceIndex(screen && screen.context);
  const callId = screen ? screen.call.id : null;
  renderAlertList($("officer-safety-alerts"), officer, { callId, index, names, acknowledge });
  renderAlertList($("alerts"), others, { callId, index, names, acknowledge });
}

function renderAlertList(list, alerts, { callId, index, names, acknowledge }) {
  keyed(list, alerts, (a) => `${callId}:${a.alert_id}`,
    (a) => alertItem((button) => acknowledge(callId, a.alert_id, button), { evidence: true, feedback: true }),
    (el, a) => {
      drawAlert(el, a);
      // Redrawn only when the evidence changed: an open disclosure stays open.
      const box = el.querySelector(".evidence-box");
      if (!unchanged(box, a.evidence, a.evidence_lines, index.size)) replaceChildren(box, evidenceParts(a, index, names));
    });
}

function markerList(markers, names) {
  if (!markers || !markers.length) return null;
  return h("ul", { class: "markers" }, markers.map((m) => h("li", { class: m.active === false ? "marker expired" : "marker" },
    h("span", { "aria-hidden": "true" }, m.active === false ? "\u25CB " : "\u25CF "),
    names.marker(m.kind), m.active === false ? " (expired)" : " (active)")));
}

// " (partner, 41)": how a member relates to the caller, and their age; never an id (issue 13).
function memberNote(p) {
  if (!p) return "";
  const relation = p.relationship === "caller" ? "caller"
    : p.relation === "ex_partner" ? "ex-partner" : p.relation ? humanise(p.relation).toLowerCase() : "";
  const parts = [relation, ageOf(p.date_of_birth)].filter((x) => x !== "" && x !== null);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

function ageOf(dateOfBirth) {
  if (!dateOfBirth) return null;
  const born = new Date(`${dateOfBirth.slice(0, 10)}T00:00:00Z`);
  if (Number.isNaN(born.getTime())) return null;
  const now = new Date();
  let years = now.getUTCFullYear() - born.getUTCFullYear();
  if (now.getUTCMonth() < born.getUTCMonth()
    || (now.getUTCMonth() === born.getUTCMonth() && now.getUTCDate() < born.getUTCDate())) years -= 1;
  return years >= 0 && years < 130 ? String(years) : null;
}

export function renderHousehold(screen, { names }) {
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
      h("h3", {}, p.name || "Name not recorded", h("span", { class: "muted" }, " \u2014 linked to this number")),
      p.date_of_birth ? h("p", { class: "small" }, `Born ${date(p.date_of_birth)}`) : null,
      markerList(p.markers, names))),
    (context.households || []).map((hh) => h("div", { class: "household" },
      h("h3", {}, hh.address || "Address not recorded"),
      markerList(hh.markers, names),
      h("ul", { class: "members" }, (hh.member_ids || []).map((mid) => {
        const p = persons.get(mid);
        return h("li", {},
          h("span", { class: "member-name" }, p && p.name ? p.name : "Name not recorded"),
          memberNote(p),
          p ? markerList(p.markers, names) : null);
      })))));
}

export function renderCues(screen) {
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

export function renderThrive(screen, { current, tick }) {
  const select = $("incident-type");
  select.disabled = !screen;
  const incident = screen ? screen.thrive.incident_type : null;
  if (document.activeElement !== select || select.dataset.callId !== String(current)) {
    select.value = incident || "";
  }
  select.dataset.callId = String(current);
  const prompts = screen ? screen.thrive.prompts : [];
  $("prompts-empty").hidden = prompts.length > 0;
  const { shown, folded } = splitFolded(prompts);
  renderPromptGroups($("prompts"), shown, screen, tick);
  renderPromptGroups(foldedList(folded.length), folded, screen, tick);
}

// Prompts grouped under their THRIVE+ element, in the order given, each with its tick box.
function renderPromptGroups(list, prompts, screen, tick) {
  const byElement = new Map();
  for (const p of prompts) {
    if (!byElement.has(p.element)) byElement.set(p.element, []);
    byElement.get(p.element).push(p);
  }
  const groups = [...byElement.entries()].map(([element, items]) => ({ element, items }));
  keyed(list, groups, (g) => g.element, (g) => h("li", { class: "prompt-group" },
    h("h3", {}, humanise(g.element)), h("ul", { class: "prompt-items" })), (el, g) => {
    keyed(el.querySelector(".prompt-items"), g.items, (p) => p.id, (p) => {
      const box = h("input", { type: "checkbox", id: `prompt-${p.id}`, value: p.id });
      box.addEventListener("change", () => tick("prompts", p.id, box.checked));
      return h("li", {}, box, h("label", { for: `prompt-${p.id}` }));
    }, (li, p) => {
      setText(li.querySelector("label"), p.text);
      li.querySelector("input").checked = screen.answered.has(p.id);
    });
  });
}

export function renderAdvice(screen, { tick }) {
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
      box.addEventListener("change", () => tick("advice", a.id, box.checked));
      return h("li", { "data-advice-id": a.id }, box, h("label", { for: `advice-${a.id}` }));
    }, (li, a) => {
      setText(li.querySelector("label"), a.text);
      li.querySelector("input").checked = screen.ticked.has(a.id);
    });
  });
}
