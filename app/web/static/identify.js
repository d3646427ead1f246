// Find and link mid-call (issue 13): the handler searches the history by name and date of
// birth, phone number, postcode, address or UPRN, and links the person or household to the
// call as victim, caller, suspect, witness or subject. The service runs the alert rules on
// whoever is linked and pushes the alerts (alert.raised); the link's answer carries them too,
// so they show at once even in wrap-up, when the socket no longer carries the call.
//
// Its own module with one hook in handler.js: mountIdentify() once, update() on each render.

import { api } from "./api.js";
import { date, h, replaceChildren, setText } from "./dom.js";

const ROLES = ["victim", "caller", "suspect", "witness", "subject"];

function personLine(p) {
  const born = p.date_of_birth ? `born ${date(p.date_of_birth)}` : "date of birth not known";
  const age = p.age !== null && p.age !== undefined ? ` (${p.age})` : "";
  const homes = (p.households || []).map((x) => x.address).filter(Boolean).join("; ");
  return [`${p.name || "Name not recorded"}, ${born}${age}`, homes || "no current address"];
}

function householdLine(hh) {
  const members = (hh.members || []).map((m) => m.name).filter(Boolean).join(", ");
  return [hh.address || "Address not recorded", members ? `Lives here: ${members}` : "No current members"];
}

export function mountIdentify({ onAlerts }) {
  const form = document.getElementById("identify");
  const input = document.getElementById("identify-q");
  const button = form.querySelector("button[type=submit]");
  const status = document.getElementById("identify-status");
  const results = document.getElementById("identify-results");
  let call = null; // {id, open} of the call on screen
  let shownFor = null; // the call the results were found for
  const linked = new Map(); // "call:type:id" -> [roles]

  async function link(callId, subject, role, note) {
    const body = { role, [subject.type === "person" ? "person_id" : "household_id"]: subject.id };
    setText(note, "Linking…");
    try {
      const answer = await api("POST", `/api/v1/calls/${callId}/subjects`, body);
      const key = `${callId}:${subject.type}:${subject.id}`;
      linked.set(key, [...new Set([...(linked.get(key) || []), role])]);
      setText(note, `Linked as ${linked.get(key).join(", ")}`);
      if (answer.alerts && answer.alerts.length) onAlerts(callId, answer.alerts);
    } catch (err) {
      setText(note, err.explain ? err.explain() : String(err));
    }
  }

  function item(callId, subject, [first, second]) {
    const note = h("span", { class: "identify-linked small", role: "status" });
    const key = `${callId}:${subject.type}:${subject.id}`;
    if (linked.has(key)) setText(note, `Linked as ${linked.get(key).join(", ")}`);
    const buttons = ROLES.map((role) => h("button", {
      type: "button", class: "secondary small",
      "aria-label": `Link ${first} as ${role}`,
      onclick: () => link(callId, subject, role, note),
    }, role));
    return h("li", { class: "identify-result", dataset: { type: subject.type } },
      h("div", {}, h("strong", {}, first)), h("div", { class: "small muted" }, second),
      h("div", { class: "identify-roles", role: "group", "aria-label": `Link ${first}` },
        h("span", { class: "small" }, "Link as: "), ...buttons),
      note);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!call || !call.open) return;
    const callId = call.id;
    const q = input.value.trim();
    if (!q) return;
    setText(status, "Searching…");
    try {
      const found = await api("GET",
        `/api/v1/history/search?call_id=${callId}&q=${encodeURIComponent(q)}`);
      if (!call || call.id !== callId) return; // the handler moved to another call
      shownFor = callId;
      const persons = found.persons.map((p) =>
        item(callId, { type: "person", id: p.id }, personLine(p)));
      const homes = found.households.map((x) =>
        item(callId, { type: "household", id: x.id }, householdLine(x)));
      replaceChildren(results, ...persons, ...homes);
      const n = persons.length + homes.length;
      const count = (k, one, many) => `${k} ${k === 1 ? one : many}`;
      setText(status, n
        ? `Found ${count(persons.length, "person", "people")}, ${count(homes.length, "address", "addresses")}`
        : "Nothing found");
    } catch (err) {
      setText(status, err.explain ? err.explain() : String(err));
    }
  });

  return {
    // The call on screen changed, or its state did: results belong to one call only.
    update(next) {
      call = next;
      const open = Boolean(next && next.open);
      input.disabled = !open;
      button.disabled = !open;
      if (!next || next.id !== shownFor) {
        if (shownFor !== null) {
          replaceChildren(results);
          setText(status, "");
          input.value = "";
        }
        shownFor = null;
      }
    },
  };
}
