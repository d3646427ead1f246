// The live feed's state machine (app/web/static/live.js) against a fake socket and clock:
// first connection and snapshot, resume with ?after=, the server's resync, snapshots that
// fail while re-reading, session end, refusal, a dead socket, going offline.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";

import { installBrowser, settle, staticModule } from "./browser.mjs";

const { LiveFeed, bindStatus } = await staticModule("live.js");

const TS = (second) => `2026-11-30T10:00:${String(second).padStart(2, "0")}Z`;
const event = (id, second, type = "alert.raised") => ({ id, type, ts: TS(second), data: {} });

function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

let env;
let feed;
let received;
let statuses;
let snapshots;

// A page's feed whose snapshot reads wait on the test: `snapshots[n]` is the n-th read.
function startFeed() {
  received = [];
  statuses = [];
  snapshots = [];
  feed = new LiveFeed({
    onMessage: (message) => received.push(message.id),
    onStatus: (status, detail) => statuses.push(detail ? `${status}:${detail}` : status),
    snapshot: () => {
      const read = deferred();
      snapshots.push(read);
      return read.promise;
    },
  });
  feed.start();
  return feed;
}

const lastSocket = () => env.sockets.at(-1);

// Connected, hello'd at `cursor`, first snapshot read: the feed says Live.
async function liveAt(cursor = "10-0") {
  startFeed();
  lastSocket().accept();
  lastSocket().frame({ type: "hello", id: cursor, data: { heartbeat_seconds: 15 } });
  snapshots[0].resolve(TS(0));
  await settle();
  assert.equal(feed.status, "live");
}

beforeEach(() => {
  env = installBrowser();
});

afterEach(() => {
  env.restore();
});

describe("first connection", () => {
  it("connects without a cursor, reads a snapshot, then says Live", async () => {
    startFeed();
    assert.equal(lastSocket().url, "ws://desk.test:8000/ws");
    assert.deepEqual(statuses, ["connecting"]);
    lastSocket().accept();
    assert.equal(snapshots.length, 1);
    assert.deepEqual(statuses, ["connecting", "syncing"]);
    lastSocket().frame({ type: "hello", id: "10-0", data: { heartbeat_seconds: 15 } });
    snapshots[0].resolve(TS(5));
    await settle();
    assert.deepEqual(statuses, ["connecting", "syncing", "live"]);
    assert.equal(feed.cursor, "10-0");
  });

  it("holds messages during the snapshot and applies only those published after it", async () => {
    startFeed();
    lastSocket().accept();
    lastSocket().frame({ type: "hello", id: "10-0", data: {} });
    lastSocket().frame(event("11-0", 1)); // published before the snapshot was read: in it
    lastSocket().frame(event("12-0", 7));
    lastSocket().frame(event("13-0", 8));
    assert.deepEqual(received, [], "nothing is applied before the snapshot");
    snapshots[0].resolve(TS(5));
    await settle();
    assert.deepEqual(received, ["12-0", "13-0"]);
    lastSocket().frame(event("14-0", 9));
    assert.deepEqual(received, ["12-0", "13-0", "14-0"], "live messages go straight through");
  });

  it("ignores frames that are not JSON", async () => {
    await liveAt();
    lastSocket().frame("not json {");
    lastSocket().frame(event("11-0", 9));
    assert.deepEqual(received, ["11-0"]);
    assert.equal(feed.status, "live");
  });
});

describe("resume with ?after=", () => {
  it("reconnects after a drop from its cursor and takes the replay without a snapshot", async () => {
    await liveAt("10-0");
    lastSocket().frame(event("11-0", 9));
    lastSocket().frame(event("12-0", 9));
    lastSocket().serverClose(1006);
    assert.equal(feed.status, "reconnecting", "a drop says so at once");
    assert.equal(env.clock.nextDelay(), 250);
    await env.clock.advance(249);
    assert.equal(env.sockets.length, 1, "no reconnection before the delay");
    await env.clock.advance(1);
    assert.equal(env.sockets.length, 2);
    assert.equal(lastSocket().url, "ws://desk.test:8000/ws?after=12-0");
    lastSocket().accept();
    assert.equal(feed.status, "live");
    assert.equal(snapshots.length, 1, "a resume after a good snapshot reads no new one");
    // The hello of a resume does not move the cursor; the replay overlaps what was seen.
    lastSocket().frame({ type: "hello", id: "99-0", data: {} });
    for (const id of ["11-0", "12-0", "13-0", "13-1", "14-0"]) lastSocket().frame(event(id, 10));
    lastSocket().frame(event("13-1", 11)); // live repeating the replay's tail
    assert.deepEqual(received, ["11-0", "12-0", "13-0", "13-1", "14-0"]);
    assert.equal(feed.cursor, "14-0");
  });

  it("resumes from hello's cursor when it dropped before any message", async () => {
    await liveAt("42-3");
    lastSocket().serverClose(1006);
    await env.clock.advance(250);
    assert.equal(lastSocket().url, "ws://desk.test:8000/ws?after=42-3");
  });

  it("waits longer after each failed attempt, up to 5 s, and starts again once connected", async () => {
    await liveAt();
    const delays = [];
    for (let i = 0; i < 7; i += 1) {
      lastSocket().serverClose(1006);
      delays.push(env.clock.nextDelay());
      await env.clock.advance(env.clock.nextDelay());
    }
    assert.deepEqual(delays, [250, 500, 1000, 2000, 4000, 5000, 5000]);
    assert.equal(env.sockets.length, 8, "one new socket per attempt");
    lastSocket().accept();
    lastSocket().serverClose(1006);
    assert.equal(env.clock.nextDelay(), 250);
  });

  it("retries when the socket cannot even be created", async () => {
    const Real = globalThis.WebSocket;
    let refusals = 1;
    globalThis.WebSocket = class extends Real {
      constructor(url) {
        if (refusals-- > 0) throw new Error("SecurityError");
        super(url);
      }
    };
    globalThis.WebSocket.OPEN = Real.OPEN;
    startFeed();
    assert.equal(env.sockets.length, 0);
    assert.equal(env.clock.nextDelay(), 250);
    await env.clock.advance(250);
    assert.equal(env.sockets.length, 1);
    assert.equal(feed.status, "reconnecting");
  });
});

