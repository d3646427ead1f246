// What the handler enters, on its way to the service: one write queue (queue.js: in order,
// each confirmed, kept in sessionStorage across a reload) and the pauses in typing that a
// narrative or a draft waits for before it is queued. What the service confirms or refuses is
// laid back over the call's screen state (handler_calls.js); the page redraws through `hooks`.

import { applyCue, applyDraft, applyThrive, desk, screenFor } from "./handler_calls.js";
import { problemsOf } from "./form.js";
import { WriteQueue } from "./queue.js";

const NARRATIVE_PAUSE_MS = 350; // one post after the handler pauses, not one per keystroke
const DRAFT_PAUSE_MS = 600;

const callPath = (callId, tail) => `/api/v1/calls/${callId}/${tail}`;
const same = (kind, callId) => (e) => e.kind === kind && e.callId === callId;

// hooks: settled() after a confirmed write (the call on screen may change, then a redraw),
// submitted(callId) after an assessment is filed, render() and renderWrites() (the "Not
// saved" lines and the badge only).
export function createWrites(hooks) {
  // Writes confirmed while a read of the service's state is out. A read can be answered from
  // a state taken before a write was stored and arrive after that write was confirmed (it has
  // left the queue by then): laid over the read like the queued ones, it is not undone.
  const reads = { open: 0, count: 0, settled: [] }; // settled: [number, entry], oldest first

  const queue = new WriteQueue({
    storageKey: `firstcontact.writes.${desk.me}`,
    prepare(entry) {
      // A draft is saved over the revision the last confirmed save returned.
      if (entry.kind === "draft") entry.body.revision = screenFor(entry.callId).draftRevision;
    },
    onConfirmed(entry, body) {
      const screen = screenFor(entry.callId);
      reads.count += 1;
      if (reads.open) reads.settled.push([reads.count, { ...entry, result: body }]);
      delete screen.refusals[entry.area];
      if (entry.kind === "narrative") (body.new_cues || []).forEach((c) => applyCue(entry.callId, c));
      else if (entry.kind === "incident" || entry.kind === "qualifiers") applyThrive(entry.callId, body);
      else if (entry.kind === "draft") applyDraft(screen, body);
      else if (entry.kind === "assessment") {
        screen.assessment = body;
        screen.problems = [];
      }
      hooks.settled();
      if (entry.kind === "assessment" && hooks.submitted) hooks.submitted(entry.callId);
    },
    onRefused(entry, err) {
      const screen = screenFor(entry.callId);
      const why = err.explain ? err.explain() : err.message;
      if (entry.kind === "assessment") {
        // The reasons go beside their fields (problemsOf); the status line counts them, so
        // nothing is said twice.
        screen.problems = problemsOf(err);
        screen.refusals.assessment = "Not submitted";
        if (entry.callId === desk.current) {
          hooks.render();
          // Take the handler to the first problem (its reason is read out with it).
          const first = document.querySelector("#handler [aria-invalid=true]");
          if (first) {
            first.scrollIntoView({ block: "center" });
            if (first.matches("select, textarea, input")) first.focus({ preventScroll: true });
          }
          return;
        }
      } else if (entry.kind === "draft" && err.status === 409 && err.details) {
        screen.conflict = err.details;
        // Later saves of this form would be refused the same way: the handler decides first.
        queue.discard((e) => e.kind === "draft" && e.callId === entry.callId);
      } else {
        screen.refusals[entry.area] = `Not saved: ${why}`;
        if (entry.kind === "advice" || entry.kind === "prompts") {
          // The service kept its marks: show them as they are.
          const set = entry.kind === "advice" ? screen.ticked : screen.answered;
          const on = entry.kind === "advice" ? entry.body.given !== false : entry.body.answered !== false;
          entry.body.ids.forEach((i) => (on ? set.delete(i) : set.add(i)));
        }
      }
      hooks.render();
    },
    onChange: () => hooks.renderWrites(),
  });

  const timers = new Map(); // "<area>:<call id>" -> { timer, write }

  function later(area, callId, ms, write) {
    const key = `${area}:${callId}`;
    const pending = timers.get(key);
    if (pending) window.clearTimeout(pending.timer);
    const timer = window.setTimeout(() => { timers.delete(key); write(); }, ms);
    timers.set(key, { timer, write });
    hooks.renderWrites();
  }

  // Queue now what is waiting for a pause in typing (leaving the call, submitting, unloading).
  function flushEdits(callId = null) {
    for (const [key, pending] of [...timers]) {
      if (callId !== null && !key.endsWith(`:${callId}`)) continue;
      window.clearTimeout(pending.timer);
      timers.delete(key);
      pending.write();
    }
  }

  function writeNarrative(callId) {
    const screen = screenFor(callId);
    screen.narrativeDirty = false;
    queue.push({
      kind: "narrative", area: "narrative", callId, method: "POST", path: callPath(callId, "narrative"),
      body: { text: screen.narrative, mode: "replace" }, // the whole text: a later one supersedes
    }, same("narrative", callId));
  }

  function writeDraft(callId) {
    const screen = screenFor(callId);
    screen.formDirty = false;
    queue.push({
      kind: "draft", area: "draft", callId, method: "PUT", path: callPath(callId, "draft"),
      body: { ...structuredClone(screen.form), deferred: screen.deferred },
    }, same("draft", callId));
  }

  return {
    queue,
    flushEdits,
    writeDraft,
    // How many writes of these areas of a call are not confirmed (queued or waiting for a
    // pause), and the last error of one that was tried.
    pendingFor(callId, ...areas) {
      const queued = queue.pending((e) => e.callId === callId && areas.includes(e.area));
      const typing = areas.filter((a) => timers.has(`${a}:${callId}`));
      return { count: queued.length + typing.length, error: queued.map((e) => e.error).find(Boolean) };
    },
    // Every write not confirmed yet, on any call.
    get unconfirmed() {
      return queue.size + timers.size;
    },
    queuedFor: (callId) => queue.pending((e) => e.callId === callId),
    // A read of the service's state, `read()` (a promise of it), and what to lay over it:
    // `over(callId)`: this call's writes confirmed since the read was sent, then those still
    // queued, oldest first.
    async reading(read) {
      const since = reads.count;
      reads.open += 1;
      try {
        const body = await read();
        const settled = reads.settled.filter(([n]) => n > since).map(([, e]) => e);
        const over = (callId) => [
          ...settled.filter((e) => e.callId === callId),
          ...queue.pending((e) => e.callId === callId),
        ];
        return { body, over };
      } finally {
        reads.open -= 1;
        if (!reads.open) reads.settled = [];
      }
    },
    narrativeTyped: (callId) => later("narrative", callId, NARRATIVE_PAUSE_MS, () => writeNarrative(callId)),
    formEdited: (callId) => later("draft", callId, DRAFT_PAUSE_MS, () => writeDraft(callId)),
    writeMark(callId, kind, id, on) {
      const body = kind === "advice" ? { ids: [id], given: on } : { ids: [id], answered: on };
      queue.push({
        kind, area: kind, callId, method: "POST",
        path: callPath(callId, kind === "advice" ? "advice/given" : "prompts/answered"), body,
      });
    },
    writeIncident(callId, value) {
      queue.push({
        kind: "incident", area: "incident", callId, method: "PUT", path: callPath(callId, "incident-type"),
        body: { incident_type: value },
      }, same("incident", callId));
    },
    writeQualifiers(callId, body) {
      queue.push({
        kind: "qualifiers", area: "qualifiers", callId, method: "PUT", path: callPath(callId, "qualifiers"),
        body,
      }, same("qualifiers", callId));
    },
    submitAssessment(callId, payload) {
      queue.push({
        kind: "assessment", area: "assessment", callId, method: "POST", path: callPath(callId, "assessment"),
        body: payload,
      });
    },
  };
}
