// The handler page's write queue (app/web/static/queue.js) against a fake service and clock:
// order and one write at a time, an Idempotency-Key kept across retries, which answers are
// retried and which refused, growing delays, a reload that resends what was left.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";

import { installBrowser, settle, staticModule } from "./browser.mjs";

const { WriteQueue, newKey, retryable } = await staticModule("queue.js");

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const STORAGE_KEY = "fc.writes.7";

let env;
let confirmed;
let refused;

function newQueue(options = {}) {
  return new WriteQueue({
    storageKey: STORAGE_KEY,
    onConfirmed: (entry, body) => confirmed.push([entry.path, body]),
    onRefused: (entry, error) => refused.push([entry.path, error.status, error.code]),
    ...options,
  });
}

const narrative = (text) => ({ method: "POST", path: "/api/v1/calls/7/narrative", body: { text }, kind: "narrative" });
const tick = (id) => ({ method: "POST", path: "/api/v1/calls/7/advice/given", body: { ids: [id] }, kind: "advice" });
const stored = () => JSON.parse(env.window.sessionStorage.getItem(STORAGE_KEY));

// A started queue with one narrative write sent and not yet answered.
async function sending(text, options) {
  const queue = newQueue(options);
  queue.push(narrative(text));
  queue.start();
  await settle();
  return queue;
}

beforeEach(() => {
  env = installBrowser();
  confirmed = [];
  refused = [];
});

afterEach(() => {
  env.restore();
});

describe("order and keys", () => {
  it("sends nothing before start, then one write at a time in order, each with its own key", async () => {
    const queue = newQueue();
    queue.push(narrative("Back door forced"));
    queue.push(tick("lock_doors"));
    await settle();
    assert.equal(env.service.requests.length, 0, "nothing is sent before the page has its state");
    queue.start();
    await settle();
    const first = env.service.only();
    assert.equal(first.method, "POST");
    assert.equal(first.path, "/api/v1/calls/7/narrative");
    assert.deepEqual(first.body, { text: "Back door forced" });
    assert.equal(first.headers["Content-Type"], "application/json");
    assert.match(first.headers["Idempotency-Key"], UUID4);
    queue.push(tick("keep_evidence"));
    await settle();
    assert.equal(env.service.waiting().length, 1, "the next waits for the first's answer");
    first.reply(200, { revision: 1 });
    await settle();
    const second = env.service.only();
    assert.equal(second.path, "/api/v1/calls/7/advice/given");
    second.reply(200, {});
    await settle();
    env.service.only().reply(200, {});
    await settle();
    const keys = env.service.requests.map((r) => r.headers["Idempotency-Key"]);
    assert.equal(new Set(keys).size, 3);
    assert.deepEqual(confirmed.map(([path]) => path), [
      "/api/v1/calls/7/narrative",
      "/api/v1/calls/7/advice/given",
      "/api/v1/calls/7/advice/given",
    ]);
    assert.deepEqual(confirmed[0][1], { revision: 1 });
    assert.equal(queue.size, 0);
    assert.deepEqual(stored(), []);
  });

  it("calls prepare once, before the first send, and keeps what it filled in on a retry", async () => {
    let prepared = 0;
    const queue = newQueue({
      prepare: (entry) => {
        prepared += 1;
        entry.body.base_revision = 4;
      },
    });
    queue.push(narrative("x"));
    queue.start();
    await settle();
    env.service.only().fail();
    await settle();
    await env.clock.advance(env.clock.nextDelay());
    assert.deepEqual(env.service.only().body, { text: "x", base_revision: 4 });
    assert.equal(prepared, 1);
  });
});

