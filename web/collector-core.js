// The collector's side of the pagebridge protocol, sans I/O: frames in,
// events out, frames to send piled up in dataToSend().  It is the JS twin of
// bridge/core/collector.py and knows nothing of WebSockets, promises or the
// DOM, so Node replays the shared conformance vectors (tests/vectors/) on it
// and collector.js only moves bytes between a WebSocket and this object.
//
//   const core = new CollectorProtocol({ hashers, agent: "me" });
//   socket.send(...core.dataToSend());          // hello
//   for (const event of core.receive(frame)) { ... }
//   const sid = core.open("app.log", { window: 8 });
//   core.consumed(sid, seq);                    // may queue an ack
//
// Events (plain objects, `type` first):
//   {type: "welcomed", welcome}
//   {type: "listing", listing}                  listing: {id, path, entries, truncated}
//   {type: "request_failed", id, error}
//   {type: "opened", stream, opened}
//   {type: "page", stream, page}                page: {seq, offset, data, xxh}, verified and in order
//   {type: "hits", stream, hits}                a scan's hits: {seq, scanned, matches, count}, checked and in order
//   {type: "located", located}                  located: {id, path, etag, size, line, offset, lines}
//   {type: "event", stream, event}              a live stream's source changed
//   {type: "ended", stream, end}                complete: pages and length checked, the digest too when asked (open digest)
//   {type: "stream_failed", stream, error}      the stream is gone; a cancel is queued if we detected it
//   {type: "connection_failed", error, closeCode}
//       closeCode is the WebSocket close code the collector must close with
//       (1002 protocol error, 1003 text frame), or null when the server
//       announced the failure with an `error` and closes by itself.
// A failing connection first fails every open stream (stream_failed with a
// ConnectionClosedError), then reports connection_failed; after that the
// core processes nothing more, and open()/requestList() throw
// LocalProtocolError, as does consumed() for a page that has not arrived.

import { Decoder, Encoder } from "@msgpack/msgpack";

export const PROTOCOL_VERSION = 1;
export const SUBPROTOCOL = "pagebridge.v1";

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
/** The stream was cancelled (by us, or confirmed by the server). */
export class CancelledStreamError extends PagebridgeError {
  constructor(message) { super("cancelled", message); this.name = "CancelledStreamError"; }
}
/** The connection ended before the stream or request did.  Its code is
 * `cancelled`, as in the Python collector; `closeCode` is the WebSocket's. */
export class ConnectionClosedError extends PagebridgeError {
  constructor(message, closeCode) {
    super("cancelled", message);
    this.name = "ConnectionClosedError";
    this.closeCode = closeCode;
  }
}

/**
 * The caller misused the core (a page consumed before it arrived, a request
 * on a failed connection): a bug in our own code, never the server's fault
 * and never sent to it (bridge.errors.LocalProtocolError).
 */
export class LocalProtocolError extends PagebridgeError {
  constructor(message) { super("internal", message); this.name = "LocalProtocolError"; }
}

/** The error codes of docs/protocol.md §6. */
export const ERROR_CODES = new Set([
  "bad_message", "bad_request", "unauthorized", "not_found", "forbidden", "not_a_file", "not_a_directory",
  "file_changed", "too_many_streams", "stream_in_use", "unknown_stream", "credit_violation", "integrity",
  "io_error", "too_slow", "busy", "cancelled", "internal",
]);

/**
 * The most specific error for a code received on the wire
 * (bridge.errors.stream_error): a code this collector does not know is
 * reported as `internal`, its sentence kept.
 */
export function streamError(code, message) {
  if (!ERROR_CODES.has(code)) code = "internal";
  if (code === "integrity") return new IntegrityError(message);
  if (code === "file_changed") return new FileChangedError(message);
  if (code === "cancelled") return new CancelledStreamError(message);
  return new PagebridgeError(code, message);
}

