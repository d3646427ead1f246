// The call's suggested grade beside the grade control, from the ring on: the most urgent grade
// any of its alerts suggests (the alert's own suggestion, else its severity's), with the alerts
// behind it. The service applies the same rule when it checks a submission (a grade below it
// needs a reason); the page is given the rule's tables (`labels.grading`), not its own copy.

import { $, h, humanise, replaceChildren } from "./dom.js";

// grading: { by_severity: {severity: grade}, order: [grade, ...] most urgent first }.
export function suggestionFor(alerts, grading) {
  const order = grading.order || [];
  const suggests = (a) => (order.includes(a.suggested_grade) ? a.suggested_grade
    : (grading.by_severity || {})[a.severity] || null);
  let best = null;
  for (const alert of alerts) {
    const grade = suggests(alert);
    if (grade && (best === null || order.indexOf(grade) < order.indexOf(best))) best = grade;
  }
  if (best === null) return null;
  return { grade: best, because: alerts.filter((a) => suggests(a) === best) };
}

export function isBelow(grade, suggested, grading) {
  const order = grading.order || [];
  return Boolean(grade && suggested) && order.indexOf(grade) > order.indexOf(suggested);
}

// Draw the suggestion for `screen` (null: no call) beside #grade.
export function renderSuggestion(screen, grading) {
  const box = $("grade-suggestion");
  const alerts = screen ? [...screen.alerts.values()] : [];
  const suggestion = suggestionFor(alerts, grading);
  const chosen = screen && screen.form ? screen.form.grade : null;
  const below = suggestion ? isBelow(chosen, suggestion.grade, grading) : false;
  const signature = JSON.stringify([suggestion && suggestion.grade,
    suggestion && suggestion.because.map((a) => a.alert_id), below]);
  if (box.dataset.signature === signature) return;
  box.dataset.signature = signature;
  box.dataset.grade = suggestion ? suggestion.grade : "";
  box.dataset.below = below ? "true" : "false";
  if (!suggestion) {
    replaceChildren(box, h("p", { class: "muted small" },
      screen ? "No suggestion: no alert on this call suggests a grade." : "No call on screen."));
    return;
  }
  const name = gradeName(suggestion.grade);
  replaceChildren(box,
    h("p", { class: "suggested" }, "Suggested: ", h("strong", {}, name)),
    h("p", { class: "small because" }, "Because of: ",
      suggestion.because.map((a) => `${humanise(a.kind)} (${a.severity} alert)`).join(", "), "."),
    below ? h("p", { class: "small below" }, h("span", { "aria-hidden": "true" }, "\u26A0 "),
      `Below ${name}: give a reason.`) : null);
}

function gradeName(grade) {
  const option = document.querySelector(`#grade option[value="${grade}"]`);
  return option ? option.textContent : humanise(grade);
}
