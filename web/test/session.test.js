// collector.js's shell (connect, Session, PageStream) over a fake WebSocket:
// the promises and async iterators the viewer uses, wired to the core.
//
//   node --test web/test/

import assert from "node:assert/strict";
import { test } from "node:test";

import { Decoder, Encoder } from "@msgpack/msgpack";
import { createXXHash128, createXXHash3 } from "hash-wasm";

import {
  ConnectionClosedError, ERROR_TEXT, IntegrityError, PagebridgeError, SUBPROTOCOL, connect, errorText,
} from "../collector.js";

const encoder = new Encoder();
const decoder = new Decoder();
const xxh3 = await createXXHash3();
const xxh128 = await createXXHash128();
const bytes = (text) => new TextEncoder().encode(text);
const check64 = (data) => { xxh3.init(); xxh3.update(data); return xxh3.digest("binary"); };
const check128 = (data) => { xxh128.init(); xxh128.update(data); return xxh128.digest("binary"); };
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
    this.closed = null;
    setTimeout(() => { this.readyState = 1; this.onopen(); }, 0);
  }

  send(frame) {
    assert.ok(frame instanceof Uint8Array, "binary frames only");
    this.sent.push(decoder.decode(frame));
  }

  close(code = 1005, reason = "") {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.closed = { code, reason };
    setTimeout(() => this.onclose({ code, reason }), 0);
  }

  /** The server sends `message` (or a raw frame / a text frame). */
  serve(message) {
    const data = typeof message === "string" ? message : encoder.encode(message).slice().buffer;
    this.onmessage({ data });
  }

  /** The server closes the connection. */
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose({ code, reason: "" });
  }

  /** Frames sent since the last call. */
  take() {
    const out = this.sent;
    this.sent = [];
    return out;
  }
}

/** Start connect() and wait until its socket is open. */
async function opening(options = {}) {
  FakeSocket.last = null;
  const promise = connect("ws://server.test/ws", { WebSocket: FakeSocket, ...options });
  promise.catch(() => {});
  while (!FakeSocket.last || FakeSocket.last.readyState !== 1) await new Promise((r) => setTimeout(r, 0));
  return [promise, FakeSocket.last];
}

async function connected(options = {}) {
  const [promise, ws] = await opening({ agent: "test", ...options });
  assert.deepStrictEqual(ws.take(), [{ t: "hello", agent: "test", ...(options.token ? { token: options.token } : {}) }]);
  ws.serve(WELCOME);
  return [await promise, ws];
}

function page(stream, seq, offset, text) {
  const data = bytes(text);
  return { t: "page", stream, seq, offset, data, xxh: check64(data) };
}

test("connect offers the subprotocol, says hello and resolves on welcome", async () => {
  const [session, ws] = await connected({ token: "t0k" });
  assert.deepStrictEqual(ws.protocols, [SUBPROTOCOL]);
  assert.equal(ws.url, "ws://server.test/ws");
  assert.equal(session.welcome.max_window, 16);
  assert.equal(session.open, true);
});

test("connect rejects with the server's code when the hello is refused", async () => {
  const [promise, ws] = await opening();
  ws.serve({ t: "error", code: "unauthorized", message: "a valid token is required" });
  await assert.rejects(promise, (e) => e instanceof PagebridgeError && e.code === "unauthorized");
});

test("connect rejects and closes 1002 when the welcome has another version", async () => {
  const [promise, ws] = await opening();
  ws.serve({ ...WELCOME, version: 2 });
  await assert.rejects(promise, (e) => e.code === "bad_message");
  assert.equal(ws.closed.code, 1002);
});

test("list resolves with the entries; listing resolves with path, entries and truncated", async () => {
  const [session, ws] = await connected();
  const entries = session.list("logs");
  const full = session.listing("big");
  assert.deepStrictEqual(ws.take(), [{ t: "list", id: 1, path: "logs" }, { t: "list", id: 2, path: "big" }]);
  ws.serve({ t: "listing", id: 2, path: "big", entries: [], truncated: true });
  ws.serve({ t: "listing", id: 1, path: "logs", entries: [{ name: "a", kind: "file", size: 1, mtime: 1.5 }] });
  assert.deepStrictEqual(await entries, [{ name: "a", kind: "file", size: 1, mtime: 1.5 }]);
  assert.deepStrictEqual(await full, { path: "big", entries: [], truncated: true });
  const refused = session.list("a.txt");
  ws.serve({ t: "error", code: "not_a_directory", message: "a file", id: 3 });
  await assert.rejects(refused, (e) => e.code === "not_a_directory");
});

