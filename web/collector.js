// pagebridge's browser collector: the same shape as the Python client.
//
//   import { connect } from "./collector.js";
//   const session = await connect("/ws", { token });
//   for await (const page of session.pages("logs/app.log", { window: 8 })) {
//     show(page.offset, page.data);   // acknowledged when the loop asks for the next page
//   }
//
// The wire protocol is docs/protocol.md; this module follows it to the
// letter: hello/welcome, absolute credits, per-page XXH3-64, end-of-stream
// XXH3-128, typed errors.  The browser's WebSocket cannot slow down incoming
// messages, so the credits are the only brake: a page is acknowledged only
// when the consumer asks for the next one.

import { Decoder, Encoder } from "@msgpack/msgpack";
import { createXXHash128, createXXHash3 } from "hash-wasm";

export const SUBPROTOCOL = "pagebridge.v1";
export const VERSION = "0.1.0";

// Limits for decoding untrusted frames: a page is at most max_page_size
// (4 MiB) and a listing at most 10 000 entries.
const decoder = new Decoder({
  maxStrLength: 1 << 20,
  maxBinLength: 8 << 20,
  maxArrayLength: 20000,
  maxMapLength: 64,
  maxExtLength: 0,
});
const encoder = new Encoder();

/** Every error this module raises; `code` is one of docs/protocol.md §6. */
export class PagebridgeError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "PagebridgeError";
    this.code = code;
  }
}
export class IntegrityError extends PagebridgeError {
  constructor(message) { super("integrity", message); this.name = "IntegrityError"; }
}
export class FileChangedError extends PagebridgeError {
  constructor(message) { super("file_changed", message); this.name = "FileChangedError"; }
}
export class ConnectionClosedError extends PagebridgeError {
  constructor(message, closeCode) {
    super("connection_closed", message);
    this.name = "ConnectionClosedError";
    this.closeCode = closeCode;
  }
}

function streamError(code, message) {
  if (code === "integrity") return new IntegrityError(message);
  if (code === "file_changed") return new FileChangedError(message);
  return new PagebridgeError(code, message);
}

/** Human sentences for error codes, for user interfaces. */
export const ERROR_TEXT = {
  bad_message: "The server and the viewer disagree on the protocol.",
  bad_request: "The request was refused as invalid.",
  unauthorized: "This server needs a valid token.",
  not_found: "No such file or folder.",
  forbidden: "Access to this path is not allowed.",
  not_a_file: "This is not a regular file.",
  not_a_directory: "This is not a folder.",
  file_changed: "The file changed on the server.",
  too_many_streams: "Too many files are open on this connection.",
  stream_in_use: "Internal error: stream id reused.",
  unknown_stream: "Internal error: unknown stream.",
  credit_violation: "Flow-control error.",
  integrity: "Data arrived corrupted (checksum mismatch).",
  io_error: "The server could not read the file.",
  cancelled: "Cancelled.",
  internal: "The server failed; see its log.",
  connection_closed: "The connection to the server was lost.",
};

