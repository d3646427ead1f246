// The page's write queue: every write the handler makes (narrative, ticks, incident type, the
// assessment draft and the assessment) goes through here, in order, one at a time, each with
// its own Idempotency-Key so that a retry of a write the service already stored is answered
// from what it stored and never stored twice.
//
// A write stays queued until the service confirms it: a network failure, 408, 429 or 5xx
// (503 while the store is down) is retried with a growing delay, and at once when the live
// feed reconnects; any other 4xx is a real refusal: it leaves the queue and the page says why.
// The queue is kept in sessionStorage, so a reload (even while the service is down) loses
// nothing: the reloaded page sends what is left.

import { api } from "./api.js";

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 5000;

// A random UUID even outside a secure context (plain http on a LAN name has no randomUUID).
export function newKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  const b = window.crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function retryable(err) {
  const status = err && typeof err.status === "number" ? err.status : 0;
  // 401: the page goes to the login; the write waits (the queue is kept) and is sent after.
  return status === 0 || status === 401 || status === 408 || status === 429 || status >= 500;
}

export class WriteQueue {
  // prepare(entry): called once before an entry is first sent (fills in what is only known
  // then, e.g. the draft revision it is based on). onConfirmed(entry, body) / onRefused(entry,
  // error): the service's answer. onChange(): the queue or an entry's error changed.
  constructor({ storageKey, prepare, onConfirmed, onRefused, onChange }) {
    this.storageKey = storageKey;
    this.prepare = prepare || (() => {});
    this.onConfirmed = onConfirmed;
    this.onRefused = onRefused;
    this.onChange = onChange || (() => {});
    this.entries = this.load();
    this.running = false;
    this.ready = false; // set by start(): nothing is sent before the page has its state
    this.delay = RETRY_MIN_MS;
    this.timer = null;
  }

  load() {
    try {
      const stored = JSON.parse(window.sessionStorage.getItem(this.storageKey) || "[]");
      return Array.isArray(stored) ? stored : [];
    } catch (err) {
      return [];
    }
  }

  save() {
    try {
      window.sessionStorage.setItem(this.storageKey, JSON.stringify(this.entries));
    } catch (err) {
      // Storage full or disabled: the queue still works for this page's life.
    }
  }

  get size() {
    return this.entries.length;
  }

  pending(filter) {
    return this.entries.filter(filter);
  }

  // Add a write. `supersedes(entry)`: earlier writes this one makes pointless (a narrative
  // "replace" over an older one); only those never sent are dropped: one that was sent may
  // have been stored, and its retry must keep its key and body.
  push(write, supersedes) {
    if (supersedes) {
      this.entries = this.entries.filter((e) => e.attempts > 0 || e === this.inFlight || !supersedes(e));
    }
    this.entries.push({ ...write, key: newKey(), attempts: 0, error: null, queuedAt: Date.now() });
    this.save();
    this.onChange();
    this.kick();
  }

  // Drop writes never sent (e.g. drafts that would only conflict again after a refusal).
  discard(match) {
    const before = this.entries.length;
    this.entries = this.entries.filter((e) => e.attempts > 0 || e === this.inFlight || !match(e));
    if (this.entries.length !== before) {
      this.save();
      this.onChange();
    }
  }

  start() {
    this.ready = true;
    this.kick();
  }

  // Try now (the feed is live again, the browser is back online).
  retryNow() {
    this.delay = RETRY_MIN_MS;
    window.clearTimeout(this.timer);
    this.timer = null;
    this.kick();
  }

  kick() {
    if (!this.ready || this.running || this.timer) return;
    this.run();
  }

  async run() {
    this.running = true;
    try {
      while (this.entries.length) {
        const entry = this.entries[0];
        if (entry.attempts === 0) this.prepare(entry);
        entry.attempts += 1;
        this.inFlight = entry;
        this.save(); // the attempt (and what prepare filled in) survives a reload
        let body;
        try {
          body = await api(entry.method, entry.path, entry.body, { "Idempotency-Key": entry.key });
        } catch (err) {
          this.inFlight = null;
          if (retryable(err)) {
            entry.error = err.status === 0 ? "no connection" : err.message;
            this.save();
            this.onChange();
            this.timer = window.setTimeout(() => { this.timer = null; this.kick(); }, this.delay);
            this.delay = Math.min(RETRY_MAX_MS, this.delay * 2);
            return;
          }
          this.remove(entry);
          this.onRefused(entry, err);
          continue;
        }
        this.inFlight = null;
        this.delay = RETRY_MIN_MS;
        this.remove(entry);
        this.onConfirmed(entry, body);
      }
    } finally {
      this.running = false;
      this.inFlight = null;
    }
  }

  remove(entry) {
    this.entries = this.entries.filter((e) => e !== entry);
    this.save();
    this.onChange();
  }
}
