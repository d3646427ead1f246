// The incident-type control. On a closed drop-down, the arrow keys (and typing a letter)
// change its value and fire `change` for every type passed: saving each one would record
// types the handler only looked at and rebuild the advice and prompts each time. So a change
// made by a key is only looked at; the choice is made by Enter, by picking from the open list
// (a click, or Enter in the list) or by leaving the control with a new type showing.

// commit(value): the handler chose `value` (the page ignores a choice that changes nothing).
export function bindIncident(select, commit) {
  let byKey = false;
  select.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      commit(select.value);
      return;
    }
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    // The value a key sets is changed (and `change` fired) while this key is handled.
    byKey = true;
    window.setTimeout(() => { byKey = false; }, 0);
  });
  select.addEventListener("change", () => {
    if (!byKey) commit(select.value);
  });
  select.addEventListener("blur", () => commit(select.value));
}