function hex(bytes) {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Resolve a ws:, wss:, http:, https: or relative URL to the WebSocket endpoint. */
export function wsURL(url = "/ws") {
  const u = new URL(url, typeof location !== "undefined" ? location.href : "http://localhost/");
  if (u.protocol === "http:") u.protocol = "ws:";
  if (u.protocol === "https:") u.protocol = "wss:";
  if (u.pathname === "/" || u.pathname === "") u.pathname = "/ws";
  return u.toString();
}

/**
 * Connect and say hello.  Resolves to a Session once the server welcomed us;
 * rejects with a PagebridgeError (code "unauthorized" for a bad token).
 */
export async function connect(url = "/ws", { token = null, agent = `pagebridge-js/${VERSION}` } = {}) {
  const [xxh3, xxh128] = await Promise.all([createXXHash3(), createXXHash128()]);
  const ws = new WebSocket(wsURL(url), [SUBPROTOCOL]);
  ws.binaryType = "arraybuffer";
  const session = new Session(ws, xxh3, xxh128);
  await new Promise((resolve, reject) => {
    ws.onopen = () => {
      session._send({ t: "hello", token, agent });
    };
    session._welcomed = resolve;
    session._refused = reject;
    ws.onmessage = (ev) => session._receive(ev.data);
    ws.onclose = (ev) => session._closed(ev);
    ws.onerror = () => {};
  });
  return session;
}

export class Session {
  constructor(ws, xxh3, xxh128) {
    this.ws = ws;
    this.welcome = null;
    this.streams = new Map();
    this.requests = new Map();
    this.error = null;
    this.nextStream = 1;
    this.nextRequest = 1;
    this._xxh3 = xxh3;
    this._createXXH128 = createXXHash128;
    this.onclose = null; // (error) => void, called once when the connection ends
  }

  _send(message) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(encoder.encode(message));
  }

  _receive(data) {
    if (typeof data === "string") return this._fail(new PagebridgeError("bad_message", "server sent a text frame"), 1003);
    let msg;
    try {
      msg = decoder.decode(new Uint8Array(data));
    } catch (e) {
      return this._fail(new PagebridgeError("bad_message", `undecodable frame: ${e.message}`), 1002);
    }
    if (msg === null || typeof msg !== "object" || typeof msg.t !== "string") {
      return this._fail(new PagebridgeError("bad_message", "a message must be a map with a type"), 1002);
    }
    if (!this.welcome) {
      if (msg.t === "welcome") {
        this.welcome = msg;
        return this._welcomed(this);
      }
      if (msg.t === "error") {
        const err = new PagebridgeError(msg.code, msg.message);
        this.error = err;
        return this._refused(err);
      }
      return this._fail(new PagebridgeError("bad_message", `expected welcome, got ${msg.t}`), 1002);
    }
    switch (msg.t) {
      case "listing": {
        const req = this.requests.get(msg.id);
        if (req) { this.requests.delete(msg.id); req.resolve(msg.entries); }
        return;
      }
      case "error": {
        const err = streamError(msg.code, msg.message);
        if (msg.stream != null) {
          const stream = this.streams.get(msg.stream);
          if (stream) { this.streams.delete(msg.stream); stream._push({ error: err }); }
        } else if (msg.id != null) {
          const req = this.requests.get(msg.id);
          if (req) { this.requests.delete(msg.id); req.reject(err); }
        } else {
          this.error = err;
        }
        return;
      }
      case "opened": case "page": case "event": case "end": {
        const stream = this.streams.get(msg.stream);
        if (stream) stream._message(msg);
        return;
      }
      default:
        return this._fail(new PagebridgeError("bad_message", `unexpected message ${msg.t}`), 1002);
    }
  }

  _fail(error, closeCode) {
    this.error = this.error || error;
    try { this.ws.close(closeCode, error.message.slice(0, 120)); } catch { /* already closing */ }
  }

  _closed(ev) {
    const reason = this.error
      || new ConnectionClosedError(
        ev.code === 1000 ? "the connection was closed" : `the connection was lost (${ev.code}${ev.reason ? " " + ev.reason : ""})`,
        ev.code);
    if (!this.welcome && this._refused) this._refused(reason);
    for (const req of this.requests.values()) req.reject(reason);
    this.requests.clear();
    for (const stream of this.streams.values()) stream._push({ error: reason });
    this.streams.clear();
    this.closedError = reason;
    if (this.onclose) this.onclose(reason);
  }

  get open() {
    return this.ws.readyState === WebSocket.OPEN && !this.closedError;
  }

  /** Entries of a folder: [{name, kind, size, mtime}]. */
  list(path = "") {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.requests.set(id, { resolve, reject });
      this._send({ t: "list", id, path });
    });
  }

  /**
   * Open a stream.  Options: offset, length, window (pages in flight; 1 is
   * stop-and-wait; omitted: adaptive), pageSize, ifMatch, follow, text.
   * Returns a PageStream: `await stream.opened`, `for await (const item of stream)`.
   */
  pages(path, { offset = 0, length = null, window = null, pageSize = null, ifMatch = null, follow = false, text = false } = {}) {
    if (this.closedError) throw this.closedError;
    const id = this.nextStream++;
    const stream = new PageStream(this, id, path, { offset, length, window, pageSize, ifMatch, follow, text });
    this.streams.set(id, stream);
    this._send({
      t: "open", stream: id, path, offset, length, window: stream.window,
      page_size: pageSize, if_match: ifMatch, follow, text, sha256: false,
    });
    return stream;
  }

  /** The whole stream, verified, as one Uint8Array (preallocated when the length is known). */
  async getAllPages(path, options = {}) {
    const stream = this.pages(path, options);
    const opened = await stream.opened;
    let buffer = new Uint8Array(opened.length ?? 0);
    let filled = 0;
    for await (const item of stream) {
      if (item.kind !== "page") continue;
      if (filled + item.data.length > buffer.length) {
        const bigger = new Uint8Array(Math.max(buffer.length * 2, filled + item.data.length));
        bigger.set(buffer.subarray(0, filled));
        buffer = bigger;
      }
      buffer.set(item.data, filled);
      filled += item.data.length;
    }
    return filled === buffer.length ? buffer : buffer.slice(0, filled);
  }

  close() {
    try { this.ws.close(1000); } catch { /* already closed */ }
  }
}

