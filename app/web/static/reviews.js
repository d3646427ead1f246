// A handler's own QA reviews: each reviewed call with every standard's answer (met or not,
// in words and a symbol) and the reviewer's feedback. The API gives a handler their own
// reviews only.

import { ApiError, api } from "./api.js";
import { $, date, h, humanise, monthLabel, replaceChildren, setText } from "./dom.js";

const page = $("reviews-page");

function result(answer) {
  if (!answer.applicable) return h("span", { class: "result na" }, "\u2013 Not applicable");
  return answer.met
    ? h("span", { class: "result met" }, "\u2714 Met")
    : h("span", { class: "result not-met" }, "\u2716 Not met");
}

function reviewCard(review, titles) {
  const headingId = `review-${review.id}-h`;
  return h("article", { class: "panel review-card", "aria-labelledby": headingId, "data-call-id": review.call_id },
    h("h2", { id: headingId }, `Call ${review.call_id}, ${monthLabel(review.month, "long")}`),
    h("p", { class: "small muted" }, `Reviewed on ${date(review.reviewed_at)}`
      + (review.calibration ? " (a second review, for calibration between reviewers)" : "")),
    h("table", { class: "board" },
      h("caption", { class: "sr-only" }, `Answers for call ${review.call_id}`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Standard"), h("th", { scope: "col" }, "Answer"),
        h("th", { scope: "col" }, "Result"), h("th", { scope: "col" }, "Feedback"))),
      h("tbody", {}, review.answers.map((a) => h("tr", { "data-standard": a.standard },
        h("th", { scope: "row" }, titles.get(a.standard) || humanise(a.standard)),
        h("td", {}, humanise(a.answer)),
        h("td", {}, result(a)),
        h("td", { class: "feedback" }, a.feedback || h("span", { class: "muted" }, "None")))))));
}

async function start() {
  const month = new URLSearchParams(window.location.search).get("month") || "";
  $("month").value = month;
  try {
    const form = await api("GET", "/api/v1/qa/form");
    const titles = new Map(form.standards.map((s) => [s.id, s.title]));
    const body = await api("GET", "/api/v1/qa/reviews?limit=200" + (month ? `&month=${encodeURIComponent(month)}` : ""));
    setText($("reviews-count"), body.items.length
      ? `${body.items.length} review${body.items.length === 1 ? "" : "s"}${month ? ` of calls offered in ${monthLabel(month, "long")}` : ""}.`
      : "No reviews of your calls yet.");
    replaceChildren($("reviews"), body.items.map((r) => reviewCard(r, titles)));
    page.dataset.state = "ready";
  } catch (err) {
    page.dataset.state = "error";
    setText($("reviews-error"), `Could not load your reviews: ${err instanceof ApiError ? err.explain() : err.message}`);
  }
}

start();
