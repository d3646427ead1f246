// The QA screen: draw a sample, work through its calls, and grade each one against the QA
// form with the call's record beside it. Reads and writes the QA API with the session
// cookie. Keyboard first: every control is a native one with a label, each standard is a
// fieldset of radio buttons, problems are shown beside the standard they are about, and
// focus goes where the next thing to do is (the problems, then "Next call", then the record).

import { ApiError, api, fieldOf } from "./api.js";
import { $, date, h, humanise, monthLabel, replaceChildren, setText } from "./dom.js";
import { renderRecord } from "./qa_record.js";
import { buildForm, collect, resetForm, showProblems } from "./qa_review.js";

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

function shortDate(iso) {
  return iso ? new Date(iso).toLocaleDateString("en-GB", { day: "numeric", month: "short" }) : "";
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

// ---- the call's record and the review ------------------------------------------------------

function standardTitle(id) {
  const s = state.form && state.form.standards.find((x) => x.id === id);
  return s ? s.title : humanise(id);
}

async function submitReview(event) {
  event.preventDefault();
  if (!state.callId) return;
  const button = $("review-submit");
  button.disabled = true;
  setText($("review-status"), "");
  const callId = state.callId;
  try {
    const review = await api("POST", "/api/v1/qa/reviews", collect(state));
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
    if (err instanceof ApiError) showProblems(err, standardTitle);
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
    renderRecord(record, { labels, standardTitle });
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
