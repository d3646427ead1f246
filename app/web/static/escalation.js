// The board's escalation (issue 15): a HIGH or CRITICAL alert nobody has acknowledged for
// longer than the configured time (ALERT_ESCALATION_SECONDS) turns its row red and sounds once
// (Web Audio: a tone made here, nothing fetched), unless the supervisor muted it. The clock is
// injectable (`board.clock.now`) so a test can move time instead of waiting for it.

import { unacknowledged } from "./alerts.js";

export const ESCALATING = new Set(["high", "critical"]);

// What tests read: how many times the tone sounded, which alerts escalated.
export const board = { clock: { now: () => Date.now() }, sounded: 0, escalated: [] };

let audio = null;
let muted = false;

export function setMuted(value) {
  muted = value;
}

export function isMuted() {
  return muted;
}

// Two short beeps. The first user gesture on the page unlocks the AudioContext (browsers
// keep it suspended until then); a tone that cannot play is still counted as due.
function tone() {
  board.sounded += 1;
  if (muted) return;
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume();
    const start = audio.currentTime;
    for (const offset of [0, 0.3]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.08, start + offset);
      gain.gain.setValueAtTime(0, start + offset + 0.18);
      osc.connect(gain).connect(audio.destination);
      osc.start(start + offset);
      osc.stop(start + offset + 0.2);
    }
  } catch {
    // No audio device: the red row and the announcement still say it.
  }
}

// The alerts of a call that escalate: HIGH or CRITICAL, acknowledged by nobody, each with
// how long it has waited (ms).
export function waiting(alerts) {
  const now = board.clock.now();
  return alerts
    .filter((a) => ESCALATING.has(a.severity) && unacknowledged(a) && a.raised_at)
    .map((a) => ({ alert: a, waited: Math.max(0, now - Date.parse(a.raised_at)) }))
    .sort((x, y) => y.waited - x.waited);
}

// Whether `entry` (from `waiting`) is past the threshold; the first time it is, the tone
// sounds and `announce(alert)` runs.
export function escalates(entry, afterSeconds, announce) {
  if (entry.waited < afterSeconds * 1000) return false;
  const id = String(entry.alert.alert_id);
  if (!board.escalated.includes(id)) {
    board.escalated.push(id);
    tone();
    announce(entry.alert);
  }
  return true;
}
