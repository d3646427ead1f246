// The QA review form: built from the QA form's standards, read back into a review, and the
// service's problems with a review shown beside the standards they are about.

import { fieldOf } from "./api.js";
import { $, h, humanise, replaceChildren, setText } from "./dom.js";

// The QA form (GET /api/v1/qa/form): a fieldset of radio buttons per standard, its guidance,
// a slot for its problem and a feedback box.
export function buildForm(form) {
  replaceChildren($("standards"), form.standards.map((s) => {
    const answers = [...s.answers];
    if (s.not_applicable_allowed && !answers.includes("not_applicable")) answers.push("not_applicable");
    return h("fieldset", {
      class: "standard",
      id: `std-${s.id}`,
      "data-standard": s.id,
      "aria-describedby": `std-${s.id}-guidance std-${s.id}-error`,
    },
    h("legend", {}, s.title),
    h("p", { id: `std-${s.id}-guidance`, class: "guidance small" }, s.guidance),
    h("div", { class: "answers" }, answers.map((answer) => {
      const id = `ans-${s.id}-${answer}`;
      const met = s.met.includes(answer);
      return h("div", { class: "answer" },
        h("input", { type: "radio", id, name: `answer-${s.id}`, value: answer }),
        h("label", { for: id }, humanise(answer), met ? h("span", { class: "met-mark" }, " \u2714 met") : null));
    })),
    h("p", { id: `std-${s.id}-error`, class: "field-error" }),
    h("label", { for: `fb-${s.id}`, class: "small" }, `Feedback to the handler on ${s.title.toLowerCase()} (optional)`),
    h("textarea", { id: `fb-${s.id}`, rows: 2, maxlength: 4000 }));
  }));
}

function clearProblems() {
  const box = $("review-problems");
  box.hidden = true;
  replaceChildren(box);
  for (const fs of document.querySelectorAll("#standards fieldset")) {
    fs.classList.remove("invalid");
    setText(fs.querySelector(".field-error"), "");
    for (const input of fs.querySelectorAll("input, textarea")) input.removeAttribute("aria-invalid");
  }
}

// The service's refusal of a review: each problem beside its standard, and a list of them all
// (links to the standards) that takes the focus.
export function showProblems(err, standardTitle) {
  clearProblems();
  const details = Array.isArray(err.details) ? err.details : [];
  const general = [];
  const byStandard = new Map();
  for (const d of details) {
    const [kind, standard] = fieldOf(d).split(".");
    const reason = d.reason || d.msg || "invalid";
    if ((kind === "answers" || kind === "feedback") && standard && $(`std-${standard}`)) {
      byStandard.set(standard, [...(byStandard.get(standard) || []), reason]);
    } else {
      general.push(reason);
    }
  }
  for (const [standard, reasons] of byStandard) {
    const fs = $(`std-${standard}`);
    fs.classList.add("invalid");
    setText(fs.querySelector(".field-error"), `\u26A0 ${reasons.join("; ")}`);
    for (const input of fs.querySelectorAll("input[type=radio]")) input.setAttribute("aria-invalid", "true");
  }
  const items = [
    ...general.map((reason) => h("li", {}, reason)),
    ...[...byStandard].map(([standard, reasons]) => {
      const link = h("a", { href: `#std-${standard}` }, `${standardTitle(standard)}: ${reasons.join("; ")}`);
      link.addEventListener("click", (event) => {
        event.preventDefault();
        const target = $(`std-${standard}`).querySelector("input:checked") || $(`std-${standard}`).querySelector("input");
        target.focus();
      });
      return h("li", {}, link);
    }),
  ];
  if (!items.length) items.push(h("li", {}, err.explain ? err.explain() : err.message));
  const box = $("review-problems");
  replaceChildren(box, h("h3", {}, "The review was not saved"), h("ul", {}, items));
  box.hidden = false;
  box.focus();
}

export function resetForm() {
  $("review").reset();
  clearProblems();
}

// The review as the QA API takes it, for the open call (`state`: the QA screen's).
export function collect(state) {
  const answers = {};
  const feedback = {};
  for (const s of state.form.standards) {
    const picked = document.querySelector(`input[name="answer-${s.id}"]:checked`);
    if (picked) answers[s.id] = picked.value;
    const text = $(`fb-${s.id}`).value.trim();
    if (text) feedback[s.id] = text;
  }
  const body = { call_id: state.callId, answers, feedback };
  if (state.sample && state.sample.calls.some((c) => c.call_id === state.callId)) body.sample_id = state.sample.id;
  return body;
}