describe("resync", () => {
  it("takes the server's cursor, reads a snapshot, holds messages meanwhile, then is Live", async () => {
    await liveAt("10-0");
    lastSocket().frame({ type: "resync", id: "50-0", data: {} });
    assert.equal(feed.cursor, "50-0");
    assert.equal(feed.status, "syncing");
    assert.equal(snapshots.length, 2);
    lastSocket().frame({ type: "resync", id: "50-0", data: {} });
    assert.equal(snapshots.length, 2, "one snapshot at a time");
    lastSocket().frame(event("50-1", 20));
    lastSocket().frame(event("49-9", 21)); // behind the new cursor: already in the snapshot
    assert.deepEqual(received, []);
    snapshots[1].resolve(TS(15));
    await settle();
    assert.deepEqual(received, ["50-1"]);
    assert.equal(feed.status, "live");
    // Resuming after the resync starts from the new cursor and needs no further snapshot.
    lastSocket().serverClose(1006);
    await env.clock.advance(250);
    assert.equal(lastSocket().url, "ws://desk.test:8000/ws?after=50-1");
    lastSocket().accept();
    assert.equal(snapshots.length, 2);
    assert.equal(feed.status, "live");
  });
});

describe("failures while re-reading", () => {
  it("a failed snapshot keeps what it held, reconnects, reads again, and only then is Live", async () => {
    startFeed();
    lastSocket().accept();
    lastSocket().frame({ type: "hello", id: "10-0", data: {} });
    lastSocket().frame(event("11-0", 8));
    snapshots[0].reject(new Error("503"));
    await settle();
    assert.equal(feed.status, "reconnecting");
    assert.ok(statuses.includes("reconnecting:snapshot failed"), statuses.join());
    assert.ok(env.sockets[0].closedByPage, "the socket is dropped to start again");
    assert.deepEqual(received, []);
    await env.clock.advance(250);
    assert.equal(lastSocket().url, "ws://desk.test:8000/ws?after=11-0");
    lastSocket().accept();
    assert.equal(snapshots.length, 2, "a resume is not enough after a failed snapshot");
    assert.equal(feed.status, "syncing");
    lastSocket().frame(event("12-0", 9));
    snapshots[1].resolve(TS(5));
    await settle();
    assert.deepEqual(received, ["11-0", "12-0"], "what was held before the failure is kept");
    assert.equal(statuses.filter((s) => s === "live").length, 1);
    assert.equal(statuses.at(-1), "live");
  });

  it("fails again and again without ever saying Live, then recovers", async () => {
    startFeed();
    for (let attempt = 0; attempt < 3; attempt += 1) {
      lastSocket().accept();
      snapshots.at(-1).reject(new Error("down"));
      await settle();
      assert.equal(feed.status, "reconnecting");
      await env.clock.advance(env.clock.nextDelay());
    }
    assert.ok(!statuses.includes("live"), statuses.join());
    lastSocket().accept();
    snapshots.at(-1).resolve(TS(0));
    await settle();
    assert.equal(feed.status, "live");
    assert.equal(snapshots.length, 4);
  });

  it("a snapshot that fails after the socket dropped still leads to a new read", async () => {
    await liveAt();
    lastSocket().frame({ type: "resync", id: "20-0", data: {} });
    lastSocket().serverClose(1006);
    snapshots[1].reject(new Error("timeout"));
    await settle();
    assert.equal(feed.status, "reconnecting");
    await env.clock.advance(env.clock.nextDelay());
    lastSocket().accept();
    assert.equal(snapshots.length, 3);
    assert.equal(feed.status, "syncing");
  });

  it("a snapshot that succeeds after the socket dropped does not say Live", async () => {
    await liveAt();
    lastSocket().frame({ type: "resync", id: "20-0", data: {} });
    lastSocket().serverClose(1006);
    snapshots[1].resolve(TS(0));
    await settle();
    assert.equal(feed.status, "reconnecting");
    await env.clock.advance(env.clock.nextDelay());
    lastSocket().accept();
    assert.equal(feed.status, "live");
    assert.equal(snapshots.length, 2, "the snapshot it read is good: the gap is replayed");
  });
});