// ------------------------------------------------------------------ the schema

// Every message and its fields, as bridge/core/messages.py declares them and
// tests/vectors/messages.json records them (a Node test checks that the
// three agree).  A field is {type, required} or {type, default}; a field
// whose default is null may also be sent as nil, one with another default
// may only be omitted.
const req = (type) => ({ type, required: true });
const opt = (type, value = null) => ({ type, default: value });

export const MESSAGES = {
  hello: { token: opt("str"), agent: opt("str") },
  list: { id: req("int"), path: opt("str", "") },
  open: {
    stream: req("int"), path: req("str"), offset: opt("int", 0), length: opt("int"),
    window: opt("int", 8), page_size: opt("int"), if_match: opt("str"), follow: opt("bool", false),
    text: opt("bool", false), sha256: opt("bool", false), integrity: opt("bool", true), compress: opt("array"),
  },
  ack: { stream: req("int"), seq: req("int"), max: req("int") },
  cancel: { stream: req("int") },
  welcome: {
    version: req("int"), server: req("str"), page_size: req("int"), max_page_size: req("int"),
    max_window: req("int"), max_streams: req("int"),
  },
  listing: { id: req("int"), path: req("str"), entries: req("array"), truncated: opt("bool", false) },
  opened: {
    stream: req("int"), path: req("str"), offset: req("int"), size: opt("int"), length: opt("int"),
    mtime: opt("float"), etag: opt("str"), page_size: opt("int"), compression: opt("str"),
  },
  page: {
    stream: req("int"), seq: req("int"), offset: req("int"), data: req("bin"), xxh: req("bin"), size: opt("int"),
  },
  end: {
    stream: req("int"), pages: req("int"), length: req("int"), digest: req("bin"), sha256: opt("bin"),
    count: opt("int"),
  },
  event: { stream: req("int"), kind: req("str"), offset: req("int"), lost: opt("int"), detail: opt("str") },
  error: { code: req("str"), message: req("str"), stream: opt("int"), id: opt("int") },
  scan: {
    stream: req("int"), path: req("str"), pattern: req("str"), regex: opt("bool", false),
    ignore_case: opt("bool", false), offset: opt("int", 0), length: opt("int"), follow: opt("bool", false),
    window: opt("int", 8), max_text: opt("int"), count_only: opt("bool", false),
    line_numbers: opt("bool", true), keep_cr: opt("bool", false),
  },
  locate: { id: req("int"), path: req("str"), offset: opt("int"), line: opt("int") },
  hits: { stream: req("int"), seq: req("int"), scanned: req("int"), matches: req("array"), count: opt("int") },
  located: {
    id: req("int"), path: req("str"), etag: req("str"), size: req("int"), line: req("int"),
    offset: req("int"), lines: req("int"),
  },
};

const FROM_SERVER = new Set(["welcome", "listing", "opened", "page", "end", "event", "error", "hits", "located"]);

// Integers are msgpack's signed 64-bit range from -1 up (docs/protocol.md §2).
// A JS number holds them exactly up to 2^53, which no offset reaches.
const MAX_INT = 2 ** 63;

function isMap(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof Uint8Array);
}

const TYPE_CHECKS = {
  int: (v) => typeof v === "number" && Number.isInteger(v) && v >= -1 && v < MAX_INT,
  float: (v) => typeof v === "number",
  str: (v) => typeof v === "string",
  bin: (v) => v instanceof Uint8Array,
  bool: (v) => typeof v === "boolean",
  array: (v) => Array.isArray(v),
  map: isMap,
};

class ProtocolViolation extends PagebridgeError {
  constructor(message, closeCode = 1002) {
    super("bad_message", message);
    this.closeCode = closeCode;
  }
}

