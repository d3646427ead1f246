// Alerts as the handler's and the supervisor's pages keep and draw them: one call's alerts
// by id as messages and reads arrive, the acknowledgement sent to the service, and an alert
// as a list item (severity, title, reasons, the acknowledge button, who acknowledged: the
// handler's and supervisors' acknowledgements apart, issue 15), and the handler's feedback.

import { api } from "./api.js";
import { h, humanise, replaceChildren, setText, severityBadge, time } from "./dom.js";

// Lay `alert` (a message's or a read's copy, whole or partial) over `alerts` (id -> alert).
export function mergeAlert(alerts, alert) {
  const id = String(alert.alert_id ?? alert.id);
  const previous = alerts.get(id) || {};
  const merged = { ...previous, ...alert, alert_id: id };
  // An acknowledgement is never undone by an older copy of the alert.
  if (previous.acknowledged_at && !alert.acknowledged_at) {
    merged.acknowledged_at = previous.acknowledged_at;
    merged.acknowledged_by = previous.acknowledged_by;
  }
  // Each person's acknowledgement, whichever copy brought it (one per person).
  const byStaff = new Map();
  for (const ack of [...(previous.acknowledgements || []), ...(alert.acknowledgements || [])]) {
    if (!byStaff.has(ack.staff_id)) byStaff.set(ack.staff_id, ack);
  }
  merged.acknowledgements = [...byStaff.values()];
  alerts.set(id, merged);
}

// Whose side an acknowledgement is on: the handler's check, or a supervisor's (or admin's).
export const sideOf = (ack) => (ack.role === "handler" ? "handler" : "supervisor");

// The acknowledgements of one side. An alert read before issue 15 has only the first
// acknowledgement, whose side is unknown: it counts for both.
export function acksOn(a, side) {
  const acks = a.acknowledgements || [];
  if (!acks.length && a.acknowledged_at) return [{ staff_id: a.acknowledged_by, acknowledged_at: a.acknowledged_at }];
  return acks.filter((ack) => sideOf(ack) === side);
}

// Nobody has acknowledged the alert (the board's escalation and recently-ended list).
export const unacknowledged = (a) => !a.acknowledged_at && !(a.acknowledgements || []).length;

// The alerts an `alert.raised` message carries (one, or the batch of one ring).
export const raisedIn = (data) => (Array.isArray(data.alerts) ? data.alerts : [data.alert || data]);
// The alert an `alert.acknowledged` message carries.
export const acknowledgedIn = (data) => data.alert || data;

export const alertTitle = (a) => a.title || humanise(a.kind);

const SIDE_WORD = { handler: "handler", supervisor: "supervisor" };

// "✔ Handler H1 at 10:00:01" for each acknowledgement of the side, or null.
function sideText(a, side) {
  const acks = acksOn(a, side);
  if (!acks.length) return null;
  return acks.map((ack) => `\u2714 Acknowledged${ack.staff_id ? " by " + ack.staff_id : ""} (${SIDE_WORD[side]}) at ${time(ack.acknowledged_at)}`).join("; ");
}

export function acknowledgedText(a) {
  // Read before issue 15: only the first acknowledgement, its side unknown.
  if (!(a.acknowledgements || []).length) {
    return a.acknowledged_at ? `\u2714 Acknowledged${a.acknowledged_by ? " by " + a.acknowledged_by : ""} at ${time(a.acknowledged_at)}` : "";
  }
  return [sideText(a, "handler"), sideText(a, "supervisor")].filter(Boolean).join(" \u00B7 ");
}

// Acknowledge from `button` (disabled while it goes): the acknowledged alert as the service
// returned it, or null when refused (the reason is shown beside the button, which is back).
export async function acknowledge(alertId, button) {
  button.disabled = true;
  try {
    const body = await api("POST", `/api/v1/alerts/${alertId}/ack`);
    return (body && (body.alert || body)) || { alert_id: alertId };
  } catch (err) {
    button.disabled = false;
    const status = button.parentElement.querySelector(".ack-status");
    if (status) status.textContent = `Could not acknowledge: ${err.message}`;
    return null;
  }
}

// ---- feedback (issue 15): was the alert useful? One click; a reason is optional ----------

export const VERDICTS = [["helpful", "Helpful"], ["not_relevant", "Not relevant"], ["wrong_person", "Wrong person"]];
const VERDICT_WORD = Object.fromEntries(VERDICTS);
// What this page said of each alert (a redraw from an older copy of the alert keeps it).
const given = new Map();

