// pagebridge's browser collector: the same shape as the Python client.
//
//   import { connect } from "./collector.js";
//   const session = await connect("/ws", { token });
//   for await (const page of session.pages("logs/app.log", { window: 8 })) {
//     show(page.offset, page.data);   // acknowledged when the loop asks for the next page
//   }
//
// The wire protocol is docs/protocol.md.  Its rules (hello/welcome, schema
// checks, absolute credits, per-page XXH3-64, end-of-stream XXH3-128 on request) live
// in the sans-I/O core, collector-core.js, which Node tests against the
// shared conformance vectors; this module only moves frames between a
// WebSocket and that core and turns its events into promises and async
// iterators.  The browser's WebSocket cannot slow down incoming messages,
// so the credits are the only brake: a page is acknowledged only when the
// consumer asks for the next one.

import { createSHA256, createXXHash128, createXXHash3 } from "hash-wasm";
import {
  CancelledStreamError,
  CollectorProtocol,
  ConnectionClosedError,
  FileChangedError,
  IntegrityError,
  LocalProtocolError,
  PagebridgeError,
  SUBPROTOCOL,
} from "./collector-core.js";

export {
  CancelledStreamError,
  CollectorProtocol,
  ConnectionClosedError,
  FileChangedError,
  IntegrityError,
  LocalProtocolError,
  PagebridgeError,
  SUBPROTOCOL,
};
export const VERSION = "0.1.0";

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
  too_slow: "This live source went faster than the viewer could follow.",
  busy: "The server is busy; try again in a moment.",
  cancelled: "Cancelled.",
  internal: "The server failed; see its log.",
  // Not a wire code: what a user interface says for a ConnectionClosedError
  // (whose code is "cancelled", as in Python).
  connection_closed: "The connection to the server was lost.",
};

