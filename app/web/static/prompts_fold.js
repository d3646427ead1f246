// Folding of the THRIVE+ prompts (issue 14): the service ranks a call's prompts and marks the
// ones beyond what a handler should read mid-call as `folded` (priority 3, or past the packs'
// visible limit). They stay offered and tickable, behind a "More prompts" disclosure placed
// right after the must-ask list. Kept apart from the panel layout so either can change alone.

import { $, h, setText } from "./dom.js";

// The prompts split into the ones shown and the ones folded, each in the service's order.
export function splitFolded(prompts) {
  return { shown: prompts.filter((p) => !p.folded), folded: prompts.filter((p) => p.folded) };
}

// The list the folded prompts are drawn into, inside its disclosure (made once, after the
// shown list, so its open/closed state survives redraws); hidden when nothing is folded.
export function foldedList(count) {
  let more = $("prompts-more");
  if (!more) {
    more = h("details", { id: "prompts-more", class: "prompts-more" },
      h("summary", { id: "prompts-more-summary" }),
      h("ul", { id: "prompts-folded", class: "prompts", "aria-labelledby": "prompts-more-summary" }));
    $("prompts").after(more);
  }
  more.hidden = count === 0;
  setText($("prompts-more-summary"), `More prompts (${count})`);
  return $("prompts-folded");
}
