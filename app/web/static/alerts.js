// Alerts as the handler's and the supervisor's pages keep and draw them: one call's alerts
// by id as messages and reads arrive, the acknowledgement sent to the service, and an alert
// as a list item (severity, title, reasons, the acknowledge button, who acknowledged).

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
  alerts.set(id, merged);
}

// The alerts an `alert.raised` message carries (one, or the batch of one ring).
export const raisedIn = (data) => (Array.isArray(data.alerts) ? data.alerts : [data.alert || data]);
// The alert an `alert.acknowledged` message carries.
export const acknowledgedIn = (data) => data.alert || data;

export const alertTitle = (a) => a.title || humanise(a.kind);

export function acknowledgedText(a) {
  return `\u2714 Acknowledged${a.acknowledged_by ? " by " + a.acknowledged_by : ""} at ${time(a.acknowledged_at)}`;
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

// A new alert item; `onAcknowledge(button)` runs on its button. With `evidence`, a box for
// what the alert was raised on (filled by the page); with `summary`, the alert's evidence
// lines in plain words (drawn here).
export function alertItem(onAcknowledge, { evidence = false, summary = false } = {}) {
  const ack = h("button", { type: "button", class: "ack" }, "Acknowledge");
  ack.addEventListener("click", () => onAcknowledge(ack));
  return h("li", { class: "alert" },
    h("div", { class: "alert-head" }, h("span", { class: "sev-slot" }), h("strong", { class: "alert-title" }),
      h("span", { class: "alert-category small muted" })),
    h("ul", { class: "reasons" }),
    summary ? h("ul", { class: "evidence-summary small" }) : null,
    evidence ? h("div", { class: "evidence-box" }) : null,
    h("div", { class: "alert-actions" }, ack, h("span", { class: "ack-status", role: "status" })));
}

// Draw `a` into its item. `waiting`: what the status says while nobody has acknowledged
// (none: the status is left as it is, so a refusal stays readable).
export function drawAlert(el, a, { waiting = null } = {}) {
  el.dataset.alertId = a.alert_id;
  el.dataset.kind = a.kind;
  el.dataset.severity = a.severity;
  el.dataset.category = a.category || "";
  el.className = `alert sev-${a.severity}${a.acknowledged_at ? " acked" : ""}`;
  replaceChildren(el.querySelector(".sev-slot"), severityBadge(a.severity));
  setText(el.querySelector(".alert-title"), alertTitle(a));
  setText(el.querySelector(".alert-category"), a.category ? ` \u00B7 ${humanise(a.category)}` : "");
  replaceChildren(el.querySelector(".reasons"), (a.reasons || []).map((r) => h("li", {}, r)));
  const summary = el.querySelector(".evidence-summary");
  if (summary) replaceChildren(summary, (a.evidence_lines || []).map((line) => h("li", {}, line)));
  const button = el.querySelector("button.ack");
  const status = el.querySelector(".ack-status");
  el.dataset.acknowledged = a.acknowledged_at ? "true" : "false";
  button.hidden = Boolean(a.acknowledged_at);
  if (a.acknowledged_at) setText(status, acknowledgedText(a));
  else {
    button.setAttribute("aria-label", `Acknowledge: ${alertTitle(a)}`);
    if (waiting !== null) setText(status, waiting);
  }
}
