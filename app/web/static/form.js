// The assessment form of the handler's screen. Its values belong to one call (the screen
// state of that call holds them; the page draws them into the form when the call is shown and
// reads them back on every edit), so switching calls never carries a value over.
// Also: the service's field problems (a 422) shown beside each field.

import { h } from "./dom.js";

export const ELEMENTS = ["threat", "harm", "risk", "investigation", "vulnerability", "engagement",
  "prevention", "preservation"];

export function blankForm() {
  return { grade: null, grade_reason: "", elements: {}, repeat_victim_check: null, victim: false };
}

// The draft as the service returns it -> the form's values.
export function formOf(draft) {
  const form = blankForm();
  if (!draft) return form;
  form.grade = draft.grade || null;
  form.grade_reason = draft.grade_reason || "";
  for (const [element, value] of Object.entries(draft.elements || {})) {
    form.elements[element] = { risk: value.risk || null, text: value.text || "" };
  }
  form.repeat_victim_check = draft.repeat_victim_check || null;
  form.victim = Boolean(draft.victim);
  return form;
}

function controls(formEl) {
  const q = (sel) => formEl.querySelector(sel);
  return {
    grade: q("[name=grade]"),
    reason: q("[name=grade_reason]"),
    rvc: q("[name=repeat_victim_check]"),
    victim: q("[name=victim]"),
    rows: [...formEl.querySelectorAll("[data-element]")],
  };
}

export function readForm(formEl) {
  const c = controls(formEl);
  const elements = {};
  for (const row of c.rows) {
    const risk = row.querySelector("select").value || null;
    const text = row.querySelector("textarea").value;
    // Untouched rows are not part of the draft (an element left as it came).
    if (text || risk !== "not_applicable") elements[row.dataset.element] = { risk, text };
  }
  return {
    grade: c.grade.value || null,
    grade_reason: c.reason.value,
    elements,
    repeat_victim_check: c.rvc.value || null,
    victim: c.victim.checked,
  };
}

// Draw `form` into the form; `keep` (the focused control) is left as the handler is typing it.
export function writeForm(formEl, form, keep) {
  const c = controls(formEl);
  const set = (el, value) => {
    if (el === keep) return;
    if (el.type === "checkbox") {
      if (el.checked !== value) el.checked = value;
    } else if (el.value !== value) {
      el.value = value;
    }
  };
  set(c.grade, form.grade || "");
  set(c.reason, form.grade_reason || "");
  set(c.rvc, form.repeat_victim_check || "");
  set(c.victim, Boolean(form.victim));
  for (const row of c.rows) {
    const value = form.elements[row.dataset.element] || {};
    set(row.querySelector("select"), value.risk || "not_applicable");
    set(row.querySelector("textarea"), value.text || "");
  }
}

// What an assessment submission sends: every element (untouched ones "not applicable").
export function assessmentOf(form) {
  const elements = {};
  for (const element of ELEMENTS) {
    const value = form.elements[element] || {};
    elements[element] = { risk: value.risk || "not_applicable", text: (value.text || "").trim() };
  }
  const reason = (form.grade_reason || "").trim();
  return {
    grade: form.grade || null,
    grade_reason: reason || null,
    elements,
    repeat_victim_check: form.repeat_victim_check || null,
    victim: Boolean(form.victim),
  };
}

// ---- the service's problems, beside their fields ---------------------------------------------

// The service's refusal -> [{field, reason}]: `assessment_invalid` lists fields; a schema
// refusal (`validation_error`) gives locations, turned into the same field names.
export function problemsOf(err) {
  const details = err && err.details;
  if (Array.isArray(details) && details.length) {
    return details.map((d) => {
      if (d.field) return { field: String(d.field), reason: d.reason || d.msg || "invalid" };
      const loc = (d.loc || []).filter((part, i) => !(i === 0 && part === "body"));
      return { field: loc.join(".") || "form", reason: friendly(d) };
    });
  }
  if (err && err.code === "unknown_incident_type") return [{ field: "incident_type", reason: err.message }];
  return [{ field: "form", reason: err ? err.message : "refused" }];
}

function friendly(detail) {
  if (detail.type === "missing" || /valid string|valid enumeration|should be '/.test(detail.msg || "")) {
    const field = (detail.loc || [])[detail.loc.length - 1];
    if (field === "grade") return "Choose a grade.";
    if (field === "incident_type") return "Choose the incident type.";
  }
  return detail.msg || "invalid";
}

// Where each problem is shown: the control it is about (element rows: their risk or notes).
function targetOf(field) {
  const byId = {
    grade: "grade", grade_reason: "grade-reason", incident_type: "incident-type",
    repeat_victim_check: "rvc", victim: "victim", advice_given: "advice",
    prompts_answered: "prompts", elements: "elements",
  };
  if (byId[field]) return document.getElementById(byId[field]);
  const match = /^elements\.([a-z_]+)(?:\.(risk|text))?$/.exec(field);
  if (match) return document.getElementById(`el-${match[1]}-${match[2] || "risk"}`);
  return null;
}

// The service's reasons are written to follow a field's name ("choose a grade"): beside the
// field they stand alone, as a sentence.
export function sentence(reason) {
  const text = String(reason || "").trim();
  if (!text) return "";
  return text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?]$/.test(text) ? "" : ".");
}

const slug = (field) => "err-" + field.replace(/[^a-z0-9]+/gi, "-");

// Show `problems` beside their fields (aria-invalid + aria-describedby); clear the others.
// Problems without a field of their own are returned for the form's status line.
export function showProblems(problems) {
  for (const el of document.querySelectorAll("[aria-invalid=true]")) {
    el.removeAttribute("aria-invalid");
    const kept = (el.getAttribute("aria-describedby") || "").split(/\s+/).filter((id) => id && !id.startsWith("err-"));
    if (kept.length) el.setAttribute("aria-describedby", kept.join(" "));
    else el.removeAttribute("aria-describedby");
  }
  for (const slot of document.querySelectorAll(".field-error")) slot.remove();
  const loose = [];
  for (const problem of problems) {
    const target = targetOf(problem.field);
    if (!target) {
      loose.push(problem);
      continue;
    }
    const id = slug(problem.field);
    let slot = document.getElementById(id);
    if (!slot) {
      slot = h("p", { class: "field-error", id, "data-field": problem.field });
      const anchor = target.closest(".element, .grade-line") || target;
      if (target.id === "elements") target.querySelector("legend").after(slot);
      else anchor.after(slot);
    }
    slot.append(h("span", { "aria-hidden": "true" }, "\u26A0 "), sentence(problem.reason), " ");
    target.setAttribute("aria-invalid", "true");
    const ids = (target.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
    if (!ids.includes(id)) target.setAttribute("aria-describedby", [...ids, id].join(" "));
  }
  return loose;
}
