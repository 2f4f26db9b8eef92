// The shared conformance vectors (tests/vectors/) replayed on the browser's
// collector core, web/collector-core.js: frames in, events and frames out,
// as tests/vectors/README.md describes.  pytest replays the same vectors on
// the Python core (tests/test_vectors.py).
//
//   node --test web/test/

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

import { Decoder, Encoder } from "@msgpack/msgpack";
import { createSHA256, createXXHash128, createXXHash3 } from "hash-wasm";

import { CollectorProtocol, LocalProtocolError, MESSAGES, validate } from "../collector-core.js";
import { zstdCodec } from "../collector.js";

const VECTORS = new URL("../../tests/vectors/", import.meta.url);
const SCHEMA = JSON.parse(readFileSync(new URL("messages.json", VECTORS), "utf8")).messages;

// Vectors collector-core.js does not pass yet, with the reason.  A vector
// listed here that passes fails the run, so the list stays true.
const XFAIL = {};

const WELCOME = {
  t: "welcome", version: 1, server: "vectors", page_size: 4, max_page_size: 64, max_window: 16, max_streams: 4,
};

const hashers = {
  xxh3: await createXXHash3(), xxh128: await createXXHash128(), sha256: await createSHA256(),
};
// The codecs a stream may offer (open with compress: true): the shell's zstd.
const codecs = { zstd: await zstdCodec() };
// Separate instances for the harness's own $xxh3/$xxh128 forms.
const ownXXH3 = await createXXHash3();
const ownXXH128 = await createXXHash128();
const encoder = new Encoder();
const decoder = new Decoder();

// ------------------------------------------------------------------ the encodings of tests/vectors/README.md

function toBytes(kind, text) {
  if (kind === "$bin") return new Uint8Array(Buffer.from(text, "hex"));
  const data = new TextEncoder().encode(text);
  if (kind === "$utf8") return data;
  if (kind === "$xxh3") { ownXXH3.init(); ownXXH3.update(data); return ownXXH3.digest("binary"); }
  if (kind === "$xxh128") { ownXXH128.init(); ownXXH128.update(data); return ownXXH128.digest("binary"); }
  if (kind === "$sha256") return new Uint8Array(createHash("sha256").update(data).digest());
  throw new Error(`unknown bytes form ${kind}`);
}

/** JSON with the {"$...": ...} bytes forms -> values with Uint8Arrays. */
function native(value) {
  if (Array.isArray(value)) return value.map(native);
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0].startsWith("$")) return toBytes(keys[0], value[keys[0]]);
    return Object.fromEntries(keys.map((k) => [k, native(value[k])]));
  }
  return value;
}

/** Leave out nil and default-valued fields, and error.message (README, "Frames out"). */
function normalise(frame) {
  const fields = SCHEMA[frame.t];
  const out = { t: frame.t };
  for (const [key, value] of Object.entries(frame)) {
    if (key === "t" || value === null || value === undefined) continue;
    const spec = fields[key];
    if (spec && !spec.required && spec.default === value) continue;
    if (frame.t === "error" && key === "message") continue;
    out[key] = value instanceof Uint8Array ? new Uint8Array(value) : value;
  }
  return out;
}

function decodeOut(frames) {
  return frames.map((frame) => {
    const message = validate(decoder.decode(frame)); // what we send must be a valid message
    return normalise(message);
  });
}