const MAX_WINDOW_BYTES = 16 << 20;

/**
 * One stream: an async iterator of items, each either
 * {kind: "page", seq, offset, data: Uint8Array} or
 * {kind: "event", event: "rotated"|"truncated"|"deleted"|"gap", offset, lost, detail}.
 * A page is acknowledged when the next item is requested.
 */
export class PageStream {
  constructor(session, id, path, options) {
    this.session = session;
    this.id = id;
    this.path = path;
    const welcome = session.welcome;
    const pageSize = options.pageSize || welcome.page_size;
    this.maxWindow = Math.max(1, Math.min(welcome.max_window, Math.floor(MAX_WINDOW_BYTES / pageSize)));
    this.auto = options.window == null;
    this.window = this.auto ? Math.min(16, this.maxWindow) : options.window;
    this.grantedMax = this.window - 1;
    this.expectedSeq = 0;
    this.expectedOffset = options.offset;
    this.consumedSeq = -1;
    this.ackedSeq = -1;
    this.received = 0;
    this.probe = null; // [seq that ends the round trip, start time, consumedSeq then]
    this.queue = [];
    this.waiter = null;
    this.done = false;
    this.lastSeq = null;
    this.info = null;
    this.end = null;
    this.digest = null;
    this._createDigest = createXXHash128().then((h) => { h.init(); this.digest = h; });
    this.opened = new Promise((resolve, reject) => { this._resolveOpened = resolve; this._rejectOpened = reject; });
    this.opened.catch(() => {});
  }

  _push(item) {
    if (item.error && !this.info) this._rejectOpened(item.error);
    this.queue.push(item);
    if (this.waiter) { const w = this.waiter; this.waiter = null; w(); }
  }

  _failStream(error) {
    this.session.streams.delete(this.id);
    this.session._send({ t: "cancel", stream: this.id });
    this._push({ error });
  }