async function sendFeedback(el, verdict) {
  const alertId = el.dataset.alertId;
  const box = el.querySelector(".feedback");
  const status = box.querySelector(".feedback-status");
  const reason = box.querySelector("input.feedback-reason").value.trim();
  box.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  try {
    const body = await api("POST", `/api/v1/alerts/${alertId}/feedback`, { verdict, reason: reason || null });
    given.set(String(alertId), body);
    drawFeedback(el, body);
  } catch (err) {
    setText(status, `Could not save your feedback: ${err.message}`);
  } finally {
    box.querySelectorAll("button").forEach((b) => { b.disabled = false; });
  }
}

function feedbackBox(el) {
  const id = `fb-${Math.random().toString(36).slice(2, 10)}`;
  const buttons = VERDICTS.map(([verdict, word]) => h("button", {
    type: "button", class: "feedback-choice", "data-verdict": verdict, "aria-pressed": "false",
    onclick: () => sendFeedback(el, verdict),
  }, word));
  return h("div", { class: "feedback", role: "group", "aria-labelledby": `${id}-q` },
    h("span", { id: `${id}-q`, class: "small muted" }, "Was this alert useful?"), " ", ...buttons,
    h("label", { class: "sr-only", for: `${id}-r` }, "Reason (optional)"),
    h("input", { id: `${id}-r`, class: "feedback-reason", type: "text", maxlength: "500", placeholder: "Reason (optional)" }),
    h("span", { class: "feedback-status small", role: "status" }));
}

function drawFeedback(el, mine) {
  const box = el.querySelector(".feedback");
  if (!box) return;
  box.dataset.verdict = mine ? mine.verdict : "";
  for (const button of box.querySelectorAll("button.feedback-choice")) {
    button.setAttribute("aria-pressed", mine && mine.verdict === button.dataset.verdict ? "true" : "false");
  }
  setText(box.querySelector(".feedback-status"), mine ? `Marked ${VERDICT_WORD[mine.verdict].toLowerCase()}` : "");
}

// A new alert item; `onAcknowledge(button)` runs on its button. With `evidence`, a box for
// what the alert was raised on (filled by the page); with `summary`, the alert's evidence
// lines in plain words (drawn here); with `feedback`, the handler's one-click verdict.
export function alertItem(onAcknowledge, { evidence = false, summary = false, feedback = false } = {}) {
  const ack = h("button", { type: "button", class: "ack" }, "Acknowledge");
  ack.addEventListener("click", () => onAcknowledge(ack));
  const el = h("li", { class: "alert" },
    h("div", { class: "alert-head" }, h("span", { class: "sev-slot" }), h("strong", { class: "alert-title" }),
      h("span", { class: "alert-category small muted" })),
    h("ul", { class: "reasons" }),
    summary ? h("ul", { class: "evidence-summary small" }) : null,
    evidence ? h("div", { class: "evidence-box" }) : null,
    h("div", { class: "alert-actions" }, ack, h("span", { class: "ack-status", role: "status" })));
  if (feedback) el.append(feedbackBox(el));
  return el;
}

// Draw `a` into its item. `waiting`: what the status says while `side` (the page's: the
// handler's or a supervisor's) has not acknowledged (none: the status is left as it is, so a
// refusal stays readable). The other side's acknowledgement is shown, never taken for ours.
export function drawAlert(el, a, { waiting = null, side = "handler" } = {}) {
  el.dataset.alertId = a.alert_id;
  el.dataset.kind = a.kind;
  el.dataset.severity = a.severity;
  el.dataset.category = a.category || "";
  const ours = acksOn(a, side).length > 0;
  el.className = `alert sev-${a.severity}${ours ? " acked" : ""}`;
  replaceChildren(el.querySelector(".sev-slot"), severityBadge(a.severity));
  setText(el.querySelector(".alert-title"), alertTitle(a));
  setText(el.querySelector(".alert-category"), a.category ? ` \u00B7 ${humanise(a.category)}` : "");
  replaceChildren(el.querySelector(".reasons"), (a.reasons || []).map((r) => h("li", {}, r)));
  const summary = el.querySelector(".evidence-summary");
  if (summary) replaceChildren(summary, (a.evidence_lines || []).map((line) => h("li", {}, line)));
  const button = el.querySelector("button.ack");
  const status = el.querySelector(".ack-status");
  el.dataset.acknowledged = ours ? "true" : "false";
  el.dataset.handlerAck = acksOn(a, "handler").length ? "true" : "false";
  el.dataset.supervisorAck = acksOn(a, "supervisor").length ? "true" : "false";
  button.hidden = ours;
  const others = acknowledgedText(a);
  if (ours) setText(status, others);
  else {
    button.setAttribute("aria-label", `Acknowledge: ${alertTitle(a)}`);
    if (waiting !== null) setText(status, [waiting, others].filter(Boolean).join(" \u00B7 "));
    else if (others && !status.textContent.startsWith("Could not")) setText(status, others);
  }
  drawFeedback(el, given.get(String(a.alert_id)) || a.my_feedback || null);
}