describe("failures", () => {
  it("keeps a write through network failures and 5xx, resending the same key and body", async () => {
    const queue = await sending("Her kids were upstairs");
    const key = env.service.only().headers["Idempotency-Key"];
    const delays = [];
    const answers = [(r) => r.fail(), (r) => r.reply(503), (r) => r.reply(429), (r) => r.reply(408),
      (r) => r.reply(500), (r) => r.fail(), (r) => r.fail()];
    for (const answer of answers) {
      answer(env.service.only());
      await settle();
      assert.equal(queue.size, 1, "a failed write stays queued");
      delays.push(env.clock.nextDelay());
      await env.clock.advance(env.clock.nextDelay() - 1);
      assert.equal(env.service.waiting().length, 0, "no resend before the delay");
      await env.clock.advance(1);
    }
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 5000, 5000, 5000]);
    const sent = env.service.requests;
    assert.equal(sent.length, answers.length + 1);
    assert.ok(sent.every((r) => r.headers["Idempotency-Key"] === key));
    assert.ok(sent.every((r) => r.body.text === "Her kids were upstairs"));
    env.service.only().reply(200, {});
    await settle();
    assert.equal(queue.size, 0);
    assert.equal(confirmed.length, 1);
    assert.equal(refused.length, 0);
  });

  it("shows why a write is waiting, and starts the delays again after a success", async () => {
    const changes = [];
    const queue = await sending("a", { onChange: () => changes.push(stored().map((e) => e.error)) });
    env.service.only().fail();
    await settle();
    assert.equal(queue.entries[0].error, "no connection");
    await env.clock.advance(500);
    env.service.only().reply(503, { error: { code: "store_unavailable", message: "store down" } });
    await settle();
    assert.equal(queue.entries[0].error, "store down");
    await env.clock.advance(1000);
    env.service.only().reply(200, {});
    await settle();
    queue.push(narrative("b"));
    await settle();
    env.service.only().fail();
    await settle();
    assert.equal(env.clock.nextDelay(), 500);
    assert.deepEqual(changes.at(-1), ["no connection"]);
  });

  it("a refusal (4xx) leaves the queue, says why, and the next write goes at once", async () => {
    const queue = newQueue();
    queue.push({ method: "POST", path: "/api/v1/calls/7/assessment", body: { grade: "" } });
    queue.push(tick("lock_doors"));
    queue.start();
    await settle();
    env.service.only().reply(422, {
      error: { code: "validation_error", message: "grade is required", details: [] },
    });
    await settle();
    assert.deepEqual(refused, [["/api/v1/calls/7/assessment", 422, "validation_error"]]);
    assert.equal(env.service.only().path, "/api/v1/calls/7/advice/given");
    assert.equal(env.clock.nextDelay(), null, "no retry of a refused write");
  });

  it("on 401 goes to the login page and keeps the write to send after", async () => {
    const queue = await sending("x");
    env.service.only().reply(401, { error: { code: "not_authenticated", message: "log in" } });
    await settle();
    assert.deepEqual(env.window.location.assigned, ["/login?next=%2Fhandler"]);
    assert.equal(queue.size, 1);
    assert.deepEqual(refused, []);
  });

  it("retryNow resends at once (the feed is live again) with the shortest delay", async () => {
    const queue = newQueue();
    queue.push(narrative("x"));
    queue.start();
    for (let i = 0; i < 4; i += 1) {
      await settle();
      env.service.only().fail();
      await settle();
      if (i < 3) await env.clock.advance(env.clock.nextDelay());
    }
    assert.equal(env.clock.nextDelay(), 4000);
    queue.retryNow();
    await settle();
    env.service.only().fail();
    await settle();
    assert.equal(env.clock.nextDelay(), 500);
  });

  it("classifies answers: network, 401, 408, 429 and 5xx are retried; other 4xx are not", () => {
    for (const status of [0, 401, 408, 429, 500, 502, 503]) assert.ok(retryable({ status }), status);
    for (const status of [400, 403, 404, 409, 412, 422]) assert.ok(!retryable({ status }), status);
    assert.ok(retryable(new Error("no status")));
  });
});

