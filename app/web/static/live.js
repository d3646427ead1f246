// The live feed: one WebSocket to /ws that reconnects by itself and resumes from its cursor.
//
// Status goes "connecting" -> "live"; any drop shows "reconnecting" at once (the screen must
// never look current while it is not), then retries with a growing, jittered delay and
// resumes with ?after=<last cursor>, so the server replays what was missed. When the server
// cannot replay (it says "resync"), or on the first connection, the page fetches a snapshot;
// messages that arrive while the snapshot is in flight are held and applied after it, so
// nothing is lost in between. A snapshot that fails keeps what it held and is read again
// after reconnecting: the page never says "Live" on state it could not read.
//
// The first cursor is hello's `id` (the channel's position when the socket subscribed: the
// snapshot read after it covers everything before, the socket delivers everything after), so
// a drop before any message resumes from there instead of reading everything again.
//
// A call's messages carry the call's own number (`data.seq`, issue 18): a message of a call
// whose number is not above the last one applied for that call is older than what the screen
// shows (or shown already) and is ignored, whatever its cursor.

const CONTROL = new Set(["hello", "resync", "ping", "pong", "error"]);
// Calls whose last number is remembered (a supervisor's day is far fewer).
const MAX_CALLS_TRACKED = 5000;

function cursorKey(cursor) {
  const match = /^(\d+)-(\d+)$/.exec(cursor || "");
  return match ? [Number(match[1]), Number(match[2])] : null;
}

function after(a, b) {
  return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
}

export class LiveFeed {
  constructor({ path = "/ws", onMessage, onStatus, snapshot, staleAfterMs = 45000 }) {
    this.path = path;
    this.onMessage = onMessage;
    this.onStatus = onStatus || (() => {});
    this.snapshot = snapshot; // async () => ISO time the snapshot was read at
    this.staleAfterMs = staleAfterMs;
    this.cursor = null;
    this.socket = null;
    this.attempt = 0;
    this.held = null; // messages held while a snapshot is in flight (or failed)
    this.syncing = false;
    this.needsSnapshot = true; // until a snapshot succeeds, no resume is enough
    this.lastFrameAt = 0;
    this.status = null;
    this.closedByUs = false;
    this.loggingOut = false;
    this.callSeq = new Map(); // call id -> the last `data.seq` applied
  }

  start() {
    this.connect();
    window.setInterval(() => this.watchdog(), 2000);
    window.addEventListener("offline", () => this.drop("offline"));
    window.addEventListener("online", () => this.reconnectNow());
    // Logging out closes this socket with 4001 before the logout's answer arrives: the
    // answer's own redirect to the login page must win over ours (no ?next= back here).
    document.addEventListener("submit", (event) => {
      if (event.target?.getAttribute?.("action") === "/logout") this.loggingOut = true;
    });
  }

  setStatus(status, detail) {
    this.status = status;
    this.onStatus(status, detail);
  }