test("pages yields pages and events in order and acks a page when the next item is asked for", async () => {
  const [session, ws] = await connected();
  const stream = session.pages("app.log", { window: 1, follow: true });
  assert.deepStrictEqual(ws.take(), [{ t: "open", stream: 1, path: "app.log", offset: 0, window: 1, follow: true, text: false, sha256: false, integrity: true }]);
  ws.serve({ t: "opened", stream: 1, path: "app.log", offset: 0, size: 4 });
  assert.equal((await stream.opened).size, 4);
  ws.serve(page(1, 0, 0, "abcd"));
  const first = await stream.next();
  assert.deepStrictEqual({ ...first.value, data: [...first.value.data] }, { kind: "page", seq: 0, offset: 0, data: [...bytes("abcd")] });
  assert.deepStrictEqual(ws.take(), [], "not acked until the consumer asks for more");
  ws.serve({ t: "event", stream: 1, kind: "truncated", offset: 0, lost: 2 });
  const second = await stream.next();
  assert.deepStrictEqual(ws.take(), [{ t: "ack", stream: 1, seq: 0, max: 1 }]);
  assert.deepStrictEqual(second.value, { kind: "event", event: "truncated", offset: 0, lost: 2, detail: null });
  assert.equal(stream.window, 1);
  stream.cancel();
  assert.deepStrictEqual(ws.take(), [{ t: "cancel", stream: 1 }]);
  assert.deepStrictEqual(await stream.next(), { done: true, value: undefined });
  ws.serve(page(1, 1, 0, "late"));
  ws.serve({ t: "error", code: "cancelled", message: "cancelled", stream: 1 });
  assert.deepStrictEqual(ws.take(), []);
});

test("getAllPages asks for bulk pages (1 MiB, at most max_page_size) and returns the verified bytes", async () => {
  const [session, ws] = await connected();
  const all = session.getAllPages("a.txt", { window: 4 });
  assert.equal(session.bulkPageSize, 64, "the welcome's max_page_size is below 1 MiB");
  assert.deepStrictEqual(ws.take(), [{ t: "open", stream: 1, path: "a.txt", offset: 0, window: 4, page_size: 64, follow: false, text: false, sha256: false, integrity: true }]);
  ws.serve({ t: "opened", stream: 1, path: "a.txt", offset: 0, size: 6, length: 6 });
  await new Promise((r) => setTimeout(r, 0));
  ws.serve(page(1, 0, 0, "abcd"));
  ws.serve(page(1, 1, 4, "ef"));
  ws.serve({ t: "end", stream: 1, pages: 2, length: 6, digest: check128(bytes("abcdef")) });
  assert.equal(new TextDecoder().decode(await all), "abcdef");
});

test("a stream whose frames all arrive in one task still has its end digest checked (digest asked for)", async () => {
  const [session, ws] = await connected();
  const stream = session.pages("a.txt", { window: 4, digest: true });
  assert.deepStrictEqual(ws.take(), [{ t: "open", stream: 1, path: "a.txt", offset: 0, window: 4, follow: false, text: false, sha256: false, integrity: true }],
    "digest is the collector's choice: nothing on the wire");
  // opened, page and a wrong end in the same task as the open: no await in between.
  ws.serve({ t: "opened", stream: 1, path: "a.txt", offset: 0, size: 4, length: 4 });
  ws.serve(page(1, 0, 0, "abcd"));
  ws.serve({ t: "end", stream: 1, pages: 1, length: 4, digest: check128(bytes("abce")) });
  const items = [];
  await assert.rejects(async () => { for await (const item of stream) items.push(item); }, IntegrityError);
  assert.equal(items.length, 1);
  assert.deepStrictEqual(ws.take().at(-1), { t: "cancel", stream: 1 });
});

