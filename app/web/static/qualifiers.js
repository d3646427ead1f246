// The qualifier control on the handler's screen: checkboxes for the call's qualifiers
// (domestic abuse, hate crime with its strands, child involved, adult at risk, weapons), next
// to the incident type. The page's write queue saves them (PUT /api/v1/calls/{id}/qualifiers,
// the whole set each time); the service answers and pushes the merged prompts and advice.
// Kept in its own module: the rest of the screen only calls these three functions.

const box = () => document.getElementById("qualifiers");

// The set the boxes show now, as the endpoint takes it.
export function readQualifiers() {
  const root = box();
  const qualifiers = [];
  const strands = {};
  for (const input of root.querySelectorAll("input[data-qualifier]")) {
    if (input.checked) qualifiers.push(input.dataset.qualifier);
  }
  for (const input of root.querySelectorAll("input[data-strand-of]")) {
    const of = input.dataset.strandOf;
    if (input.checked && qualifiers.includes(of)) (strands[of] = strands[of] || []).push(input.value);
  }
  return { qualifiers, qualifier_strands: strands };
}

// Show a call's qualifiers (`thrive` holds `qualifiers` and `qualifier_strands`); null: no call.
export function renderQualifiers(thrive, callId) {
  const root = box();
  if (!root) return;
  root.disabled = !thrive;
  const chosen = new Set((thrive && thrive.qualifiers) || []);
  const strands = (thrive && thrive.qualifier_strands) || {};
  // The box the handler is using keeps what they ticked until the service answers.
  const editing = root.contains(document.activeElement) && root.dataset.callId === String(callId);
  for (const input of root.querySelectorAll("input[data-qualifier]")) {
    if (!editing) input.checked = chosen.has(input.dataset.qualifier);
  }
  for (const group of root.querySelectorAll("[data-strands-of]")) {
    group.hidden = !root.querySelector(`input[data-qualifier="${group.dataset.strandsOf}"]`).checked;
  }
  for (const input of root.querySelectorAll("input[data-strand-of]")) {
    if (!editing) input.checked = (strands[input.dataset.strandOf] || []).includes(input.value);
  }
  root.dataset.callId = String(callId);
}

// Call `save(body)` with the whole set whenever the handler ticks or unticks a box.
export function bindQualifiers(save) {
  const root = box();
  if (!root) return;
  root.addEventListener("change", () => {
    for (const group of root.querySelectorAll("[data-strands-of]")) {
      group.hidden = !root.querySelector(`input[data-qualifier="${group.dataset.strandsOf}"]`).checked;
    }
    save(readQualifiers());
  });
}
