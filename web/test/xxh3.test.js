// collector-xxh3.js, the one-pass XXH3-64 / XXH3-128 digests, against
// hash-wasm: every length class of the algorithm, streams cut every way,
// and the collector core checking long pages with it.
//
//   node --test web/test/

import assert from "node:assert/strict";
import { test } from "node:test";

import { Encoder } from "@msgpack/msgpack";
import { createXXHash128, createXXHash3 } from "hash-wasm";

import { CollectorProtocol } from "../collector-core.js";
import { createXXH3 } from "../collector-xxh3.js";
import { rng } from "../testkit/fakefs.js";

const short = { xxh3: await createXXHash3(), xxh128: await createXXHash128() };
const digests = await createXXH3(short);
const ref3 = await createXXHash3();
const ref128 = await createXXHash128();
const hex = (bytes) => Buffer.from(bytes).toString("hex");
const xxh3 = (data) => { ref3.init(); ref3.update(data); return ref3.digest("binary"); };
const xxh128 = (data) => { ref128.init(); ref128.update(data); return ref128.digest("binary"); };

// Bytes that differ at every position, so a stripe taken twice or skipped shows.
const DATA = new Uint8Array(5 << 20);
{
  const r = rng(13);
  for (let i = 0; i < DATA.length; i += 4) new DataView(DATA.buffer).setUint32(i, Math.floor(r() * 2 ** 32));
}

test("Node 20 has WebAssembly SIMD, so the one-pass digests are there", () => {
  assert.ok(digests, "createXXH3 returned null");
});

test("XXH3-64 and XXH3-128 of one input equal hash-wasm's, at every length class and around each boundary", () => {
  // 0-240: hash-wasm's short paths; 241+: stripes, blocks (1 KiB), the data window (1 MiB) and beyond.
  const lengths = [0, 1, 3, 4, 8, 9, 16, 17, 128, 129, 240, 241, 255, 256, 257, 319, 320, 1023, 1024, 1025,
    1087, 1088, 1089, 2047, 2048, 4096 + 7, 65536, 262144, 262145, (1 << 20) - 1, 1 << 20, (1 << 20) + 1,
    (1 << 20) + 64, (1 << 20) + 1024 + 1, 3 << 20, 5 << 20];
  for (const n of lengths) {
    const input = DATA.subarray(0, n);
    assert.equal(hex(digests.page(input)), hex(xxh3(input)), `XXH3-64 of ${n} bytes`);
    const state = digests.stream();
    digests.update(state, input);
    assert.equal(hex(digests.digest128(state)), hex(xxh128(input)), `XXH3-128 of ${n} bytes`);
  }
});

test("a stream of pages: each page's XXH3-64 and the stream's XXH3-128, one pass or two, equal hash-wasm's", () => {
  // 256 KiB and 1 KiB pages take the shared pass after the first; the others do not.
  const cases = [[262144, 9], [1 << 20, 3], [1024, 40], [4096, 3], [1000, 50], [64, 100], [7, 300], [300, 20],
    [241, 30], [2 << 20, 2]];
  for (const [size, count] of cases) {
    const state = digests.stream();
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const page = DATA.subarray(offset, offset + size);
      offset += size;
      assert.equal(hex(digests.page(page, state)), hex(xxh3(page)), `page ${i} of ${size} bytes`);
    }
    assert.equal(hex(digests.digest128(state)), hex(xxh128(DATA.subarray(0, offset))), `${count} pages of ${size}`);
  }
});

test("streams cut at random (seeded) give hash-wasm's digests", () => {
  const r = rng(2026);
  for (let trial = 0; trial < 150; trial++) {
    const total = r.int(0, 600000);
    const state = digests.stream();
    let offset = 0;
    while (offset < total) {
      // Mostly small cuts, some large; a few multiples of 1 KiB so the shared pass runs mid-stream.
      let n = r.chance(0.2) ? 1024 * r.int(1, 300) : Math.floor(r() ** 3 * 70000) + 1;
      n = Math.min(n, total - offset);
      const page = DATA.subarray(offset, offset + n);
      offset += n;
      assert.equal(hex(digests.page(page, state)), hex(xxh3(page)), `trial ${trial}: page of ${n} at ${offset - n}`);
    }
    assert.equal(hex(digests.digest128(state)), hex(xxh128(DATA.subarray(0, total))), `trial ${trial}: ${total} bytes`);
  }
});

// ------------------------------------------------------------------ in the core

const encoder = new Encoder();
const WELCOME = {
  t: "welcome", version: 1, server: "xxh3", page_size: 262144, max_page_size: 4 << 20, max_window: 64, max_streams: 4,
};

/** A core with the one-pass digests, welcomed, with one stream opened at offset 0. */
function openedCore() {
  const core = new CollectorProtocol({ hashers: { ...short, pages: digests } });
  core.receive(encoder.encode(WELCOME));
  const sid = core.open("f.bin", { window: 64 });
  core.receive(encoder.encode({ t: "opened", stream: sid, path: "f.bin", offset: 0, size: null }));
  core.dataToSend();
  return { core, sid };
}

function pages(sizes) {
  let offset = 0;
  return sizes.map((n, seq) => {
    const data = DATA.subarray(offset, offset + n);
    const page = { t: "page", stream: 1, seq, offset, data, xxh: xxh3(data) };
    offset += n;
    return page;
  });
}

test("the core checks long pages and the stream's digest with the one-pass digests", () => {
  const sizes = [262144, 262144, 262144, 100000, 262144, 5];
  const { core, sid } = openedCore();
  for (const page of pages(sizes)) {
    const events = core.receive(encoder.encode(page));
    assert.deepEqual(events.map((e) => e.type), ["page"]);
    core.consumed(sid, page.seq);
  }
  const length = sizes.reduce((a, b) => a + b);
  const end = { t: "end", stream: sid, pages: sizes.length, length, digest: xxh128(DATA.subarray(0, length)) };
  assert.deepEqual(core.receive(encoder.encode(end)).map((e) => e.type), ["ended"]);
});

test("with the one-pass digests, a corrupted long page fails its stream (integrity), and so does a wrong end digest", () => {
  {
    const { core } = openedCore();
    const [first, second] = pages([262144, 262144]);
    assert.deepEqual(core.receive(encoder.encode(first)).map((e) => e.type), ["page"]);
    const bad = second.data.slice();
    bad[200000] ^= 1;
    const events = core.receive(encoder.encode({ ...second, data: bad }));
    assert.deepEqual(events.map((e) => [e.type, e.error && e.error.code]), [["stream_failed", "integrity"]]);
  }
  {
    const { core } = openedCore();
    const sent = pages([262144, 262144]);
    for (const page of sent) core.receive(encoder.encode(page));
    const digest = xxh128(DATA.subarray(0, 2 * 262144));
    digest[15] ^= 1;
    const events = core.receive(encoder.encode({ t: "end", stream: 1, pages: 2, length: 2 * 262144, digest }));
    assert.deepEqual(events.map((e) => [e.type, e.error && e.error.code]), [["stream_failed", "integrity"]]);
  }
});
