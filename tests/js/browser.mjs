// A stand-in for the few browser objects the live feed and the write queue touch: `window`
// (timers, location, events, sessionStorage, crypto), `document`, `WebSocket` and `fetch`.
// Time is a fake clock the test moves by hand, so nothing waits on the real clock and every
// retry delay can be checked exactly. `staticModule(name)` loads app/web/static/<name>.
import { register } from "node:module";

register("./static-format.mjs", import.meta.url);

export async function staticModule(name) {
  return import(new URL(`../../app/web/static/${name}`, import.meta.url).href);
}

// Lets every promise callback and I/O callback queued so far run (fetch replies, awaited
// snapshots), without moving the fake clock.
export async function settle() {
  for (let i = 0; i < 5; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

export class Clock {
  constructor(start = Date.UTC(2026, 10, 30, 10, 0, 0)) {
    this.now = start;
    this.timers = new Map();
    this.nextId = 1;
  }

  setTimeout(fn, ms = 0) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.now + Math.max(0, ms), fn, every: null });
    return id;
  }

  setInterval(fn, ms) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.now + ms, fn, every: ms });
    return id;
  }

  clear(id) {
    this.timers.delete(id);
  }

  // How long until the next one-off timer fires (retry delays), or null when none is set.
  nextDelay() {
    const once = [...this.timers.values()].filter((t) => t.every === null);
    return once.length ? Math.min(...once.map((t) => t.at)) - this.now : null;
  }

  // Move time on by `ms`, firing each timer due on the way in order (and what it started).
  async advance(ms) {
    const until = this.now + ms;
    for (;;) {
      let due = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= until && (due === null || timer.at < due[1].at)) due = [id, timer];
      }
      if (!due) break;
      const [id, timer] = due;
      this.now = timer.at;
      if (timer.every === null) this.timers.delete(id);
      else timer.at += timer.every;
      timer.fn();
      await settle();
    }
    this.now = until;
    await settle();
  }
}

// The server end of a WebSocket the page opened: the test opens it, sends frames, closes it.
export class FakeSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static opened = [];

  constructor(url) {
    this.url = url;
    this.readyState = FakeSocket.CONNECTING;
    this.sent = [];
    this.closedByPage = false;
    FakeSocket.opened.push(this);
  }

  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close() {
    this.closedByPage = true;
    this.readyState = FakeSocket.CLOSED;
  }

  accept() {
    this.readyState = FakeSocket.OPEN;
    this.onopen?.({});
  }

  frame(message) {
    this.onmessage?.({ data: typeof message === "string" ? message : JSON.stringify(message) });
  }

  serverClose(code = 1006) {
    this.readyState = FakeSocket.CLOSED;
    this.onclose?.({ code });
  }
}

export class MemoryStorage {
  constructor() {
    this.items = new Map();
    this.full = false;
  }

  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }

  setItem(key, value) {
    if (this.full) throw new Error("QuotaExceededError");
    this.items.set(key, String(value));
  }
}

// The service behind fetch: each request waits until the test answers it (`reply`) or
// makes the network fail it (`fail`), so a write can be caught in flight.
export class FakeService {
  constructor() {
    this.requests = [];
    this.fetch = (path, init = {}) =>
      new Promise((resolve, reject) => {
        const request = {
          path,
          method: init.method,
          headers: init.headers || {},
          body: init.body === undefined ? undefined : JSON.parse(init.body),
          answered: false,
          reply(status, body = {}) {
            request.answered = true;
            resolve({
              status,
              ok: status >= 200 && status < 300,
              statusText: `status ${status}`,
              text: async () => JSON.stringify(body),
            });
          },
          fail() {
            request.answered = true;
            reject(new TypeError("Failed to fetch"));
          },
        };
        this.requests.push(request);
      });
  }

  waiting() {
    return this.requests.filter((r) => !r.answered);
  }

  // The one request in flight (the queue sends one at a time).
  only() {
    const waiting = this.waiting();
    if (waiting.length !== 1) throw new Error(`${waiting.length} requests in flight, not 1`);
    return waiting[0];
  }
}

function eventTarget() {
  const listeners = new Map();
  return {
    addEventListener(type, fn) {
      if (!listeners.has(type)) listeners.set(type, []);
      listeners.get(type).push(fn);
    },
    dispatch(type, event = {}) {
      for (const fn of listeners.get(type) || []) fn(event);
    },
  };
}

// Put the fakes where the modules look for them; returns them and a `restore()`.
export function installBrowser({ pathname = "/handler" } = {}) {
  const clock = new Clock();
  const service = new FakeService();
  const saved = {
    window: globalThis.window,
    document: globalThis.document,
    WebSocket: globalThis.WebSocket,
    fetch: globalThis.fetch,
    now: Date.now,
    random: Math.random,
  };
  const win = {
    ...eventTarget(),
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
    clearTimeout: (id) => clock.clear(id),
    setInterval: (fn, ms) => clock.setInterval(fn, ms),
    clearInterval: (id) => clock.clear(id),
    location: {
      protocol: "http:",
      host: "desk.test:8000",
      pathname,
      assigned: [],
      assign(url) {
        this.assigned.push(url);
      },
    },
    sessionStorage: new MemoryStorage(),
    crypto: globalThis.crypto,
  };
  const doc = { ...eventTarget(), body: { dataset: {} } };
  FakeSocket.opened = [];
  globalThis.window = win;
  globalThis.document = doc;
  globalThis.WebSocket = FakeSocket;
  globalThis.fetch = service.fetch;
  Date.now = () => clock.now;
  // The retry jitter at its midpoint: every delay is exactly the nominal one.
  Math.random = () => 0.5;
  const restore = () => {
    for (const name of ["window", "document", "WebSocket", "fetch"]) {
      if (saved[name] === undefined) delete globalThis[name];
      else globalThis[name] = saved[name];
    }
    Date.now = saved.now;
    Math.random = saved.random;
  };
  return { clock, service, window: win, document: doc, sockets: FakeSocket.opened, restore };
}