  url() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const query = this.cursor ? "?after=" + encodeURIComponent(this.cursor) : "";
    return `${scheme}//${window.location.host}${this.path}${query}`;
  }

  connect() {
    window.clearTimeout(this.retryTimer);
    this.setStatus(this.attempt === 0 && !this.cursor ? "connecting" : "reconnecting");
    let socket;
    try {
      socket = new WebSocket(this.url());
    } catch (err) {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.lastFrameAt = Date.now();
      this.attempt = 0;
      // A fresh start, or one whose last snapshot failed, needs the current state; a resume
      // after a good snapshot gets the gap replayed.
      if (!this.cursor || this.needsSnapshot) this.resync();
      else this.setStatus("live");
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (event.code === 4001) {
        if (this.loggingOut) return; // the logout's answer is on its way
        // The session ended (expired, logged out elsewhere, token revoked): log in again.
        window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
        return;
      }
      if (event.code === 4003) {
        this.setStatus("refused"); // retrying cannot help: say so instead
        return;
      }
      this.setStatus("reconnecting");
      this.scheduleRetry();
    };
    socket.onerror = () => {}; // onclose follows and handles it
  }

  scheduleRetry() {
    const delay = Math.min(5000, 250 * 2 ** Math.min(this.attempt, 5));
    this.attempt += 1;
    this.retryTimer = window.setTimeout(() => this.connect(), delay * (0.75 + Math.random() / 2));
  }

  reconnectNow() {
    if (this.socket) return;
    this.attempt = 0;
    this.connect();
  }

  drop(reason) {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    socket.onclose = null;
    try { socket.close(); } catch (err) { /* already closing */ }
    this.setStatus("reconnecting", reason);
    this.scheduleRetry();
  }

  watchdog() {
    // The server sends heartbeats: a socket silent for longer than that is dead even if the
    // browser has not noticed yet (a half-open TCP connection).
    if (this.socket && this.socket.readyState === WebSocket.OPEN &&
        Date.now() - this.lastFrameAt > this.staleAfterMs) {
      this.drop("stale");
    }
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  receive(raw) {
    this.lastFrameAt = Date.now();
    let message;
    try {
      message = JSON.parse(raw);
    } catch (err) {
      return;
    }
    if (CONTROL.has(message.type)) {
      this.control(message);
      return;
    }
    const key = cursorKey(message.id);
    if (key) {
      const last = cursorKey(this.cursor);
      if (last && !after(key, last)) return; // already seen (a replay overlapping live)
      this.cursor = message.id;
    }
    if (this.older(message)) return;
    if (this.held) this.held.push(message);
    else this.onMessage(message);
  }

  // Whether `message` is not newer than what is shown of its call (and remember it if it is).
  older(message) {
    const seq = message.data?.seq;
    if (message.call_id == null || typeof seq !== "number") return false;
    const last = this.callSeq.get(message.call_id);
    if (last !== undefined && seq <= last) return true;
    this.callSeq.delete(message.call_id); // re-inserted: the most recent call last
    this.callSeq.set(message.call_id, seq);
    if (this.callSeq.size > MAX_CALLS_TRACKED) {
      this.callSeq.delete(this.callSeq.keys().next().value);
    }
    return false;
  }

  control(message) {
    const data = message.data || {};
    if (message.type === "hello") {
      if (data.heartbeat_seconds) this.staleAfterMs = Math.max(10000, data.heartbeat_seconds * 2500);
      // Sent with an id on a fresh connection only (a resume replays from our own cursor).
      if (message.id && !this.cursor) this.cursor = message.id;
    } else if (message.type === "resync") {
      // The server could not replay from our cursor (too old, or it restarted without a
      // shared store): take the cursor it gives and fetch the current state instead.
      if (message.id) this.cursor = message.id;
      this.needsSnapshot = true;
      this.resync();
    } else if (message.type === "ping") {
      this.send({ type: "pong" });
    }
  }

  async resync() {
    if (this.syncing) return; // one snapshot at a time; it will include this change
    this.syncing = true;
    if (!this.held) this.held = [];
    this.setStatus("syncing");
    let asOf = null;
    try {
      asOf = await this.snapshot();
    } catch (err) {
      // Could not read the state: keep what was held (its messages are past our cursor and
      // will not be replayed), reconnect, and read again before saying "Live".
      this.syncing = false;
      this.needsSnapshot = true;
      if (this.socket) this.drop("snapshot failed");
      else this.setStatus("reconnecting", "snapshot failed");
      return;
    }
    this.syncing = false;
    this.needsSnapshot = false;
    const held = this.held;
    this.held = null;
    for (const message of held) {
      // Published before the snapshot was read: already in it.
      if (asOf && message.ts && message.ts < asOf) continue;
      this.onMessage(message);
    }
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.setStatus("live");
  }
}

// `pending`: writes the page has not had confirmed yet (the handler's screen): "Live" is
// only said when there are none ("unsaved" is a live socket with writes still waiting).
export function bindStatus(element, main) {
  const labels = {
    connecting: "Connecting\u2026",
    syncing: "Loading\u2026",
    live: "Live",
    unsaved: "Not saved",
    reconnecting: "Reconnecting\u2026 the screen may be out of date",
    refused: "Live updates refused (origin or role): the screen is NOT live",
  };
  return (status, pending = 0) => {
    const count = typeof pending === "number" ? pending : 0;
    element.dataset.state = status;
    element.dataset.pending = String(count);
    let text = labels[status] || status;
    if (count && status === "unsaved") text = `Not saved: ${count} change${count === 1 ? "" : "s"} waiting`;
    else if (count) text += ` \u00B7 not saved: ${count} change${count === 1 ? "" : "s"} waiting`;
    element.textContent = text;
    document.body.dataset.conn = status === "refused" ? "reconnecting" : status;
    if (main) main.setAttribute("aria-busy", status === "live" ? "false" : "true");
  };
}