describe("the session, the server and the network", () => {
  it("a closed session (4001) goes to the login page and back here, without retrying", async () => {
    await liveAt();
    lastSocket().serverClose(4001);
    assert.deepEqual(env.window.location.assigned, ["/login?next=%2Fhandler"]);
    assert.equal(env.clock.nextDelay(), null);
  });

  it("logging out (4001 while the logout form is sent) leaves the redirect to the logout", async () => {
    await liveAt();
    env.document.dispatch("submit", { target: { getAttribute: () => "/logout" } });
    lastSocket().serverClose(4001);
    assert.deepEqual(env.window.location.assigned, []);
  });

  it("a refusal (4003) says the screen is not live and stops retrying", async () => {
    await liveAt();
    lastSocket().serverClose(4003);
    assert.equal(feed.status, "refused");
    assert.equal(env.clock.nextDelay(), null);
  });

  it("answers pings, and drops a socket silent for longer than twice and a half the heartbeat", async () => {
    await liveAt(); // hello said 15 s heartbeats: stale after 37.5 s
    for (let i = 0; i < 5; i += 1) {
      await env.clock.advance(15000);
      lastSocket().frame({ type: "ping", data: {} });
    }
    assert.equal(lastSocket().sent.length, 5);
    assert.deepEqual(lastSocket().sent[0], { type: "pong" });
    assert.equal(feed.status, "live");
    await env.clock.advance(36000);
    assert.equal(feed.status, "live");
    await env.clock.advance(4000);
    assert.ok(statuses.includes("reconnecting:stale"), statuses.join());
    assert.ok(env.sockets[0].closedByPage);
  });

  it("drops at once when the browser goes offline and reconnects at once when online", async () => {
    await liveAt("10-0");
    env.window.dispatch("offline");
    assert.equal(feed.status, "reconnecting");
    assert.ok(env.sockets[0].closedByPage);
    env.window.dispatch("online");
    assert.equal(env.sockets.length, 2);
    assert.equal(lastSocket().url, "ws://desk.test:8000/ws?after=10-0");
    await env.clock.advance(10000);
    assert.equal(env.sockets.length, 2, "the pending retry was cancelled");
    env.window.dispatch("online");
    assert.equal(env.sockets.length, 2, "online with a socket already open does nothing");
  });

  it("uses wss: on an https page", async () => {
    env.window.location.protocol = "https:";
    startFeed();
    assert.equal(lastSocket().url, "wss://desk.test:8000/ws");
  });
});

describe("bindStatus", () => {
  it("says Live only with nothing waiting, counts waiting writes, marks the page busy", () => {
    const element = { dataset: {}, textContent: "" };
    const main = { attributes: {}, setAttribute(name, value) { this.attributes[name] = value; } };
    const show = bindStatus(element, main);
    show("live");
    assert.equal(element.textContent, "Live");
    assert.equal(main.attributes["aria-busy"], "false");
    show("unsaved", 1);
    assert.equal(element.textContent, "Not saved: 1 change waiting");
    assert.equal(main.attributes["aria-busy"], "true");
    show("reconnecting", 3);
    assert.match(element.textContent, /^Reconnecting.* not saved: 3 changes waiting$/);
    assert.equal(element.dataset.pending, "3");
    show("refused");
    assert.equal(env.document.body.dataset.conn, "reconnecting");
  });
});

describe("a call's own order (data.seq)", () => {
  const numbered = (id, callId, seq) => ({
    id, type: "call.answered", ts: TS(10), call_id: callId, data: { seq },
  });

  it("ignores a call's message older than, or the same as, the one it shows", async () => {
    await liveAt();
    lastSocket().frame(numbered("11-0", 7, 2));
    lastSocket().frame(numbered("12-0", 7, 1)); // published later, older for its call
    lastSocket().frame(numbered("13-0", 7, 2)); // shown already
    lastSocket().frame(numbered("14-0", 8, 1)); // another call has its own numbers
    lastSocket().frame(numbered("15-0", 7, 4)); // newer (3 went to other screens): applied
    lastSocket().frame(event("16-0", 11)); // no call or no number: as before
    assert.deepEqual(received, ["11-0", "14-0", "15-0", "16-0"]);
    assert.equal(feed.cursor, "16-0", "the cursor still moves past what was ignored");
  });
});