/** The sentence ERROR_TEXT has for an error (a lost connection has its own). */
export function errorText(error) {
  if (error instanceof ConnectionClosedError) return ERROR_TEXT.connection_closed;
  return ERROR_TEXT[error.code] || "Something went wrong.";
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
 * The zstd decompressor (zstddec, WebAssembly), loaded on first use: only a
 * session connected with {compress: true} pays for it.
 */
let zstd = null;
export async function zstdCodec() {
  if (zstd === null) {
    const { ZSTDDecoder } = await import("zstddec");
    const decoder = new ZSTDDecoder();
    await decoder.init();
    // decode() allocates exactly `size` bytes of output: a page's announced size bounds it.
    zstd = { decode: (data, size) => decoder.decode(data, size) };
  }
  return zstd;
}

/** The hash-wasm hashers one connection's core shares between its streams. */
export async function createHashers() {
  const [xxh3, xxh128, sha256] = await Promise.all([createXXHash3(), createXXHash128(), createSHA256()]);
  return { xxh3, xxh128, sha256 };
}

const OPEN = 1; // WebSocket.OPEN, spelled out so any WebSocket-like object works
const BULK_PAGE_SIZE = 1 << 20; // Session.bulkPageSize

/**
 * Connect and say hello.  Resolves to a Session once the server welcomed us;
 * rejects with a PagebridgeError (code "unauthorized" for a bad token).
 *
 * Options: token, agent, compress (load the zstd decompressor so that
 * streams may ask for compressed pages: for slow links), and for tests or
 * other runtimes `WebSocket` (a constructor with the browser's interface;
 * default: the global one).
 */
export async function connect(url = "/ws", {
  token = null, agent = `pagebridge-js/${VERSION}`, compress = false, WebSocket: Socket = globalThis.WebSocket,
} = {}) {
  const [hashers, codec] = await Promise.all([createHashers(), compress ? zstdCodec() : null]);
  const ws = new Socket(wsURL(url), [SUBPROTOCOL]);
  ws.binaryType = "arraybuffer";
  const codecs = codec ? { zstd: codec } : {};
  const session = new Session(ws, new CollectorProtocol({ hashers, token, agent, codecs }));
  await new Promise((resolve, reject) => {
    session._welcomed = resolve;
    session._refused = reject;
    ws.onopen = () => session._flush();
    ws.onmessage = (ev) => session._receive(ev.data);
    ws.onclose = (ev) => session._closed(ev);
    ws.onerror = () => {};
  });
  return session;
}

export class Session {
  constructor(ws, core) {
    this.ws = ws;
    this.core = core;
    this.welcome = null;
    this.streams = new Map(); // id -> PageStream, while the core has it
    this.requests = new Map(); // list id -> {resolve, reject, full}
    this.error = null;
    this.closedError = null;
    this.onclose = null; // (error) => void, called once when the connection ends
  }

  _flush() {
    if (this.ws.readyState !== OPEN) return;
    for (const frame of this.core.dataToSend()) this.ws.send(frame);
  }

  _receive(data) {
    for (const event of this.core.receive(data)) this._dispatch(event);
    this._flush();
  }

  _dispatch(event) {
    switch (event.type) {
      case "page": case "hits": case "opened": case "event": case "ended": case "stream_failed": {
        const stream = this.streams.get(event.stream);
        if (stream === undefined) return;
        if (event.type === "ended" || event.type === "stream_failed") this.streams.delete(event.stream);
        stream._event(event);
        return;
      }
      case "listing": {
        const req = this.requests.get(event.listing.id);
        if (req === undefined) return;
        this.requests.delete(event.listing.id);
        const { path, entries, truncated = false } = event.listing;
        req.resolve(req.full ? { path, entries, truncated } : entries);
        return;
      }
      case "located": {
        const req = this.requests.get(event.located.id);
        if (req === undefined) return;
        this.requests.delete(event.located.id);
        const { line, offset, lines, size, etag } = event.located;
        req.resolve({ line, offset, lines, size, etag });
        return;
      }
      case "request_failed": {
        const req = this.requests.get(event.id);
        if (req !== undefined) { this.requests.delete(event.id); req.reject(event.error); }
        return;
      }
      case "welcomed":
        this.welcome = event.welcome;
        if (this._welcomed) this._welcomed(this);
        return;
      case "connection_failed":
        this.error = this.error || event.error;
        if (!this.welcome && this._refused) this._refused(event.error);
        if (event.closeCode !== null) {
          try { this.ws.close(event.closeCode, event.error.message.slice(0, 120)); } catch { /* already closing */ }
        }
        return;
      default:
        return;
    }
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
    return this.ws.readyState === OPEN && !this.closedError && this.core.failure === null;
  }

  /** Why no new request can go out (the connection closed or is failing), or null. */
  _unusable() {
    if (this.closedError) return this.closedError;
    if (this.core.failure !== null) return new ConnectionClosedError(this.core.failure.error.message, this.core.failure.closeCode);
    return null;
  }

  _request(path, full) {
    const unusable = this._unusable();
    if (unusable) return Promise.reject(unusable);
    return new Promise((resolve, reject) => {
      this.requests.set(this.core.requestList(path), { resolve, reject, full });
      this._flush();
    });
  }

  /** Entries of a folder: [{name, kind, size, mtime}], folders first, then by name. */
  list(path = "") {
    return this._request(path, false);
  }

  /** The whole listing: {path (normalised), entries, truncated (capped at 10 000 entries)}. */
  listing(path = "") {
    return this._request(path, true);
  }

  /**
   * Open a stream.  Options: offset, length, window (pages in flight; 1 is
   * stop-and-wait; omitted: adaptive), pageSize, ifMatch, follow, text,
   * sha256, integrity, compress (ask for zstd-compressed pages, on a session
   * connected with {compress: true}; pages arrive decompressed and verified),
   * digest (also verify the end's XXH3-128 of the whole stream: a second
   * hash pass over every byte, each of which its page's XXH3-64 already
   * checked; ask for it when the whole-file digest is reported, as the
   * viewer's download does).
   * Returns a PageStream: `await stream.opened`, `for await (const item of stream)`.
   */
  pages(path, { offset = 0, length = null, window = null, pageSize = null, ifMatch = null,
    follow = false, text = false, sha256 = false, integrity = true, compress = false, digest = false } = {}) {
    const unusable = this._unusable();
    if (unusable) throw unusable;
    const id = this.core.open(path, {
      offset, length, window, pageSize, ifMatch, follow, text, sha256, integrity, compress, digest,
    });
    const stream = new PageStream(this, id, path);
    this.streams.set(id, stream);
    this._flush();
    return stream;
  }

  /**
   * Search a file on the server for the lines matching `pattern` (a literal,
   * or with `regex` an RE2 expression).  Options: regex, ignoreCase, offset,
   * length, follow (a live filter), window (hits in flight, default 8),
   * maxText, countOnly, lineNumbers, keepCr.
   * Returns a SearchStream: `for await (const item of search)` yields
   * {type: "hits", matches: [{offset, line, text: Uint8Array, cut}], scanned}
   * and, when following, {type: "event", event, offset, lost, detail};
   * `search.count` after it ends; `search.cancel()`.
   */
  search(path, pattern, { regex = false, ignoreCase = false, offset = 0, length = null, follow = false,
    window = 8, maxText = null, countOnly = false, lineNumbers = true, keepCr = false } = {}) {
    const unusable = this._unusable();
    if (unusable) throw unusable;
    const id = this.core.scan(path, pattern, {
      regex, ignoreCase, offset, length, follow, window, maxText, countOnly, lineNumbers, keepCr,
    });
    const stream = new SearchStream(this, id, path);
    this.streams.set(id, stream);
    this._flush();
    return stream;
  }

  /**
   * Which line holds byte `offset`, or where line `line` starts:
   * resolves to {line, offset, lines (the total), size, etag}.
   */
  locate(path, { offset = null, line = null } = {}) {
    const unusable = this._unusable();
    if (unusable) return Promise.reject(unusable);
    return new Promise((resolve, reject) => {
      this.requests.set(this.core.requestLocate(path, { offset, line }), { resolve, reject });
      this._flush();
    });
  }

  /**
   * The page size for reading a whole range at once (getAllPages, a
   * download): 1 MiB, or the server's max_page_size if smaller.  In
   * Chromium a message costs the browser per message as well as per byte,
   * and a page's script (decode, checks, events, the iterator, a share of
   * the acks) about 35 µs whatever its size, so bulk reads ask for pages
   * four times the server's default: 0.2 s of browser CPU per GiB less
   * (bench/README.md, "collector.js in Chromium").
   */
  get bulkPageSize() {
    return Math.min(BULK_PAGE_SIZE, this.welcome ? this.welcome.max_page_size : BULK_PAGE_SIZE);
  }

  /**
   * The whole stream, verified, as one Uint8Array (preallocated when the
   * length is known).  Options as for pages(); pageSize defaults to
   * bulkPageSize.
   */
  async getAllPages(path, options = {}) {
    const stream = this.pages(path, { ...options, pageSize: options.pageSize ?? this.bulkPageSize });
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

/**
 * One stream: an async iterator of items, each either
 * {kind: "page", seq, offset, data: Uint8Array} or
 * {kind: "event", event: "rotated"|"truncated"|"deleted"|"gap", offset, lost, detail}.
 * A page is acknowledged when the next item is requested.
 * `info` is the server's `opened`, `end` the `end` summary once complete.
 */
export class PageStream {
  constructor(session, id, path) {
    this.session = session;
    this.id = id;
    this.path = path;
    this.queue = [];
    this.waiter = null;
    this.done = false;
    this.lastSeq = null;
    this.info = null;
    this.end = null;
    this.opened = new Promise((resolve, reject) => { this._resolveOpened = resolve; this._rejectOpened = reject; });
    this.opened.catch(() => {});
  }

  /** Pages in flight allowed now (it grows when the window adapts). */
  get window() {
    return this.session.core.window(this.id);
  }

  _event(event) {
    switch (event.type) {
      case "opened":
        this.info = event.opened;
        this._resolveOpened(event.opened);
        return;
      case "page": {
        const { seq, offset, data } = event.page;
        this._push({ kind: "page", seq, offset, data });
        return;
      }
      case "event": {
        const e = event.event;
        this._push({ kind: "event", event: e.kind, offset: e.offset, lost: e.lost ?? null, detail: e.detail ?? null });
        return;
      }
      case "ended":
        this._push({ kind: "end", pages: event.end.pages, length: event.end.length });
        return;
      case "stream_failed":
        this._push({ error: event.error });
        return;
      default:
        return;
    }
  }

  _push(item) {
    if (item.error && !this.info) this._rejectOpened(item.error);
    this.queue.push(item);
    if (this.waiter) { const w = this.waiter; this.waiter = null; w(); }
  }

  async next() {
    if (this.lastSeq !== null) {
      // The consumer asks for more: it has taken the previous page.
      this.session.core.consumed(this.id, this.lastSeq);
      this.session._flush();
      this.lastSeq = null;
    }
    if (this.done) return { done: true, value: undefined };
    await this.opened;
    while (!this.queue.length) await new Promise((resolve) => { this.waiter = resolve; });
    const item = this.queue.shift();
    if (item.error) { this.done = true; throw item.error; }
    if (item.kind === "end") { this.done = true; this.end = item; return { done: true, value: undefined }; }
    if (item.kind === "page") this.lastSeq = item.seq;
    return { done: false, value: item };
  }

  /** Stop the stream (the server releases the file). */
  cancel() {
    if (this.done) return;
    this.done = true;
    if (this.session.streams.delete(this.id)) {
      this.session.core.cancel(this.id);
      this.session._flush();
    }
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

/**
 * A running scan: an async iterator of {type: "hits", matches, scanned} and,
 * when following, {type: "event", event, offset, lost, detail}.  A hits item
 * is acknowledged when the next item is requested (a slow consumer slows the
 * server's scan).  `count` is the number of matching lines so far (final
 * once the loop ends), `scanned` how far the scan has read (its whole range
 * once it ended), `info` the server's `opened`.
 */
export class SearchStream extends PageStream {
  constructor(session, id, path) {
    super(session, id, path);
    this.count = 0;
    this.scanned = 0;
  }

  _event(event) {
    if (event.type === "hits") {
      const { seq, scanned, matches, count } = event.hits;
      this._push({ kind: "hits", seq, scanned, matches, count: count ?? null });
      return;
    }
    if (event.type === "ended") {
      this._push({ kind: "end", pages: event.end.pages, length: event.end.length, count: event.end.count ?? null });
      return;
    }
    super._event(event);
  }

  async next() {
    const step = await super.next();
    if (this.info && this.scanned < this.info.offset) this.scanned = this.info.offset; // opened: the scan starts there
    if (step.done) {
      if (this.end && this.end.count != null) this.count = this.end.count;
      // `end.length` is what the scan read: it may be past the last progress
      // report (there is none at all when nothing matched).
      if (this.end && this.info) this.scanned = Math.max(this.scanned, this.info.offset + this.end.length);
      return step;
    }
    const item = step.value;
    if (item.kind === "hits") {
      this.lastSeq = item.seq;
      this.scanned = item.scanned;
      this.count = item.count ?? this.count + item.matches.length;
      return { done: false, value: { type: "hits", matches: item.matches, scanned: item.scanned } };
    }
    const { kind, ...rest } = item;
    return { done: false, value: { type: kind, ...rest } };
  }
}
