// Drawing the handler's screen from the desk's state (handler_calls.js): the call tabs, the
// panels (panels.js), the narrative box, the assessment form, and the "Not saved" lines of
// each area with the connection badge. What the handler clicks goes to `actions`.

import { $, callerText, h, humanise, keyed, replaceChildren, setText, time } from "./dom.js";
import { blankForm, sentence, showProblems, writeForm } from "./form.js";
import { ENDED, desk, isActive, isWrapUp, mine, shown } from "./handler_calls.js";
import { renderSuggestion } from "./grading.js";
import { bindStatus } from "./live.js";
import {
  renderAdvice, renderAlerts, renderCallCard, renderCues, renderHousehold, renderOtherRinging, renderThrive,
} from "./panels.js";
import { renderQualifiers } from "./qualifiers.js";

// writes: handler_writes.js; names: the packs' words for incident types and markers;
// grading: the suggested-grade tables (grading.js); ringer: the ring tone (ring.js);
// actions: acknowledge(callId, alertId, button), tick(kind, id, on), pick(callId),
// resolveConflict(screen, load); identify: the Find and link panel (identify.js).
export function createView({ writes, names, grading, ringer, identify, actions }) {
  const baseTitle = document.title;
  let feedStatus = "connecting";
  const showBadge = bindStatus($("conn"), $("main"));
  let shownNarrativeFor = null;
  let shownFormFor = null;

  // "Live" only when the socket is live and every write is confirmed.
  function renderBadge() {
    const pending = writes.unconfirmed;
    const status = feedStatus === "live" && pending ? "unsaved" : feedStatus;
    showBadge(status, pending);
  }

  function render() {
    const screen = shown();
    renderCallList();
    // A ringing call shows in the tab's title too (the window may be behind another).
    const ringingCalls = [...desk.screens.values()].filter((s) => s.call.state === "ringing" && isActive(s));
    document.title = ringingCalls.length ? `\u260E Ringing \u00B7 ${baseTitle}` : baseTitle;
    ringer.set(ringingCalls.length > 0);
    renderOtherRinging(ringingCalls.filter((s) => s !== screen), { pick: actions.pick });
    document.body.dataset.hasCall = screen ? "yes" : "no";
    renderCallCard(screen, { me: desk.me, pinned: desk.pinned, wrapUp: Boolean(screen && isWrapUp(screen)) });
    renderAlerts(screen, { names, acknowledge: actions.acknowledge });
    renderHousehold(screen, { names });
    identify.update(screen && { id: screen.call.id, open: isActive(screen) || isWrapUp(screen) });
    renderThrive(screen, { current: desk.current, tick: actions.tick });
    renderQualifiers(screen ? screen.thrive : null, desk.current);
    renderAdvice(screen, { tick: actions.tick });
    renderCues(screen);
    renderNarrative(screen);
    renderAssessment(screen);
    renderSuggestion(screen, grading);
    renderWrites();
  }

  function renderCallList() {
    const list = $("call-list");
    const items = [...desk.screens.values()]
      .filter((s) => isActive(s) || isWrapUp(s) || s.call.id === desk.current)
      .sort((a, b) => String(a.call.offered_at || "").localeCompare(String(b.call.offered_at || "")));
    list.hidden = items.length < 2;
    keyed(list, items, (s) => s.call.id, (s) => {
      const button = h("button", { type: "button", class: "call-tab" });
      button.addEventListener("click", () => actions.pick(s.call.id));
      return button;
    }, (el, s) => {
      const wrapUp = isWrapUp(s);
      const unsaved = writes.pendingFor(s.call.id, "narrative", "incident", "advice", "prompts", "draft", "assessment").count;
      setText(el, `Call ${s.call.id} \u00B7 ${wrapUp ? "wrap-up: assessment due" : humanise(s.call.state)}`
        + ` \u00B7 ${callerText(s.call)}${unsaved ? " \u00B7 not saved" : ""}`);
      el.dataset.callId = s.call.id;
      el.dataset.wrapUp = wrapUp ? "true" : "false";
      el.setAttribute("aria-current", s.call.id === desk.current ? "true" : "false");
    });
  }

  function renderNarrative(screen) {
    const box = $("narrative");
    box.disabled = !screen;
    if (!screen) { shownNarrativeFor = null; box.value = ""; return; }
    if (shownNarrativeFor !== screen.call.id
        || (document.activeElement !== box && box.value !== screen.narrative)) {
      box.value = screen.narrative || "";
      shownNarrativeFor = screen.call.id;
    }
  }

  function renderAssessment(screen) {
    const form = $("assessment");
    const id = screen ? screen.call.id : null;
    const switched = shownFormFor !== id;
    shownFormFor = id;
    for (const control of form.querySelectorAll("select, textarea, input")) control.disabled = !screen;
    writeForm(form, screen ? screen.form : blankForm(), switched ? null : document.activeElement);
    const loose = showProblems(screen ? screen.problems : []);
    const submitting = screen ? writes.pendingFor(id, "assessment").count > 0 : false;
    form.querySelector("button[type=submit]").disabled = !screen || submitting;
    const defer = $("defer");
    defer.hidden = !screen || screen.call.state !== ENDED || Boolean(screen.assessment) || !mine(screen);
    setText(defer, screen && screen.deferred ? "Take back the deferral" : "Defer assessment");
    defer.setAttribute("aria-pressed", screen && screen.deferred ? "true" : "false");
    form.dataset.callId = id ?? "";
    form.dataset.loose = loose.map((p) => sentence(p.reason)).join(" ");
    form.dataset.looseCount = String(loose.length);
  }

  // The "Not saved" lines of each area, the conflict choice of the draft, the badge.
  function renderWrites() {
    renderBadge();
    const screen = shown();
    const line = (el, text, kind) => {
      setText(el, text);
      if (kind) el.dataset.kind = kind; else delete el.dataset.kind;
    };
    const area = (el, areas, refusal) => {
      if (!screen) return line(el, "", null);
      const { count, error } = writes.pendingFor(screen.call.id, ...areas);
      if (count) return line(el, `Not saved${error ? ` (${error}): will retry` : ""}`, "pending");
      return line(el, refusal || "", refusal ? "error" : null);
    };
    const r = screen ? screen.refusals : {};
    area($("narrative-status"), ["narrative"], r.narrative);
    area($("thrive-status"), ["incident", "qualifiers", "advice"], r.incident || r.qualifiers || r.advice);
    area($("prompts-status"), ["prompts"], r.prompts);

    const draft = $("draft-status");
    if (screen && screen.conflict) {
      const other = screen.conflict;
      const keep = h("button", { type: "button", class: "secondary" }, "Keep this form");
      keep.addEventListener("click", () => actions.resolveConflict(screen, false));
      const load = h("button", { type: "button", class: "secondary" }, "Load the saved one");
      load.addEventListener("click", () => actions.resolveConflict(screen, true));
      replaceChildren(draft, h("span", {}, `This call's draft was saved in another tab or window`
        + ` (revision ${other.revision}). Nothing here was saved over it. `), keep, " ", load);
      draft.dataset.kind = "error";
    } else {
      const { count, error } = screen ? writes.pendingFor(screen.call.id, "draft") : { count: 0 };
      if (count) line(draft, `Draft not saved${error ? ` (${error}): will retry` : ""}`, "pending");
      else if (screen && screen.refusals.draft) line(draft, screen.refusals.draft, "error");
      else if (screen && screen.deferred) line(draft, `Assessment deferred${screen.deferredAt ? " at " + time(screen.deferredAt) : ""}.`, "note");
      else if (screen && screen.draftRevision) line(draft, "Draft saved.", "note");
      else line(draft, "", null);
    }

    const status = $("assessment-status");
    const submitting = screen ? writes.pendingFor(screen.call.id, "assessment") : { count: 0 };
    if (screen && submitting.count) {
      delete status.dataset.version;
      line(status, `Not saved: the assessment is waiting to be sent${submitting.error ? ` (${submitting.error})` : ""}.`, "pending");
    } else if (screen && screen.refusals.assessment) {
      delete status.dataset.version;
      const loose = $("assessment").dataset.loose;
      const placed = screen.problems.length - Number($("assessment").dataset.looseCount || 0);
      const parts = [placed ? `${placed} problem${placed === 1 ? "" : "s"} to fix, each marked beside its field` : "", loose]
        .filter(Boolean);
      line(status, `${screen.refusals.assessment}: ${parts.join(". ")}`.replace(/([^.])$/, "$1."), "error");
    } else if (screen && screen.assessment) {
      const a = screen.assessment;
      status.dataset.version = a.version;
      line(status, `\u2714 Assessment version ${a.version} submitted at ${time(a.submitted_at)} (grade: ${humanise(a.grade)}).`, "ok");
    } else {
      delete status.dataset.version;
      line(status, "", null);
    }
  }

  return {
    render,
    renderWrites,
    renderSuggestion: () => renderSuggestion(shown(), grading),
    feedStatus(status) {
      feedStatus = status;
      renderBadge();
    },
  };
}