function plain(value) {
  // Decoded bins may be views into a larger buffer; compare their bytes only.
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** One core event in the vocabulary of the README's event table. */
function eventObject(event) {
  const strip = ({ t, ...fields }) => plain(fields);
  switch (event.type) {
    case "welcomed": return { event: "welcomed", ...strip(event.welcome) };
    case "listing": return { event: "listing", truncated: false, ...strip(event.listing) };
    case "request_failed": return { event: "request_failed", id: event.id, code: event.error.code };
    case "opened": return { event: "opened", ...strip(event.opened) };
    case "page": return { event: "page", stream: event.stream, ...strip(event.page) };
    case "hits": return { event: "hits", stream: event.stream, ...strip(event.hits) };
    case "located": return { event: "located", ...strip(event.located) };
    case "event": return { event: "event", ...strip(event.event) };
    case "ended": return { event: "ended", ...strip(event.end) };
    case "stream_failed": return { event: "stream_failed", stream: event.stream, code: event.error.code };
    case "connection_failed": return { event: "connection_failed", code: event.error.code };
    default: throw new Error(`unknown event ${event.type}`);
  }
}

/** Only the fields the vector lists are compared. */
function project(actual, expected) {
  return Object.fromEntries(Object.keys(expected).map((k) => [k, actual[k] === undefined ? null : actual[k]]));
}

// ------------------------------------------------------------------ replay

const CAMEL = {
  page_size: "pageSize", if_match: "ifMatch", ignore_case: "ignoreCase", max_text: "maxText",
  count_only: "countOnly", line_numbers: "lineNumbers", keep_cr: "keepCr",
};

class CollectorSide {
  constructor(options) {
    this.core = new CollectorProtocol({
      hashers,
      token: options.token ?? null,
      agent: options.agent ?? "vectors",
      initialWindow: options.initial_window ?? 16,
      maxWindowBytes: options.max_window_bytes ?? 16 << 20,
      codecs,
    });
    this.closeCode = null;
  }

  receive(frame) {
    const events = this.core.receive(frame);
    for (const e of events) if (e.type === "connection_failed" && e.closeCode !== null) this.closeCode = e.closeCode;
    return events.map(eventObject);
  }

  /** Perform an action; true if the core refused it as local misuse. */
  act(step) {
    const { do: action, out, events, close, local_error: localError, ...args } = step;
    try {
      switch (action) {
        case "start": return false;
        case "open": {
          const { path, ...rest } = args;
          const options = Object.fromEntries(Object.entries(rest).map(([k, v]) => [CAMEL[k] || k, v]));
          this.core.open(path, options);
          return false;
        }
        case "consume": this.core.consumed(args.stream, args.seq); return false;
        case "cancel": this.core.cancel(args.stream); return false;
        case "list": this.core.requestList(args.path ?? ""); return false;
        case "scan": {
          const { path, pattern, ...rest } = args;
          const options = Object.fromEntries(Object.entries(rest).map(([k, v]) => [CAMEL[k] || k, v]));
          this.core.scan(path, pattern, options);
          return false;
        }
        case "locate": this.core.requestLocate(args.path, { offset: args.offset ?? null, line: args.line ?? null }); return false;
        default: throw new Error(`unknown collector action ${action}`);
      }
    } catch (e) {
      if (e instanceof LocalProtocolError) return true;
      throw e;
    }
  }
}

function check(step, events, frames, closeCode, where, localError = false) {
  assert.equal(localError, step.local_error ?? false, `${where}: local error`);
  const expected = native(step.events ?? []);
  assert.equal(events.length, expected.length, `${where}: events ${JSON.stringify(events)}`);
  expected.forEach((e, i) => assert.deepStrictEqual(project(events[i], e), e, `${where}: event ${i}`));
  assert.deepStrictEqual(decodeOut(frames), native(step.out ?? []).map(normalise), `${where}: frames out`);
  assert.equal(closeCode, step.close ?? null, `${where}: close code`);
}

function replay(vector) {
  const options = vector.options ?? {};
  const side = new CollectorSide(options);
  let steps = vector.steps;
  const hello = side.core.dataToSend();
  if (vector.handshake ?? true) {
    assert.deepStrictEqual(decodeOut(hello), [normalise({ t: "hello", token: options.token ?? null, agent: options.agent ?? "vectors" })]);
    const events = side.receive(encoder.encode(WELCOME));
    assert.deepStrictEqual(events.map((e) => e.event), ["welcomed"]);
    assert.equal(side.core.dataToSend().length, 0);
  } else {
    assert.equal(steps[0].do, "start", "a vector without handshake starts with start");
    check(steps[0], [], hello, null, "step 0 (start)");
    steps = steps.slice(1);
  }
  steps.forEach((step, index) => {
    const closedBefore = side.closeCode;
    let events = [];
    let localError = false;
    if ("in" in step) events = side.receive(encoder.encode(native(step.in)));
    else if ("in_raw" in step) events = side.receive(new Uint8Array(Buffer.from(step.in_raw, "hex")));
    else if ("in_text" in step) events = side.receive(step.in_text);
    else localError = side.act(step);
    const closeCode = side.closeCode === closedBefore ? null : side.closeCode;
    check(step, events, side.core.dataToSend(), closeCode, `step ${index} ${JSON.stringify(step).slice(0, 100)}`, localError);
  });
}

const vectors = [];
for (const name of readdirSync(VECTORS).sort()) {
  if (!name.endsWith(".json") || name === "messages.json") continue;
  for (const vector of JSON.parse(readFileSync(new URL(name, VECTORS), "utf8")).vectors) vectors.push(vector);
}

for (const vector of vectors.filter((v) => v.side === "collector")) {
  test(`${vector.name}: ${vector.proves}`, () => {
    if (XFAIL[vector.name]) {
      assert.throws(() => replay(vector), `${vector.name} passes now: remove it from XFAIL`);
      return;
    }
    replay(vector);
  });
}

test("collector-core.js declares exactly the messages, fields, types and defaults of messages.json", () => {
  const declared = Object.fromEntries(Object.entries(MESSAGES).map(([type, fields]) => [type,
    Object.fromEntries(Object.entries(fields).map(([name, f]) => [name,
      f.required ? { type: f.type, required: true } : { type: f.type, default: f.default }]))]));
  assert.deepStrictEqual(declared, SCHEMA);
});

test("vector names are unique and every vector names its side", () => {
  const names = vectors.map((v) => v.name);
  assert.equal(new Set(names).size, names.length);
  for (const v of vectors) assert.ok(["collector", "pager"].includes(v.side), v.name);
});
