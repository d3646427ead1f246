// The QA screen: draw a sample, work through its calls, and grade each one against the QA
// form with the call's record beside it. Reads and writes the QA API with the session
// cookie. Keyboard first: every control is a native one with a label, each standard is a
// fieldset of radio buttons, problems are shown beside the standard they are about, and
// focus goes where the next thing to do is (the problems, then "Next call", then the record).

import { ApiError, api } from "./api.js";
import { date, duration, h, humanise, replaceChildren, setText, severityBadge, time } from "./dom.js";

const $ = (id) => document.getElementById(id);
const root = $("qa");
const labels = JSON.parse($("labels").textContent || "{}");

const state = {
  form: null, // GET /api/v1/qa/form
  samples: [], // newest first
  sample: null, // the sample shown
  callId: null, // the call open for review
  record: null,
};

// ---- URL: ?sample=<id>&call=<id> keeps the place across a reload ---------------------------

function readUrl() {
  const params = new URLSearchParams(window.location.search);
  const number = (name) => {
    const value = Number(params.get(name));
    return Number.isInteger(value) && value > 0 ? value : null;
  };
  return { sample: number("sample"), call: number("call") };
}

function writeUrl() {
  const params = new URLSearchParams();
  if (state.sample) params.set("sample", state.sample.id);
  if (state.callId) params.set("call", state.callId);
  const query = params.toString();
  window.history.replaceState(null, "", "/qa" + (query ? "?" + query : ""));
}

function monthLabel(month) {
  if (!month) return "";
  const [year, number] = month.split("-").map(Number);
  return new Date(Date.UTC(year, number - 1, 1)).toLocaleDateString("en-GB", { month: "short", year: "numeric", timeZone: "UTC" });
}

function shortDate(iso) {
  return iso ? new Date(iso).toLocaleDateString("en-GB", { day: "numeric", month: "short" }) : "";
}

function when(iso) {
  return iso ? `${date(iso)} ${time(iso)}` : "\u2014";
}

// ---- drawing a sample ----------------------------------------------------------------------

function defaultMonth() {
  // Last month: the month a QA team samples at the start of this one.
  const now = new Date();
  const last = new Date(now.getFullYear(), now.getMonth() - 1, 1);
  return `${last.getFullYear()}-${String(last.getMonth() + 1).padStart(2, "0")}`;
}

function drawBody() {
  // An empty box is sent as null (the service says it is needed), never as 0.
  const number = (id) => ($(id).value.trim() === "" ? null : Number($(id).value));
  const body = { month: $("d-month").value, per_handler: number("d-per"), seed: number("d-seed") };
  const queue = $("d-queue").value.trim();
  if (queue) body.queue = queue;
  if ($("d-talk").value !== "") body.min_talk_seconds = Number($("d-talk").value);
  if ($("d-flagged").checked) body.flagged_only = true;
  if ($("d-one-flagged").checked) body.at_least_one_flagged = true;
  return body;
}

const DRAW_FIELDS = { month: "d-month", per_handler: "d-per", seed: "d-seed", queue: "d-queue", min_talk_seconds: "d-talk" };

function fieldOf(detail) {
  if (detail.field) return String(detail.field);
  if (Array.isArray(detail.loc)) return detail.loc.slice(1).join(".");
  return "";
}

function showDrawError(err) {
  for (const id of Object.values(DRAW_FIELDS)) $(id).removeAttribute("aria-invalid");
  const details = err instanceof ApiError && err.details;
  const list = Array.isArray(details) ? details : details && typeof details === "object" ? [details] : [];
  const reasons = [];
  for (const d of list) {
    const id = DRAW_FIELDS[fieldOf(d).split(".")[0]];
    if (id) $(id).setAttribute("aria-invalid", "true");
    // Name the field in words (its label): "Seed: Input should be a valid integer".
    if (id && (d.reason || d.msg)) reasons.push(`${document.querySelector(`label[for="${id}"]`).textContent}: ${d.reason || d.msg}`);
  }
  const why = reasons.length ? reasons.join("; ") : (err instanceof ApiError ? err.explain() : err.message);
  replaceChildren($("draw-error"), `Not drawn: ${why}`);
}

async function draw(event) {
  event.preventDefault();
  const button = $("draw").querySelector("button[type=submit]");
  button.disabled = true;
  replaceChildren($("draw-error"));
  try {
    const sample = await api("POST", "/api/v1/qa/samples", drawBody());
    for (const id of Object.values(DRAW_FIELDS)) $(id).removeAttribute("aria-invalid");
    await loadSamples();
    showSample(sample);
    closeCall();
    writeUrl();
    $("sample-summary").focus();
  } catch (err) {
    showDrawError(err);
  } finally {
    button.disabled = false;
  }
}

