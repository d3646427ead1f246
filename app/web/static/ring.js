// The ring: a tone made in the page with Web Audio (nothing is fetched) while a call rings at
// this desk, the handler's mute (remembered in localStorage, per browser), and the words a
// screen reader says as a call rings: the first one, or a second one mid-call, alike.
//
// The tone is the UK ring cadence (400 + 450 Hz, 0.4 s on, 0.2 s off, 0.4 s on, 2 s off),
// quiet enough to sit under a caller's voice. Browsers start audio only after the page has
// been used (a click or a key): until then the context waits and resumes on the first one.

const MUTED_KEY = "firstcontact.ringMuted";
const CADENCE_MS = 3000;
const BURSTS = [[0, 0.4], [0.6, 1.0]]; // seconds from the start of each cadence
const VOLUME = 0.12;

export function createRinger({ button, announcer }) {
  let muted = readMuted();
  let context = null;
  let timer = null;
  let ringing = false;

  function readMuted() {
    try {
      return window.localStorage.getItem(MUTED_KEY) === "1";
    } catch (err) {
      return false; // storage refused (a locked-down profile): the tone stays on
    }
  }

  function audio() {
    if (context) return context;
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    context = new Context();
    const wake = () => { if (context.state === "suspended") context.resume(); };
    window.addEventListener("pointerdown", wake, { capture: true });
    window.addEventListener("keydown", wake, { capture: true });
    return context;
  }

  function cadence() {
    const ctx = audio();
    if (!ctx) return;
    const start = ctx.currentTime + 0.02;
    const gain = ctx.createGain();
    gain.gain.value = 0;
    gain.connect(ctx.destination);
    for (const [on, off] of BURSTS) {
      gain.gain.setValueAtTime(VOLUME, start + on);
      gain.gain.setValueAtTime(0, start + off);
    }
    for (const frequency of [400, 450]) {
      const tone = ctx.createOscillator();
      tone.frequency.value = frequency;
      tone.connect(gain);
      tone.start(start);
      tone.stop(start + BURSTS[BURSTS.length - 1][1] + 0.05);
    }
  }

  function sound() {
    const on = ringing && !muted;
    document.body.dataset.ring = ringing ? (muted ? "muted" : "sounding") : "quiet";
    if (on && timer === null) {
      cadence();
      timer = window.setInterval(cadence, CADENCE_MS);
    } else if (!on && timer !== null) {
      window.clearInterval(timer);
      timer = null;
    }
  }

  function drawButton() {
    button.setAttribute("aria-pressed", muted ? "true" : "false");
    button.textContent = muted ? "Ring tone off" : "Ring tone on";
    button.title = "Alt+M: ring tone on or off";
  }

  function toggle() {
    muted = !muted;
    try {
      window.localStorage.setItem(MUTED_KEY, muted ? "1" : "0");
    } catch (err) {
      // Not remembered, still muted for this page.
    }
    drawButton();
    sound();
  }

  button.addEventListener("click", toggle);
  drawButton();
  sound();

  return {
    toggle,
    // Whether any call rings at this desk now.
    set(isRinging) {
      if (isRinging === ringing) return;
      ringing = isRinging;
      // After the next frame: the ring's alerts are painted before any audio is set up. A
      // hidden page draws no frames (and is where a ring matters most): at once then.
      if (document.hidden) window.setTimeout(sound, 0);
      else window.requestAnimationFrame(() => window.setTimeout(sound, 0));
    },
    // Read out now (the same words twice are read twice: the region is emptied first).
    announce(text) {
      announcer.textContent = "";
      window.setTimeout(() => { announcer.textContent = text; }, 50);
    },
  };
}