test("by default a wrong page digest fails the stream with integrity; the end digest is not verified", async () => {
  const [session, ws] = await connected();
  const bad = session.pages("a.txt", { window: 4 });
  ws.serve({ t: "opened", stream: 1, path: "a.txt", offset: 0, size: 8, length: 8 });
  ws.serve(page(1, 0, 0, "abcd"));
  ws.serve({ ...page(1, 1, 4, "efgh"), xxh: check64(bytes("efgi")) });
  const items = [];
  await assert.rejects(async () => { for await (const item of bad) items.push(item); }, IntegrityError);
  assert.equal(items.length, 1);
  assert.deepStrictEqual(ws.take().at(-1), { t: "cancel", stream: 1 });
  // Every byte checked by its page, pages and length right: a wrong end digest is not looked at.
  const good = session.getAllPages("b.txt", { window: 4 });
  ws.serve({ t: "opened", stream: 2, path: "b.txt", offset: 0, size: 4, length: 4 });
  await new Promise((r) => setTimeout(r, 0));
  ws.serve(page(2, 0, 0, "wxyz"));
  ws.serve({ t: "end", stream: 2, pages: 1, length: 4, digest: check128(bytes("wxyZ")) });
  assert.equal(new TextDecoder().decode(await good), "wxyz");
});

test("two streams at once keep their own digests", async () => {
  const [session, ws] = await connected();
  const a = session.getAllPages("a", { window: 4, digest: true });
  const b = session.getAllPages("b", { window: 4, digest: true });
  ws.serve({ t: "opened", stream: 1, path: "a", offset: 0 });
  ws.serve({ t: "opened", stream: 2, path: "b", offset: 0 });
  ws.serve(page(1, 0, 0, "abcd"));
  ws.serve(page(2, 0, 0, "wxyz"));
  ws.serve(page(1, 1, 4, "ef"));
  ws.serve(page(2, 1, 4, "12"));
  ws.serve({ t: "end", stream: 2, pages: 2, length: 6, digest: check128(bytes("wxyz12")) });
  ws.serve({ t: "end", stream: 1, pages: 2, length: 6, digest: check128(bytes("abcdef")) });
  assert.equal(new TextDecoder().decode(await a), "abcdef");
  assert.equal(new TextDecoder().decode(await b), "wxyz12");
});

test("a stream error rejects that stream only, with the server's code", async () => {
  const [session, ws] = await connected();
  const missing = session.pages("missing");
  const other = session.getAllPages("b", { window: 4 });
  ws.serve({ t: "error", code: "not_found", message: "no such file", stream: 1 });
  await assert.rejects(missing.opened, (e) => e.code === "not_found");
  await assert.rejects(missing.next(), (e) => e.code === "not_found");
  ws.serve({ t: "opened", stream: 2, path: "b", offset: 0 });
  ws.serve({ t: "end", stream: 2, pages: 0, length: 0, digest: check128(bytes("")) });
  assert.equal((await other).length, 0);
});

test("a lost connection fails streams and requests with ConnectionClosedError, code cancelled", async () => {
  const [session, ws] = await connected();
  let closedWith = null;
  session.onclose = (error) => { closedWith = error; };
  const stream = session.pages("a");
  const listing = session.list("");
  ws.drop(1006);
  await assert.rejects(stream.opened, ConnectionClosedError);
  await assert.rejects(listing, (e) => e instanceof ConnectionClosedError && e.code === "cancelled" && e.closeCode === 1006);
  assert.ok(closedWith instanceof ConnectionClosedError);
  assert.equal(session.open, false);
  assert.equal(errorText(closedWith), ERROR_TEXT.connection_closed);
  assert.throws(() => session.pages("b"), ConnectionClosedError);
});

test("a malformed message closes the connection with 1002; streams fail as closed, the session keeps the reason", async () => {
  const [session, ws] = await connected();
  const stream = session.pages("a");
  ws.serve({ t: "opened", stream: 1, path: "a", offset: "0" });
  assert.equal(ws.closed.code, 1002);
  await assert.rejects(stream.opened, (e) => e instanceof ConnectionClosedError && e.closeCode === 1002);
  assert.equal(session.error.code, "bad_message");
  assert.equal(session.open, false);
  assert.throws(() => session.pages("b"), ConnectionClosedError);
  await assert.rejects(session.list(""), ConnectionClosedError);
});

test("a text frame closes the connection with 1003", async () => {
  const [, ws] = await connected();
  ws.serve("hello");
  assert.equal(ws.closed.code, 1003);
});

test("every wire error code has a sentence", () => {
  for (const code of ["bad_message", "bad_request", "unauthorized", "not_found", "forbidden", "not_a_file",
    "not_a_directory", "file_changed", "too_many_streams", "stream_in_use", "unknown_stream",
    "credit_violation", "integrity", "io_error", "too_slow", "cancelled", "internal"]) {
    assert.equal(typeof ERROR_TEXT[code], "string", code);
    assert.equal(errorText(new PagebridgeError(code, "x")), ERROR_TEXT[code]);
  }
});
