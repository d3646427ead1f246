// The QA screen's record of one call, beside the review form: its facts and events, the
// alerts and who acknowledged them, THRIVE+ during the call and as assessed, the narrative
// and the reviews so far. Drawn from the QA API's record; nothing here writes.

import { acknowledgedText } from "./alerts.js";
import { $, date, duration, h, humanise, replaceChildren, setText, severityBadge, time } from "./dom.js";

function when(iso) {
  return iso ? `${date(iso)} ${time(iso)}` : "\u2014";
}

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

// An item's words and, for the reviewer, the guidance they come from (issue 14).
function sourced(text, source) {
  return source ? h("span", {}, text, " ", h("span", { class: "muted small item-source" }, `(source: ${source})`)) : text;
}

function advice(labels, id) {
  const item = (labels.advice || {})[id];
  return item ? sourced(item.text, item.source) : humanise(id);
}

function prompt(labels, id) {
  const item = (labels.prompts || {})[id];
  return item ? sourced(`${item.element}: ${item.text}`, item.source) : humanise(id);
}

function incident(labels, id) {
  return id ? ((labels.incident_types || {})[id] || humanise(id)) : "Not set";
}

function section(title, ...content) {
  return h("section", { class: "record-part" }, h("h3", {}, title), ...content);
}

function list(items, empty, render) {
  return items && items.length
    ? h("ul", { class: "record-list" }, items.map((item) => h("li", {}, render(item))))
    : h("p", { class: "muted small" }, empty);
}

// Draw `record` (GET /api/v1/qa/calls/<id>) into the record panel. labels: the packs' words
// for incident types, prompts, advice and THRIVE+ elements; standardTitle(id): the QA form's.
export function renderRecord(record, { labels, standardTitle }) {
  const c = record.call;
  const caller = c.presentation === "withheld" ? "Withheld" : (c.caller_e164 || "Unavailable");
  const thrive = record.thrive || {};
  const a = record.assessment;
  const parts = [
    facts([
      ["Call", String(c.id)],
      ["Handler", c.handler_id || "\u2014"],
      c.handlers && c.handlers.length > 1 ? ["Handlers", c.handlers.join(", ")] : null,
      ["Caller", caller],
      ["Line / queue", `${c.called || "\u2014"} / ${c.queue || "\u2014"}`],
      ["Offered", when(c.offered_at)],
      ["Answered", when(c.answered_at)],
      ["Ended", `${when(c.ended_at)}${c.end_cause ? ` (${humanise(c.end_cause)})` : ""}`],
      c.answered_at && c.ended_at ? ["Talk time", duration(c.answered_at, c.ended_at)] : null,
      ["Flagged", c.flagged ? "\u2691 Yes" : "No"],
    ]),
    section("Events", h("ol", { class: "record-list events" }, record.events.map((e) =>
      h("li", {}, `${time(e.occurred_at)} ${humanise(e.type)}${e.handler_id ? ` (${e.handler_id})` : ""}`)))),
    section("Alerts", list(record.alerts, "No alerts were raised.", (al) => [
      severityBadge(al.severity), " ", h("strong", {}, al.title || humanise(al.kind)),
      al.reasons && al.reasons.length ? h("ul", { class: "reasons" }, al.reasons.map((r) => h("li", {}, r))) : null,
      h("div", { class: "small" }, al.acknowledged_at ? acknowledgedText(al) : "\u2716 Not acknowledged"),
    ])),
    section("THRIVE+ during the call",
      facts([["Incident type", incident(labels, thrive.incident_type)]]),
      h("h4", {}, "Prompts answered"),
      list(thrive.prompts_answered, "None recorded.", (id) => prompt(labels, id)),
      h("h4", {}, "Advice given"),
      list(thrive.advice_given, "None recorded.", (id) => advice(labels, id))),
    section("THRIVE+ assessment", a ? [
      facts([
        ["Version", `${a.version}, by ${a.submitted_by} at ${when(a.submitted_at)}`],
        ["Incident type", incident(labels, a.incident_type)],
        ["Grade", humanise(a.grade) + (a.suggested_grade && a.suggested_grade !== a.grade ? ` (suggested ${humanise(a.suggested_grade)})` : "")],
        a.grade_reason ? ["Grade reason", a.grade_reason] : null,
        ["Repeat-victim check", a.repeat_victim_check ? humanise(a.repeat_victim_check) : "Not recorded"],
        ["Victim", a.victim ? "Yes" : "No"],
        ["Domestic abuse", a.domestic_abuse ? "Yes" : "No"],
      ]),
      h("table", { class: "board elements-table" },
        h("caption", { class: "sr-only" }, "THRIVE+ elements as assessed"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Element"), h("th", { scope: "col" }, "Risk"), h("th", { scope: "col" }, "Notes"))),
        h("tbody", {}, Object.entries(a.elements || {}).map(([id, el]) => h("tr", {},
          h("th", { scope: "row" }, (labels.elements || {})[id] || humanise(id)),
          h("td", {}, humanise((el && el.risk) || "")), h("td", {}, (el && el.text) || "\u2014"))))),
      h("h4", {}, "Advice given (as assessed)"),
      list(Object.values(a.advice_given || {}).flat(), "None.", (id) => advice(labels, id)),
    ] : h("p", { class: "muted small" }, "No assessment was submitted for this call.")),
    section("Narrative", thrive.narrative
      ? h("p", { class: "narrative" }, thrive.narrative)
      : h("p", { class: "muted small" }, "No narrative was typed.")),
    section("Reviews so far", list(record.reviews, "Not reviewed yet.", (r) =>
      `${r.calibration ? "Calibration review" : "Review"} by ${r.reviewer_id} on ${date(r.reviewed_at)}: `
      + r.answers.map((x) => `${standardTitle(x.standard)} ${humanise(x.answer).toLowerCase()}`).join("; "))),
  ];
  replaceChildren($("record"), parts);
  setText($("record-h"), `Call record: call ${c.id}`);
}
