// The supervisor's detail of one call (issue 15): its facts, alerts with their evidence and
// everyone's acknowledgements (officer safety first), the narrative's cues and the assessment.

import { alertItem, drawAlert } from "./alerts.js";
import { $, SEVERITY, bySeverity, callerText, h, humanise, isOfficerSafety, keyed, replaceChildren, time } from "./dom.js";
import { gradeText, incidentText } from "./board_rows.js";
import { evidenceIndex, evidenceParts } from "./panels.js";

// Draw `item` (the board's state of the call) with `detail` (its detail read, or null).
export function renderDetail(item, detail, { names, labels, acknowledgeAlert }) {
  if (!item) return;
  const call = item.call;
  replaceChildren($("detail"),
    h("dl", { class: "facts" },
      h("dt", {}, "Call"), h("dd", {}, String(call.id)),
      call.platform_call_id ? [h("dt", {}, "Platform id"), h("dd", { id: "detail-platform" }, call.platform_call_id)] : null,
      h("dt", {}, "State"), h("dd", { id: "detail-state" }, humanise(call.state)),
      h("dt", {}, "Handler"), h("dd", {}, call.handler_id || "\u2014"),
      h("dt", {}, "Caller"), h("dd", {}, callerText(call)),
      h("dt", {}, "Line"), h("dd", {}, call.called || "\u2014"),
      h("dt", {}, "Queue"), h("dd", {}, call.queue || "\u2014"),
      h("dt", {}, "Incident"), h("dd", { id: "detail-incident" }, incidentText(item, names)),
      h("dt", {}, "Grade"), h("dd", { id: "detail-grade" }, gradeText(item)),
      h("dt", {}, "Offered"), h("dd", {}, time(call.offered_at)),
      call.answered_at ? [h("dt", {}, "Answered"), h("dd", {}, time(call.answered_at))] : null,
      call.ended_at ? [h("dt", {}, "Ended"), h("dd", {}, time(call.ended_at))] : null));
  const alerts = [...item.alerts.values()].sort(bySeverity);
  // Officer safety first, under its own heading (issue 13).
  const officer = alerts.filter(isOfficerSafety);
  $("detail-officer-safety").hidden = officer.length === 0;
  const index = evidenceIndex(detail && detail.context);
  const draw = { index, names, acknowledgeAlert };
  renderDetailAlerts($("detail-officer-alerts"), officer, draw);
  renderDetailAlerts($("detail-alerts"), alerts.filter((a) => !isOfficerSafety(a)), draw);
  renderDetailMore(detail, labels);
}

function renderDetailAlerts(list, alerts, { index, names, acknowledgeAlert }) {
  keyed(list, alerts, (a) => a.alert_id,
    (a) => alertItem((button) => acknowledgeAlert(a.alert_id, button), { evidence: true }),
    (el, a) => {
      drawAlert(el, a, { waiting: "\u2716 Not acknowledged by a supervisor yet", side: "supervisor" });
      const box = el.querySelector(".evidence-box");
      const signature = JSON.stringify([a.evidence, a.evidence_lines, index.size]);
      if (box.dataset.signature !== signature) {
        box.dataset.signature = signature;
        replaceChildren(box, evidenceParts(a, index, names));
      }
    });
}

function renderDetailMore(detail, labels) {
  const more = $("detail-more");
  const cues = (detail && detail.thrive && detail.thrive.cues) || [];
  const assessment = detail && detail.assessment;
  const signature = JSON.stringify([cues, assessment]);
  if (more.dataset.signature === signature) return;
  more.dataset.signature = signature;
  replaceChildren(more,
    h("h3", {}, "Cues"),
    cues.length ? h("ul", { id: "detail-cues", class: "cues" }, cues.map((c) => h("li", {},
      h("strong", {}, c.strand_name || humanise(c.strand)), ` (${SEVERITY[c.severity] ? SEVERITY[c.severity].label : humanise(c.severity)})`,
      (c.matched || []).length ? `: \u201C${c.matched.join("\u201D, \u201C")}\u201D` : "")))
      : h("p", { class: "muted", id: "detail-cues" }, "No cues in the narrative."),
    h("h3", {}, "Assessment"),
    assessment ? h("dl", { id: "detail-assessment", class: "facts" },
      h("dt", {}, "Grade"), h("dd", {}, humanise(assessment.grade)),
      assessment.grade_reason ? [h("dt", {}, "Why"), h("dd", {}, assessment.grade_reason)] : null,
      h("dt", {}, "Repeat-victim check"), h("dd", {}, humanise(assessment.repeat_victim_check || "not recorded")),
      Object.entries(assessment.elements || {}).map(([element, value]) => [
        h("dt", {}, (labels.elements || {})[element] || humanise(element)), h("dd", {}, humanise(value.risk))]),
      h("dt", {}, "Submitted"), h("dd", {}, `${assessment.submitted_by || ""} ${time(assessment.submitted_at)}`.trim()))
      : h("p", { class: "muted", id: "detail-assessment" }, "Not assessed yet."));
}