// ---- samples -------------------------------------------------------------------------------

function sampleOption(s) {
  const filters = Object.entries(s.criteria || {}).filter(([, v]) => v !== null && v !== false)
    .map(([k, v]) => (v === true ? humanise(k) : `${humanise(k)} ${v}`));
  return `Sample ${s.id}: ${monthLabel(s.month)}, seed ${s.seed}, ${s.per_handler} per handler`
    + (filters.length ? ` (${filters.join(", ")})` : "") + `, by ${s.drawn_by} ${date(s.drawn_at)}`;
}

async function loadSamples() {
  const body = await api("GET", "/api/v1/qa/samples?limit=50");
  state.samples = body.items;
  const pick = $("sample-pick");
  const current = state.sample ? String(state.sample.id) : "";
  pick.replaceChildren(...(state.samples.length
    ? state.samples.map((s) => h("option", { value: s.id }, sampleOption(s)))
    : [h("option", { value: "" }, "No sample yet")]));
  pick.value = current;
}

function showSample(sample) {
  state.sample = sample;
  const known = state.samples.find((s) => s.id === sample.id);
  if (!known) state.samples.unshift(sample);
  $("sample-pick").value = String(sample.id);
  const reviewed = sample.calls.filter((c) => c.reviewed).length;
  setText($("sample-summary"), `Sample ${sample.id}, ${monthLabel(sample.month)}: ${sample.calls.length} calls `
    + `from ${sample.handlers} handler${sample.handlers === 1 ? "" : "s"}; ${reviewed} reviewed, `
    + `${sample.calls.length - reviewed} to review.`);
  $("sample-summary").dataset.sampleId = sample.id;
  replaceChildren($("shortfalls"), sample.shortfalls.map((s) => h("li", {},
    `${s.handler_id} had ${s.eligible} eligible call${s.eligible === 1 ? "" : "s"}: ${s.drawn} drawn.`)));
  renderSampleRows();
}

function reviewStatus(call) {
  if (!call.reviewed) return "Not reviewed";
  return call.reviews > 1 ? `Reviewed (${call.reviews} reviews)` : "Reviewed";
}

function renderSampleRows() {
  const sample = state.sample;
  $("sample-calls").hidden = !sample;
  if (!sample) return;
  replaceChildren($("sample-rows"), sample.calls.map((c) => {
    const open = c.call_id === state.callId;
    const link = h("a", {
      href: `/qa?sample=${sample.id}&call=${c.call_id}`,
      "aria-current": open ? "true" : null,
      "aria-label": `Call ${c.call_id}, ${reviewStatus(c).toLowerCase()}: open to review`,
    }, `Call ${c.call_id}`);
    link.addEventListener("click", (event) => {
      event.preventDefault();
      openCall(c.call_id, { focus: "record" });
    });
    return h("tr", {
      class: (open ? "selected " : "") + (c.reviewed ? "reviewed" : ""),
      "data-call-id": c.call_id,
      "data-reviewed": c.reviewed ? "true" : "false",
    },
    h("th", { scope: "row" }, link),
    h("td", {}, c.handler_id),
    h("td", {}, shortDate(c.offered_at)),
    h("td", {}, c.flagged ? "\u2691 Yes" : "No"),
    h("td", { class: "review-state" }, c.reviewed ? "\u2714 " : "\u25CB ", reviewStatus(c)));
  }));
  updateNext();
}

async function pickSample() {
  const id = Number($("sample-pick").value);
  if (!id) return;
  try {
    showSample(await api("GET", `/api/v1/qa/samples/${id}`));
    closeCall();
    writeUrl();
  } catch (err) {
    setText($("sample-summary"), `Sample ${id}: ${err.message}`);
  }
}

// ---- the call's record ---------------------------------------------------------------------

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function advice(id) {
  const item = (labels.advice || {})[id];
  return item ? item.text : humanise(id);
}

function prompt(id) {
  const item = (labels.prompts || {})[id];
  return item ? `${item.element}: ${item.text}` : humanise(id);
}

