// collector.js's search() and locate() over a fake WebSocket: the async
// iterator of hits the viewer uses for whole-file search and filtering, and
// the line look-up for "go to line".
//
//   node --test web/test/

import assert from "node:assert/strict";
import { test } from "node:test";

import { Decoder, Encoder } from "@msgpack/msgpack";

import { connect } from "../collector.js";

const encoder = new Encoder();
const decoder = new Decoder();
const bytes = (text) => new TextEncoder().encode(text);
const WELCOME = { t: "welcome", version: 1, server: "fake", page_size: 4, max_page_size: 64, max_window: 16, max_streams: 4 };

/** A WebSocket with the browser's interface; the test plays the server. */
class FakeSocket {
  static last = null;

  constructor(url, protocols) {
    FakeSocket.last = this;
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    setTimeout(() => { this.readyState = 1; this.onopen(); }, 0);
  }

  send(frame) { this.sent.push(decoder.decode(frame)); }

  close() { this.readyState = 3; }

  serve(message) { this.onmessage({ data: encoder.encode(message).slice().buffer }); }

  take() { const out = this.sent; this.sent = []; return out; }
}

async function connected() {
  FakeSocket.last = null;
  const promise = connect("ws://server.test/ws", { WebSocket: FakeSocket, agent: "test" });
  while (!FakeSocket.last || FakeSocket.last.readyState !== 1) await new Promise((r) => setTimeout(r, 0));
  const ws = FakeSocket.last;
  ws.take();
  ws.serve(WELCOME);
  return [await promise, ws];
}

const match = (offset, line, text, cut = false) => ({ offset, line, text: bytes(text), cut });

test("search sends scan, yields hits, acks each when the next item is asked for, and ends with the count", async () => {
  const [session, ws] = await connected();
  const search = session.search("app.log", "err", { ignoreCase: true, window: 1 });
  assert.deepStrictEqual(ws.take(), [{
    t: "scan", stream: 1, path: "app.log", pattern: "err", regex: false, ignore_case: true, offset: 0,
    follow: false, window: 1, count_only: false, line_numbers: true, keep_cr: false,
  }]);
  ws.serve({ t: "opened", stream: 1, path: "app.log", offset: 0, size: 40, length: 40, etag: "e" });
  ws.serve({ t: "hits", stream: 1, seq: 0, scanned: 20, matches: [match(0, 1, "ERR one"), match(8, 2, "err two")] });
  const items = search[Symbol.asyncIterator]();
  const first = await items.next();
  assert.equal(first.value.type, "hits");
  assert.equal(first.value.scanned, 20);
  assert.deepStrictEqual(first.value.matches.map((m) => [m.offset, m.line, new TextDecoder().decode(m.text), m.cut]),
    [[0, 1, "ERR one", false], [8, 2, "err two", false]]);
  assert.equal(search.count, 2);
  assert.deepStrictEqual(ws.take(), []); // not acknowledged until the consumer asks for more
  const second = items.next();
  await new Promise((r) => setTimeout(r, 0));
  assert.deepStrictEqual(ws.take(), [{ t: "ack", stream: 1, seq: 0, max: 1 }]);
  ws.serve({ t: "hits", stream: 1, seq: 1, scanned: 40, matches: [] });
  assert.deepStrictEqual((await second).value, { type: "hits", matches: [], scanned: 40 });
  const third = items.next();
  ws.serve({ t: "end", stream: 1, pages: 2, length: 40, digest: new Uint8Array(), count: 2 });
  assert.equal((await third).done, true);
  assert.equal(search.count, 2);
  assert.equal(search.scanned, 40);
  assert.equal(search.info.etag, "e");
});

test("a scan with no match in its range ends having scanned all of it (from its offset)", async () => {
  const [session, ws] = await connected();
  const search = session.search("app.log", "nothing", { offset: 1000, length: 2000 });
  ws.take();
  ws.serve({ t: "opened", stream: 1, path: "app.log", offset: 1000, size: 5000, length: 2000, etag: "e" });
  ws.serve({ t: "end", stream: 1, pages: 0, length: 2000, digest: new Uint8Array(), count: 0 });
  const seen = [];
  for await (const item of search) seen.push(item);
  assert.deepStrictEqual(seen, []);
  assert.equal(search.count, 0);
  assert.equal(search.scanned, 3000);
});

test("a followed search yields live events between hits; cancel sends cancel", async () => {
  const [session, ws] = await connected();
  const search = session.search("app.log", "x", { follow: true, regex: true });
  ws.take();
  ws.serve({ t: "opened", stream: 1, path: "app.log", offset: 0, size: 3 });
  ws.serve({ t: "event", stream: 1, kind: "rotated", offset: 0, detail: "app.log was rotated" });
  ws.serve({ t: "hits", stream: 1, seq: 0, scanned: 2, matches: [match(0, 1, "x")] });
  const items = search[Symbol.asyncIterator]();
  assert.deepStrictEqual((await items.next()).value,
    { type: "event", event: "rotated", offset: 0, lost: null, detail: "app.log was rotated" });
  assert.equal((await items.next()).value.matches[0].line, 1);
  search.cancel();
  assert.deepStrictEqual(ws.take().map((f) => f.t), ["cancel"]);
  assert.equal((await items.next()).done, true);
});

test("a refused search rejects with the server's code (an invalid regex is bad_request)", async () => {
  const [session, ws] = await connected();
  const search = session.search("app.log", "a(", { regex: true });
  ws.serve({ t: "error", code: "bad_request", message: "invalid pattern: missing ): a(", stream: 1 });
  await assert.rejects(search[Symbol.asyncIterator]().next(), (e) => e.code === "bad_request" && /missing/.test(e.message));
});

test("a count-only search reports the running count and the final one", async () => {
  const [session, ws] = await connected();
  const search = session.search("big.log", "x", { countOnly: true });
  ws.take();
  ws.serve({ t: "opened", stream: 1, path: "big.log", offset: 0 });
  ws.serve({ t: "hits", stream: 1, seq: 0, scanned: 100, matches: [], count: 5 });
  const items = search[Symbol.asyncIterator]();
  await items.next();
  assert.equal(search.count, 5);
  const done = items.next();
  ws.serve({ t: "end", stream: 1, pages: 1, length: 200, digest: new Uint8Array(), count: 12 });
  assert.equal((await done).done, true);
  assert.equal(search.count, 12);
});

test("locate resolves {line, offset, lines, size, etag} or rejects with the code", async () => {
  const [session, ws] = await connected();
  const byLine = session.locate("app.log", { line: 3 });
  const byOffset = session.locate("missing.log", { offset: 10 });
  assert.deepStrictEqual(ws.take(), [{ t: "locate", id: 1, path: "app.log", line: 3 }, { t: "locate", id: 2, path: "missing.log", offset: 10 }]);
  ws.serve({ t: "located", id: 1, path: "app.log", etag: "e", size: 30, line: 3, offset: 12, lines: 5 });
  ws.serve({ t: "error", code: "not_found", message: "no such file", id: 2 });
  assert.deepStrictEqual(await byLine, { line: 3, offset: 12, lines: 5, size: 30, etag: "e" });
  await assert.rejects(byOffset, (e) => e.code === "not_found");
});