  _message(msg) {
    if (msg.t === "opened") {
      this.info = msg;
      this.expectedOffset = msg.offset;
      this._resolveOpened(msg);
      return;
    }
    if (!this.info) return this._failStream(new PagebridgeError("bad_message", `${msg.t} before opened`));
    if (msg.t === "page") {
      if (msg.seq !== this.expectedSeq) {
        return this._failStream(new PagebridgeError("bad_message",
          `${msg.seq < this.expectedSeq ? "duplicate" : "gap before"} page ${msg.seq} (expected ${this.expectedSeq})`));
      }
      if (msg.seq > this.grantedMax) {
        return this._failStream(new PagebridgeError("credit_violation", `page ${msg.seq} beyond the credit ${this.grantedMax}`));
      }
      if (msg.offset !== this.expectedOffset) {
        return this._failStream(new PagebridgeError("bad_message", `page ${msg.seq} at offset ${msg.offset}, expected ${this.expectedOffset}`));
      }
      const h = this.session._xxh3;
      h.init();
      h.update(msg.data);
      if (!msg.data.length || hex(h.digest("binary")) !== hex(msg.xxh)) {
        return this._failStream(new IntegrityError(`page ${msg.seq} (offset ${msg.offset}) failed its checksum`));
      }
      this.expectedSeq += 1;
      this.expectedOffset += msg.data.length;
      this.received += msg.data.length;
      this.pendingDigest = (this.pendingDigest || []);
      if (this.digest) {
        for (const d of this.pendingDigest) this.digest.update(d);
        this.pendingDigest.length = 0;
        this.digest.update(msg.data);
      } else {
        this.pendingDigest.push(msg.data);
      }
      if (this.probe && msg.seq >= this.probe[0]) {
        if (this.auto && this.consumedSeq - this.probe[2] >= Math.floor(this.window / 2)) {
          // Fourfold while under a quarter of the cap, then twofold (docs/protocol.md, "Window").
          const factor = this.window * 4 <= this.maxWindow ? 4 : 2;
          this.window = Math.min(this.window * factor, this.maxWindow);
        }
        this.probe = null;
      }
      this._push({ kind: "page", seq: msg.seq, offset: msg.offset, data: msg.data });
      return;
    }
    if (msg.t === "event") {
      this.expectedOffset = msg.offset;
      this._push({ kind: "event", event: msg.kind, offset: msg.offset, lost: msg.lost ?? null, detail: msg.detail ?? null });
      return;
    }
    // end
    this.session.streams.delete(this.id);
    const digest = this.digest;
    if (msg.pages !== this.expectedSeq || msg.length !== this.received) {
      return this._push({ error: new IntegrityError(`stream ended after ${msg.pages} pages / ${msg.length} bytes, but ${this.expectedSeq} / ${this.received} arrived`) });
    }
    if (digest) {
      for (const d of this.pendingDigest || []) digest.update(d);
      if (hex(digest.digest("binary")) !== hex(msg.digest)) {
        return this._push({ error: new IntegrityError("digest of the received bytes does not match") });
      }
    }
    this._push({ kind: "end", pages: msg.pages, length: msg.length });
  }

  /** The consumer has taken page `seq`: maybe acknowledge (every page at window 1, else every window/4). */
  _consumed(seq) {
    this.consumedSeq = Math.max(this.consumedSeq, seq);
    if (this.consumedSeq - this.ackedSeq < Math.max(1, Math.floor(this.window / 4))) return;
    this.ackedSeq = this.consumedSeq;
    this.grantedMax = this.consumedSeq + this.window;
    if (!this.probe) this.probe = [this.grantedMax, performance.now(), this.consumedSeq];
    this.session._send({ t: "ack", stream: this.id, seq: this.consumedSeq, max: this.grantedMax });
  }

  /** Offset just after the last page the consumer took (where a resume starts). */
  get consumedOffset() {
    return this._consumedOffset ?? (this.info ? this.info.offset : 0);
  }

  async next() {
    if (this.lastSeq !== null) {
      this._consumed(this.lastSeq);
      this.lastSeq = null;
    }
    if (this.done) return { done: true, value: undefined };
    await this.opened;
    while (!this.queue.length) await new Promise((resolve) => { this.waiter = resolve; });
    const item = this.queue.shift();
    if (item.error) { this.done = true; throw item.error; }
    if (item.kind === "end") { this.done = true; this.end = item; return { done: true, value: undefined }; }
    if (item.kind === "page") {
      this.lastSeq = item.seq;
      this._consumedOffset = item.offset + item.data.length;
    } else if (item.kind === "event") {
      this._consumedOffset = item.offset;
    }
    return { done: false, value: item };
  }

  /** Stop the stream (the server releases the file). */
  cancel() {
    if (this.done) return;
    this.done = true;
    if (this.session.streams.delete(this.id)) this.session._send({ t: "cancel", stream: this.id });
    this._push({ kind: "end", cancelled: true });
  }

  async return() {
    this.cancel();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}