describe("superseded and discarded writes", () => {
  it("drops only superseded writes never sent; the one in flight keeps its key", async () => {
    const queue = await sending("one");
    const inFlight = env.service.only();
    queue.push(narrative("one two"));
    queue.push(tick("lock_doors"));
    const isNarrative = (entry) => entry.kind === "narrative";
    queue.push(narrative("one two three"), isNarrative);
    assert.deepEqual(queue.entries.map((e) => e.body.text ?? e.body.ids[0]),
      ["one", "lock_doors", "one two three"]);
    inFlight.fail();
    await settle();
    queue.push(narrative("one two three four"), isNarrative);
    assert.deepEqual(queue.entries.map((e) => e.body.text ?? e.body.ids[0]),
      ["one", "lock_doors", "one two three four"], "a write that was sent is never dropped");
    await env.clock.advance(500);
    const retry = env.service.only();
    assert.equal(retry.headers["Idempotency-Key"], inFlight.headers["Idempotency-Key"]);
    assert.deepEqual(retry.body, { text: "one" });
  });

  it("discard removes matching writes never sent", async () => {
    const changes = [];
    const queue = newQueue({ onChange: () => changes.push(queue.size) });
    const draft = (n) => ({ method: "PUT", path: "/api/v1/calls/7/assessment/draft", body: { n }, kind: "draft" });
    queue.push(draft(1));
    queue.start();
    await settle();
    queue.push(draft(2));
    queue.push(tick("lock_doors"));
    const before = changes.length;
    queue.discard((entry) => entry.kind === "draft");
    assert.deepEqual(queue.entries.map((e) => e.body.n ?? e.body.ids[0]), [1, "lock_doors"]);
    assert.equal(changes.length, before + 1);
    queue.discard((entry) => entry.kind === "draft");
    assert.equal(changes.length, before + 1, "no change, no onChange");
  });
});

describe("a reload", () => {
  it("resends what was left, in order, with the keys of the writes already tried", async () => {
    const first = newQueue();
    first.push(narrative("typed during the outage"));
    first.push(tick("lock_doors"));
    first.start();
    await settle();
    const tried = env.service.only();
    tried.fail();
    await settle();
    assert.equal(stored().length, 2);
    assert.equal(stored()[0].attempts, 1);
    // The page is reloaded: a new queue over the same storage; the old page's timer is gone.
    env.clock.timers.clear();
    const reloaded = newQueue();
    assert.equal(reloaded.size, 2);
    reloaded.start();
    await settle();
    const resent = env.service.only();
    assert.equal(resent.headers["Idempotency-Key"], tried.headers["Idempotency-Key"]);
    assert.deepEqual(resent.body, { text: "typed during the outage" });
    resent.reply(200, {});
    await settle();
    assert.equal(env.service.only().path, "/api/v1/calls/7/advice/given");
    env.service.only().reply(200, {});
    await settle();
    assert.equal(reloaded.size, 0);
    assert.deepEqual(stored(), []);
  });

  it("a reload while a write is in flight treats it as sent: kept, not prepared again", async () => {
    let prepared = 0;
    const prepare = (entry) => {
      prepared += 1;
      entry.body.base_revision = prepared;
    };
    await sending("one", { prepare });
    const inFlight = env.service.only(); // never answered: the page is reloaded meanwhile
    const reloaded = newQueue({ prepare });
    reloaded.push(narrative("one two"), (entry) => entry.kind === "narrative");
    assert.deepEqual(reloaded.entries.map((e) => e.body.text), ["one", "one two"]);
    reloaded.start();
    await settle();
    const resent = env.service.waiting().at(-1);
    assert.equal(resent.headers["Idempotency-Key"], inFlight.headers["Idempotency-Key"]);
    assert.deepEqual(resent.body, { text: "one", base_revision: 1 });
    assert.equal(prepared, 1);
  });

  it("starts empty from storage it cannot read, and works when storage is full", async () => {
    env.window.sessionStorage.setItem(STORAGE_KEY, "{not json");
    assert.equal(newQueue().size, 0);
    env.window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ not: "a list" }));
    assert.equal(newQueue().size, 0);
    env.window.sessionStorage.full = true;
    const queue = await sending("x");
    env.service.only().reply(200, {});
    await settle();
    assert.equal(confirmed.length, 1);
  });
});

describe("newKey", () => {
  it("makes version 4 UUIDs, with or without crypto.randomUUID", () => {
    const keys = new Set();
    for (let i = 0; i < 50; i += 1) keys.add(newKey());
    env.window.crypto = { getRandomValues: (bytes) => globalThis.crypto.getRandomValues(bytes) };
    for (let i = 0; i < 50; i += 1) keys.add(newKey());
    assert.equal(keys.size, 100);
    for (const key of keys) assert.match(key, UUID4);
  });
});