/** Check a decoded message against MESSAGES; throws ProtocolViolation (bad_message). */
export function validate(msg) {
  if (!isMap(msg)) throw new ProtocolViolation("a message must be a msgpack map");
  const type = msg.t;
  if (typeof type !== "string") throw new ProtocolViolation("message has no string field 't' naming its type");
  if (!Object.hasOwn(MESSAGES, type)) throw new ProtocolViolation(`unknown message type ${JSON.stringify(type.slice(0, 40))}`);
  const fields = MESSAGES[type];
  for (const key of Object.keys(msg)) {
    if (key === "t") continue;
    if (!Object.hasOwn(fields, key)) throw new ProtocolViolation(`unknown field ${JSON.stringify(key.slice(0, 40))} in ${type}`);
    const field = fields[key];
    const value = msg[key];
    if (value === null && field.default === null) continue;
    if (!TYPE_CHECKS[field.type](value)) {
      throw new ProtocolViolation(`field ${key} of ${type} must be ${field.type}${field.default === null ? " or nil" : ""}`);
    }
  }
  for (const key of Object.keys(fields)) {
    if (fields[key].required && msg[key] === undefined) throw new ProtocolViolation(`field ${key} is missing from ${type}`);
  }
  return msg;
}

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

/** Serialise one message as a msgpack map, leaving out nil fields (omitted and nil mean the same). */
export function encode(message) {
  const body = {};
  for (const key of Object.keys(message)) if (message[key] != null) body[key] = message[key];
  return encoder.encode(body);
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ------------------------------------------------------------------ digests

/**
 * One hash-wasm hasher shared by every stream of a connection.  Creating a
 * WebAssembly hasher is asynchronous, and a stream must never wait for (or
 * skip) its digest, so the shell creates one hasher per algorithm up front
 * and streams take turns: the hasher holds the state of the stream that
 * used it last, and a switch saves that state and loads the other's
 * (hash-wasm's save()/load(), ~10 µs), which with one busy stream never
 * happens.
 */
class SharedDigest {
  constructor(hasher) {
    this.hasher = hasher;
    this.owner = null; // the state object currently loaded in the hasher
  }

  /** A fresh digest state for one stream. */
  start() {
    return { saved: null };
  }

  _select(state) {
    if (this.owner === state) return;
    const h = this.hasher;
    if (this.owner !== null) this.owner.saved = h.save();
    if (state.saved !== null) h.load(state.saved);
    else h.init();
    state.saved = null;
    this.owner = state;
  }

  update(state, data) {
    this._select(state);
    this.hasher.update(data);
  }

  digest(state) {
    this._select(state);
    this.owner = null;
    return this.hasher.digest("binary");
  }

  /** The stream is gone: forget its state. */
  drop(state) {
    if (this.owner === state) this.owner = null;
  }
}

// ------------------------------------------------------------------ one stream

/**
 * One paging as the collector sees it: order, credits, integrity, window.
 * With `auto` the window adapts (docs/protocol.md, "Window"): it grows each
 * round trip in which the consumer took at least half a window, fourfold
 * while under a quarter of the cap, then twofold.
 */
class CollectorStream {
  constructor(request, { auto, maxWindow }) {
    this.id = request.stream;
    this.request = request;
    this.auto = auto;
    this.window = request.window;
    this.maxWindow = Math.max(maxWindow, request.window);
    this.grantedMax = request.window - 1;
    this.expectedSeq = 0;
    this.expectedOffset = request.offset;
    this.consumedSeq = -1;
    this.ackedSeq = -1;
    this.receivedBytes = 0;
    this.opened = null;
    this.codec = null; // the decoder of opened.compression, when the server compresses
    // A scan: hits instead of pages, no digest; expectedOffset is how far it scanned.
    this.scan = request.t === "scan";
    this.matches = 0;
    this.check = false; // pages carry an XXH3-64 to verify (open.integrity)
    this.digest = null; // SharedDigest states, set by the protocol
    this.sha256 = null;
    // Round-trip probe for autotuning: the seq whose arrival ends it, and consumedSeq when it started.
    this.probe = null;
  }
}

/** A match is {offset: int >= 0, line: int >= 0, text: bin, cut: bool} and nothing else. */
function validMatch(match) {
  return isMap(match) && Object.keys(match).length === 4
    && Number.isInteger(match.offset) && match.offset >= 0
    && Number.isInteger(match.line) && match.line >= 0
    && match.text instanceof Uint8Array && typeof match.cut === "boolean";
}

function streamFailure(code, message) {
  const error = code === "integrity" ? new IntegrityError(message) : new PagebridgeError(code, message);
  error.streamFailure = true;
  return error;
}

// ------------------------------------------------------------------ the connection

/**
 * The collector side of one connection.
 *
 * Options: `hashers` {xxh3, xxh128, sha256?}: hash-wasm hashers, created
 * once by the shell (createXXHash3(), createXXHash128(), createSHA256());
 * `token`, `agent` for `hello`; `initialWindow` (pages) and
 * `maxWindowBytes` bound the adaptive window; `codecs` {name: {decode(data,
 * size) -> Uint8Array}}: the decompressors a stream may offer in `open`
 * (docs/protocol.md, "Compression"), e.g. zstd from the shell.
 */
export class CollectorProtocol {
  constructor({ hashers, token = null, agent = null, initialWindow = 16, maxWindowBytes = 16 << 20,
    codecs = {} } = {}) {
    if (!hashers || !hashers.xxh3 || !hashers.xxh128) throw new TypeError("CollectorProtocol needs hashers {xxh3, xxh128}");
    this.xxh3 = hashers.xxh3;
    this.xxh128 = new SharedDigest(hashers.xxh128);
    this.sha = hashers.sha256 ? new SharedDigest(hashers.sha256) : null;
    this.codecs = codecs;
    this.initialWindow = initialWindow;
    this.maxWindowBytes = maxWindowBytes;
    this.welcome = null;
    this.failure = null; // the connection_failed event, once failed
    this.streams = new Map();
    this.nextStream = 1;
    this.nextRequest = 1;
    this._out = [];
    this._send({ t: "hello", token, agent });
  }

  /** Frames to send, in order; each is one binary WebSocket message. */
  dataToSend() {
    const out = this._out;
    this._out = [];
    return out;
  }

  get hasDataToSend() {
    return this._out.length > 0;
  }

  _send(message) {
    if (this.failure === null) this._out.push(encode(message));
  }

  _checkUsable() {
    if (this.failure !== null) throw new LocalProtocolError("the connection has failed; no new requests");
  }

  // ---------------------------------------------------------------- requests

  /** Ask for a folder's entries; returns the request id the listing will carry. */
  requestList(path = "") {
    this._checkUsable();
    const id = this.nextRequest++;
    this._send({ t: "list", id, path });
    return id;
  }

  /**
   * Open a stream; returns its id.  Options: offset, length, window (pages
   * in flight; null: adaptive), pageSize, ifMatch, follow, text, sha256,
   * integrity, compress (offer this core's codecs: pages arrive decompressed),
   * digest (also verify end.digest, the XXH3-128 of the whole stream).
   * Before the welcome the server's limits are assumed to be the protocol's
   * defaults.
   *
   * Every page's XXH3-64, seq, offset and end's pages and length are always
   * checked (with integrity); `digest` is off by default because verifying
   * end.digest hashes every byte a second time, and every byte is already
   * covered by its page's check (docs/protocol.md §4, "Order and
   * integrity").  Ask for it when the whole-file digest is reported to
   * someone (a download).
   */
  open(path, { offset = 0, length = null, window = null, pageSize = null, ifMatch = null,
    follow = false, text = false, sha256 = false, integrity = true, compress = false, digest = false } = {}) {
    this._checkUsable();
    const welcome = this.welcome;
    const serverMax = welcome ? welcome.max_window : 256;
    const effectivePage = pageSize || (welcome ? welcome.page_size : 256 * 1024);
    const maxWindow = Math.max(1, Math.min(serverMax, Math.floor(this.maxWindowBytes / effectivePage)));
    let initial;
    if (window == null) {
      initial = Math.min(this.initialWindow, maxWindow);
    } else {
      if (!(Number.isInteger(window) && window >= 1 && window <= serverMax)) {
        throw new RangeError(`window must be between 1 and ${serverMax}`);
      }
      initial = window;
    }
    if (sha256 && !this.sha) throw new TypeError("sha256 needs a sha256 hasher");
    const offer = compress ? Object.keys(this.codecs) : null;
    if (compress && !offer.length) throw new TypeError("compress needs a decompressor (connect with {compress: true})");
    const id = this.nextStream++;
    const request = {
      t: "open", stream: id, path, offset, length, window: initial, page_size: pageSize,
      if_match: ifMatch, follow, text, sha256, integrity, compress: offer,
    };
    const stream = new CollectorStream(request, { auto: window == null, maxWindow });
    stream.check = integrity;
    if (integrity && digest) stream.digest = this.xxh128.start();
    if (sha256) stream.sha256 = this.sha.start();
    this.streams.set(id, stream);
    this._send(request);
    return id;
  }

  /**
   * Start a scan (docs/protocol.md §8); returns its stream id.  Options:
   * regex, ignoreCase, offset, length, follow, window (hits in flight,
   * default 8), maxText, countOnly, lineNumbers, keepCr.
   */
  scan(path, pattern, { regex = false, ignoreCase = false, offset = 0, length = null, follow = false,
    window = 8, maxText = null, countOnly = false, lineNumbers = true, keepCr = false } = {}) {
    this._checkUsable();
    const serverMax = this.welcome ? this.welcome.max_window : 256;
    if (!(Number.isInteger(window) && window >= 1 && window <= serverMax)) {
      throw new RangeError(`window must be between 1 and ${serverMax}`);
    }
    const id = this.nextStream++;
    const request = {
      t: "scan", stream: id, path, pattern, regex, ignore_case: ignoreCase, offset, length, follow, window,
      max_text: maxText, count_only: countOnly, line_numbers: lineNumbers, keep_cr: keepCr,
    };
    this.streams.set(id, new CollectorStream(request, { auto: false, maxWindow: window }));
    this._send(request);
    return id;
  }

  /** Ask which line holds byte `offset`, or where line `line` starts; returns the request id. */
  requestLocate(path, { offset = null, line = null } = {}) {
    this._checkUsable();
    if (offset != null && line != null) throw new RangeError("give an offset or a line, not both");
    const id = this.nextRequest++;
    this._send({ t: "locate", id, path, offset, line });
    return id;
  }

  /** The consumer took page (or hits) `seq` of stream `sid`: maybe queue an ack granting more credit. */
  consumed(sid, seq) {
    const stream = this.streams.get(sid);
    // Ended, cancelled or failed, or not opened yet: nothing to acknowledge.
    if (stream === undefined || stream.opened === null) return;
    if (seq >= stream.expectedSeq) throw new LocalProtocolError(`page ${seq} of stream ${sid} has not arrived`);
    stream.consumedSeq = Math.max(stream.consumedSeq, seq);
    // Ack every max(1, floor(W/4)) consumed pages (every page for W < 8...
    // down to stop-and-wait at W = 1): the pipe stays three quarters full
    // while the server gets a quarter of the acks (docs/protocol.md §4).
    if (stream.consumedSeq - stream.ackedSeq < Math.max(1, Math.floor(stream.window / 4))) return;
    stream.ackedSeq = stream.consumedSeq;
    stream.grantedMax = stream.consumedSeq + stream.window;
    if (stream.probe === null) stream.probe = [stream.grantedMax, stream.consumedSeq];
    this._send({ t: "ack", stream: sid, seq: stream.consumedSeq, max: stream.grantedMax });
  }

  /** Stop a stream: queue `cancel`; whatever still arrives for it is ignored. */
  cancel(sid) {
    const stream = this.streams.get(sid);
    if (stream === undefined) return;
    this._drop(stream);
    this._send({ t: "cancel", stream: sid });
  }

  /** Window of an open stream (pages), or null. */
  window(sid) {
    const stream = this.streams.get(sid);
    return stream === undefined ? null : stream.window;
  }

  _drop(stream) {
    this.streams.delete(stream.id);
    if (stream.digest) this.xxh128.drop(stream.digest);
    if (stream.sha256) this.sha.drop(stream.sha256);
  }

  // ---------------------------------------------------------------- input

  /**
   * Handle one frame from the server (a Uint8Array, an ArrayBuffer, or a
   * string for a text frame) and return the events it caused.
   */
  receive(frame) {
    if (this.failure !== null) return [];
    try {
      if (typeof frame === "string") {
        throw new ProtocolViolation("the server sent a text frame; pagebridge uses binary frames only", 1003);
      }
      let msg;
      try {
        msg = decoder.decode(frame instanceof Uint8Array ? frame : new Uint8Array(frame));
      } catch (e) {
        throw new ProtocolViolation(`frame is not valid msgpack (${e.message})`);
      }
      return this._receiveMessage(validate(msg));
    } catch (e) {
      if (!(e instanceof ProtocolViolation)) throw e;
      return this._failConnection(e, e.closeCode);
    }
  }

  /**
   * Fail the connection: every open stream fails first (with a
   * ConnectionClosedError carrying the reason), then connection_failed.
   */
  _failConnection(error, closeCode) {
    const events = [];
    for (const stream of [...this.streams.values()]) {
      this._drop(stream);
      events.push({ type: "stream_failed", stream: stream.id, error: new ConnectionClosedError(error.message, closeCode) });
    }
    this.failure = { type: "connection_failed", error, closeCode };
    this._out = [];
    events.push(this.failure);
    return events;
  }

  _receiveMessage(msg) {
    if (!FROM_SERVER.has(msg.t)) throw new ProtocolViolation(`a server may not send ${msg.t} messages`);
    if (this.welcome === null) {
      if (msg.t === "welcome") {
        if (msg.version !== PROTOCOL_VERSION) {
          throw new ProtocolViolation(`the server speaks protocol version ${msg.version}; this collector speaks ${PROTOCOL_VERSION}`);
        }
        this.welcome = msg;
        return [{ type: "welcomed", welcome: msg }];
      }
      if (msg.t === "error" && msg.stream == null && msg.id == null) {
        return this._failConnection(streamError(msg.code, msg.message), null);
      }
      throw new ProtocolViolation(`expected welcome, got ${msg.t}`);
    }
    switch (msg.t) {
      case "listing":
        return [{ type: "listing", listing: msg }];
      case "located":
        return [{ type: "located", located: msg }];
      case "error":
        return this._receiveError(msg);
      case "welcome":
        throw new ProtocolViolation("welcome received twice");
      default: {
        const stream = this.streams.get(msg.stream);
        // A stream we cancelled or failed: its last messages are still in flight.
        if (stream === undefined) return [];
        try {
          return this._receiveStreamMessage(stream, msg);
        } catch (e) {
          if (!e.streamFailure) throw e;
          // The stream cannot be trusted any more: drop it, tell the server.
          this.cancel(stream.id);
          return [{ type: "stream_failed", stream: stream.id, error: e }];
        }
      }
    }
  }

  _receiveStreamMessage(stream, msg) {
    if (msg.t === "hits") {
      this._receiveHits(stream, msg);
      return [{ type: "hits", stream: stream.id, hits: msg }];
    }
    if (msg.t === "page") {
      this._receivePage(stream, msg);
      return [{ type: "page", stream: stream.id, page: msg }];
    }
    if (msg.t === "opened") {
      if (stream.opened !== null) throw streamFailure("bad_message", `stream ${stream.id} opened twice`);
      if (msg.compression != null) {
        if (!(stream.request.compress || []).includes(msg.compression)) {
          throw streamFailure("bad_message", `stream ${stream.id}: the server chose compression ${JSON.stringify(msg.compression.slice(0, 20))}, which was not offered`);
        }
        stream.codec = this.codecs[msg.compression];
      }
      stream.opened = msg;
      // Pages start at the offset the server announces (docs/protocol.md §4).
      stream.expectedOffset = msg.offset;
      return [{ type: "opened", stream: stream.id, opened: msg }];
    }
    if (stream.opened === null) throw streamFailure("bad_message", `${msg.t} before opened on stream ${stream.id}`);
    if (msg.t === "event") {
      stream.expectedOffset = msg.offset;
      return [{ type: "event", stream: stream.id, event: msg }];
    }
    this._receiveEnd(stream, msg);
    this._drop(stream);
    return [{ type: "ended", stream: stream.id, end: msg }];
  }

  _receiveHits(stream, hits) {
    const sid = stream.id;
    if (!stream.scan) throw streamFailure("bad_message", `hits on stream ${sid}, which pages a file`);
    if (stream.opened === null) throw streamFailure("bad_message", `hits before opened on stream ${sid}`);
    if (hits.seq !== stream.expectedSeq) {
      const kind = hits.seq < stream.expectedSeq ? "duplicate" : "gap before";
      throw streamFailure("bad_message", `${kind} hits ${hits.seq} on stream ${sid} (expected ${stream.expectedSeq})`);
    }
    if (hits.seq > stream.grantedMax) {
      throw streamFailure("credit_violation", `hits ${hits.seq} on stream ${sid} exceed the credit (up to ${stream.grantedMax})`);
    }
    if (hits.scanned < stream.expectedOffset) {
      throw streamFailure("bad_message", `hits ${hits.seq} on stream ${sid} go back to offset ${hits.scanned}`);
    }
    let last = -1;
    for (const match of hits.matches) {
      if (!validMatch(match) || match.offset < last || match.offset >= hits.scanned) {
        throw streamFailure("bad_message", `hits ${hits.seq} on stream ${sid} hold a malformed or misplaced match`);
      }
      last = match.offset;
    }
    stream.expectedSeq += 1;
    stream.receivedBytes += hits.scanned - stream.expectedOffset;
    stream.expectedOffset = hits.scanned;
    stream.matches += hits.matches.length;
  }

  _receivePage(stream, page) {
    const sid = stream.id;
    if (stream.scan) throw streamFailure("bad_message", `page on scan stream ${sid}`);
    if (stream.opened === null) throw streamFailure("bad_message", `page before opened on stream ${sid}`);
    if (page.seq !== stream.expectedSeq) {
      const kind = page.seq < stream.expectedSeq ? "duplicate" : "gap before";
      throw streamFailure("bad_message", `${kind} page ${page.seq} on stream ${sid} (expected ${stream.expectedSeq})`);
    }
    if (page.seq > stream.grantedMax) {
      throw streamFailure("credit_violation", `page ${page.seq} on stream ${sid} exceeds the credit (up to ${stream.grantedMax})`);
    }
    if (page.offset !== stream.expectedOffset) {
      throw streamFailure("bad_message", `page ${page.seq} on stream ${sid} is at offset ${page.offset}, expected ${stream.expectedOffset}`);
    }
    if (page.size != null) this._decompress(stream, page);
    const data = page.data;
    if (data.length === 0) throw streamFailure("bad_message", `page ${page.seq} on stream ${sid} is empty`);
    if (stream.check) {
      const h = this.xxh3;
      h.init();
      h.update(data);
      if (!sameBytes(h.digest("binary"), page.xxh)) {
        throw streamFailure("integrity", `page ${page.seq} of stream ${sid} (offset ${page.offset}) failed its checksum`);
      }
      if (stream.digest !== null) this.xxh128.update(stream.digest, data);
    }
    if (stream.sha256 !== null) this.sha.update(stream.sha256, data);
    stream.expectedSeq += 1;
    stream.expectedOffset += data.length;
    stream.receivedBytes += data.length;
    const probe = stream.probe;
    if (probe !== null && page.seq >= probe[0]) {
      stream.probe = null;
      if (stream.auto && stream.consumedSeq - probe[1] >= Math.floor(stream.window / 2)) {
        // The window limited the flow this round trip.  Far below the cap,
        // grow fourfold (a quick start for long fat pipes); near it, double.
        const factor = stream.window * 4 <= stream.maxWindow ? 4 : 2;
        stream.window = Math.min(stream.window * factor, stream.maxWindow);
      }
    }
  }

  /** A compressed page: check its size, decompress it in place (page.data), or fail the stream. */
  _decompress(stream, page) {
    const sid = stream.id;
    const size = page.size;
    if (stream.codec === null) {
      throw streamFailure("bad_message", `compressed page ${page.seq} on stream ${sid}, which did not negotiate compression`);
    }
    const limit = stream.opened.page_size || stream.request.page_size || 4 << 20;
    if (!(size >= 1 && size <= limit)) {
      throw streamFailure("bad_message", `compressed page ${page.seq} on stream ${sid} claims ${size} bytes (pages are 1 to ${limit})`);
    }
    let data;
    try {
      data = stream.codec.decode(page.data, size);
    } catch (e) {
      data = null;
    }
    if (data === null || data.length !== size) {
      throw streamFailure("integrity", `page ${page.seq} of stream ${sid} (offset ${page.offset}): a compressed page does not decompress to its ${size} bytes`);
    }
    page.data = data;
    page.size = null;
  }

  _receiveEnd(stream, end) {
    const sid = stream.id;
    if (stream.scan) {
      if (end.pages !== stream.expectedSeq || end.count == null
          || (!stream.request.count_only && end.count !== stream.matches)) {
        throw streamFailure("bad_message", `scan ${sid} ended after ${end.pages} hits / ${end.count} matches, `
          + `but ${stream.expectedSeq} hits / ${stream.matches} matches arrived`);
      }
      if (end.length < stream.receivedBytes) {
        throw streamFailure("bad_message", `scan ${sid} ended having scanned fewer bytes than its hits reported`);
      }
      return;
    }
    if (end.pages !== stream.expectedSeq || end.length !== stream.receivedBytes) {
      throw streamFailure("integrity", `stream ${sid} ended after ${end.pages} pages / ${end.length} bytes, `
        + `but ${stream.expectedSeq} pages / ${stream.receivedBytes} bytes arrived`);
    }
    if (stream.digest !== null && !sameBytes(this.xxh128.digest(stream.digest), end.digest)) {
      throw streamFailure("integrity", `stream ${sid}: the digest of the received bytes does not match`);
    }
    if (stream.sha256 !== null && !(end.sha256 && sameBytes(this.sha.digest(stream.sha256), end.sha256))) {
      throw streamFailure("integrity", `stream ${sid}: the sha256 of the received bytes does not match`);
    }
  }

  _receiveError(msg) {
    const error = streamError(msg.code, msg.message);
    if (msg.stream != null) {
      const stream = this.streams.get(msg.stream);
      if (stream === undefined) return []; // e.g. the confirmation of our own cancel
      this._drop(stream);
      return [{ type: "stream_failed", stream: msg.stream, error }];
    }
    if (msg.id != null) return [{ type: "request_failed", id: msg.id, error }];
    return this._failConnection(streamError(msg.code, msg.message), null);
  }
}