function incident(id) {
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

function renderRecord(record) {
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
      h("div", { class: "small" }, al.acknowledged_at
        ? `\u2714 Acknowledged by ${al.acknowledged_by || "?"} at ${time(al.acknowledged_at)}`
        : "\u2716 Not acknowledged"),
    ])),
    section("THRIVE+ during the call",
      facts([["Incident type", incident(thrive.incident_type)]]),
      h("h4", {}, "Prompts answered"),
      list(thrive.prompts_answered, "None recorded.", prompt),
      h("h4", {}, "Advice given"),
      list(thrive.advice_given, "None recorded.", advice)),
    section("THRIVE+ assessment", a ? [
      facts([
        ["Version", `${a.version}, by ${a.submitted_by} at ${when(a.submitted_at)}`],
        ["Incident type", incident(a.incident_type)],
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
      list(Object.values(a.advice_given || {}).flat(), "None.", advice),
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

function standardTitle(id) {
  const s = state.form && state.form.standards.find((x) => x.id === id);
  return s ? s.title : humanise(id);
}

// ---- the review form -----------------------------------------------------------------------

function buildForm(form) {
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

function showProblems(err) {
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

function resetForm() {
  $("review").reset();
  clearProblems();
}

function collect() {
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

async function submitReview(event) {
  event.preventDefault();
  if (!state.callId) return;
  const button = $("review-submit");
  button.disabled = true;
  setText($("review-status"), "");
  const callId = state.callId;
  try {
    const review = await api("POST", "/api/v1/qa/reviews", collect());
    resetForm();
    if (state.sample) showSample(await api("GET", `/api/v1/qa/samples/${state.sample.id}`));
    const status = $("review-status");
    status.dataset.reviewId = review.id;
    const next = nextCall();
    setText(status, `\u2714 Review of call ${callId} saved${review.calibration ? " (a calibration review: the first review counts in the table)" : ""}.`
      + (next ? ` Next: call ${next}.` : " Every call in this sample is reviewed."));
    $("review").hidden = true;
    setText($("review-for"), `Call ${callId} reviewed.`);
    // Onwards: to the next call when there is one, else to what was just said.
    if (next) $("next-call").focus();
    else status.focus();
  } catch (err) {
    if (err instanceof ApiError) showProblems(err);
    else setText($("review-status"), `Not saved: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

// ---- opening calls -------------------------------------------------------------------------

function nextCall() {
  // The next call of the sample, after the open one, that nobody has reviewed yet.
  if (!state.sample) return null;
  const calls = state.sample.calls;
  const from = calls.findIndex((c) => c.call_id === state.callId) + 1;
  for (let step = 0; step < calls.length; step += 1) {
    const c = calls[(from + step) % calls.length];
    if (!c.reviewed && c.call_id !== state.callId) return c.call_id;
  }
  return null;
}

function updateNext() {
  const next = nextCall();
  const button = $("next-call");
  button.disabled = !next;
  setText(button, next ? `Next call (${next})` : "Next call");
}

function closeCall() {
  state.callId = null;
  state.record = null;
  $("review").hidden = true;
  setText($("review-for"), "Open a call to review it.");
  setText($("record-h"), "Call record");
  replaceChildren($("record"), h("p", { class: "muted" }, "Open a call from the sample to see its record here."));
  renderSampleRows();
}

async function openCall(callId, { focus } = {}) {
  state.callId = callId;
  writeUrl();
  renderSampleRows();
  setText($("review-status"), "");
  root.dataset.state = "loading";
  try {
    const record = await api("GET", `/api/v1/qa/calls/${callId}`);
    if (state.callId !== callId) return; // another call was opened meanwhile
    state.record = record;
    renderRecord(record);
    resetForm();
    const mine = record.reviews.some((r) => r.reviewer_id === root.dataset.staff);
    $("review").hidden = mine;
    setText($("review-for"), mine
      ? `You have reviewed call ${callId} already; another reviewer may review it for calibration.`
      : `Grading call ${callId} (handler ${record.call.handler_id || "unknown"}, ${monthLabel(record.call.month)}).`);
    root.dataset.state = "ready";
    if (focus === "record") $("record-panel").focus();
  } catch (err) {
    root.dataset.state = "error";
    replaceChildren($("record"), h("p", { class: "form-error" }, `Call ${callId}: ${err.message}`));
    $("review").hidden = true;
  }
}

function goNext() {
  const next = nextCall();
  if (next) openCall(next, { focus: "record" });
}

// ---- start ---------------------------------------------------------------------------------

async function start() {
  $("d-month").value = defaultMonth();
  $("d-seed").value = String(Math.floor(Math.random() * 1_000_000));
  $("draw").addEventListener("submit", draw);
  $("sample-pick").addEventListener("change", pickSample);
  $("review").addEventListener("submit", submitReview);
  $("next-call").addEventListener("click", goNext);

  try {
    state.form = await api("GET", "/api/v1/qa/form");
    buildForm(state.form);
    await loadSamples();
    const wanted = readUrl();
    const sampleId = wanted.sample || (state.samples[0] && state.samples[0].id);
    if (sampleId) showSample(await api("GET", `/api/v1/qa/samples/${sampleId}`));
    if (wanted.call) await openCall(wanted.call);
    else writeUrl();
    root.dataset.state = "ready";
  } catch (err) {
    root.dataset.state = "error";
    replaceChildren($("record"), h("p", { class: "form-error" }, `Could not load the QA screen: ${err.message}`));
  }
}

start();
