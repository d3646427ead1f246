// What the supervisor's board shows of a call (issue 15): its caller (masked), top alert,
// incident type and qualifiers, grade (submitted, else the alerts' suggestion).

import { alertTitle, unacknowledged } from "./alerts.js";
import { bySeverity, callerOf, callerText, h, humanise, severityBadge } from "./dom.js";

const GRADE_BY_SEVERITY = { critical: "emergency", high: "priority", medium: "scheduled" };
const GRADE_ORDER = ["emergency", "priority", "scheduled", "resolution_without_deployment"];

// The board is read across a room: the caller's number masked to its last 3 digits (as the
// logs do); the call's detail shows it whole (and the look is audit-logged).
export function maskedCaller(call) {
  const { number, presentation } = callerOf(call);
  if (!number) return callerText(call);
  return presentation === "withheld" ? "Withheld" : `\u2022\u2022\u2022 ${number.slice(-3)}`;
}

export function topAlert(item) {
  const alerts = [...item.alerts.values()].sort(bySeverity);
  return alerts.length ? alerts[0] : null;
}

export function gradeText(item) {
  if (item.grade) return humanise(item.grade);
  const suggested = [...item.alerts.values()]
    .map((a) => (GRADE_ORDER.includes(a.suggested_grade) ? a.suggested_grade : GRADE_BY_SEVERITY[a.severity]))
    .filter(Boolean)
    .sort((a, b) => GRADE_ORDER.indexOf(a) - GRADE_ORDER.indexOf(b));
  return suggested.length ? `${humanise(suggested[0])} (suggested)` : "\u2014";
}

export function incidentText(item, names) {
  const parts = [item.incident_type ? names.incident(item.incident_type) : "Not set"];
  if ((item.qualifiers || []).length) parts.push(item.qualifiers.map(names.qualifier).join(", "));
  return parts.join(" \u00B7 ");
}

export function alertCell(item) {
  const top = topAlert(item);
  if (!top) return [h("span", { class: "muted" }, "None")];
  const alerts = [...item.alerts.values()];
  const open = alerts.filter(unacknowledged).length;
  return [severityBadge(top.severity), " ", h("span", { class: "top-title" }, alertTitle(top)),
    h("span", { class: "small muted" }, ` (${alerts.length} alert${alerts.length > 1 ? "s" : ""}${open ? `, ${open} not acknowledged` : ", all acknowledged"})`)];
}
