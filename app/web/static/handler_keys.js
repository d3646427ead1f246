// The handler's keyboard shortcuts: Alt+<letter> to each main section of the screen (they work
// while typing in a box too), Ctrl+Enter to submit the assessment, `?` for the list. The list
// on the page (the "Keys" dialog and the hints beside each heading) is drawn from SHORTCUTS,
// so what is documented is what is bound.
//
// Letters are chosen away from the browsers' own Alt keys (Chrome's and Firefox's menus use
// D, E, F, H, S, T, V, B; Alt+<digit> switches tabs on Linux).

import { $, h, replaceChildren } from "./dom.js";

// code: KeyboardEvent.code with Alt held (the letter Alt types differs per platform).
export const SHORTCUTS = [
  { code: "KeyC", keys: "Alt+C", action: "call", what: "The call on screen (its card)" },
  { code: "KeyR", keys: "Alt+R", action: "ringing", what: "Show the call ringing while you are on another" },
  { code: "KeyK", keys: "Alt+K", action: "acknowledge", what: "The next alert to acknowledge (then Enter)" },
  { code: "KeyN", keys: "Alt+N", action: "narrative", what: "The narrative" },
  { code: "KeyI", keys: "Alt+I", action: "incident", what: "Incident type (arrows to look, Enter to choose)" },
  { code: "KeyA", keys: "Alt+A", action: "advice", what: "Advice given (Space ticks, Tab to the next)" },
  { code: "KeyP", keys: "Alt+P", action: "prompts", what: "Prompts" },
  { code: "KeyG", keys: "Alt+G", action: "assessment", what: "The assessment (its grade)" },
  { code: "KeyL", keys: "Alt+L", action: "link", what: "Find and link a person or address" },
  { code: "KeyM", keys: "Alt+M", action: "mute", what: "Ring tone on or off" },
  { code: null, keys: "Ctrl+Enter", action: null, what: "Submit the assessment (in the assessment form)" },
  { code: null, keys: "?", action: null, what: "This list (when not typing in a box)" },
];

// Where `?` is a character being typed (a text box), not a request for the list.
const typing = (el) => Boolean(el) && (el.isContentEditable || /^(TEXTAREA|SELECT)$/.test(el.tagName)
  || (el.tagName === "INPUT" && !/^(checkbox|radio|button|submit|reset)$/.test(el.type)));

// Focus `el` (made focusable if it is a heading or a region), showing it in its column.
export function focusOn(el, { block = "nearest" } = {}) {
  if (!el) return false;
  if (!el.matches("a, button, input, select, textarea, [tabindex]")) el.setAttribute("tabindex", "-1");
  el.scrollIntoView({ block });
  el.focus({ preventScroll: true });
  return document.activeElement === el;
}

// actions: action name -> function (the screen's own moves: handler.js).
export function bindKeys(actions) {
  const dialog = $("keys");
  replaceChildren($("keys-rows"), SHORTCUTS.map((s) => h("tr", {},
    h("th", { scope: "row" }, h("kbd", {}, s.keys)), h("td", {}, s.what))));
  const openKeys = () => { if (!dialog.open) dialog.showModal(); };
  $("keys-open").addEventListener("click", openKeys);

  document.addEventListener("keydown", (event) => {
    if (event.altKey && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      const shortcut = SHORTCUTS.find((s) => s.code === event.code);
      if (!shortcut || !actions[shortcut.action]) return;
      event.preventDefault();
      if (dialog.open) dialog.close();
      actions[shortcut.action]();
      return;
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)
        && event.target.closest && event.target.closest("#assessment")) {
      event.preventDefault();
      $("assessment").requestSubmit();
      return;
    }
    if (event.key === "?" && !typing(event.target) && !dialog.open) {
      event.preventDefault();
      openKeys();
    }
  });
}
