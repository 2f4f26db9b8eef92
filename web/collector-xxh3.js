// XXH3-64 of each page and XXH3-128 of its stream in one pass over the
// bytes, with WebAssembly SIMD: the collector's integrity checks.
//
// hash-wasm's XXH3 is scalar WebAssembly (2-3 GiB/s), and the collector ran
// it twice over every byte (the page's XXH3-64, then the stream's XXH3-128):
// that was most of collector.js's cost beside a raw WebSocket.  XXH3 (the
// xxHash specification, v0.8) hashes inputs over 240 bytes with eight
// 64-bit accumulators: each 64-byte stripe adds an amount that depends only
// on the stripe and on where it falls in its 1024-byte block, and every
// block ends in a scramble.  XXH3-64 and XXH3-128 accumulate alike and
// differ only in the final merge.  So when a page starts on a block
// boundary of its stream (always, for pages of a multiple of 1 KiB), one
// pass computes each stripe's amount once and adds it to both the page's
// and the stream's accumulators.  The loop is a few dozen SIMD
// instructions, assembled below; the merges run in JS with BigInt, once per
// digest.  Inputs of at most 240 bytes (and streams that short) go to
// hash-wasm, whose short-input paths we need not repeat.
//
//   const digests = await createXXH3({ xxh3, xxh128 }); // hash-wasm hashers, for short inputs
//   if (digests) {                                   // null without WebAssembly SIMD
//     const s = digests.stream();
//     const pageXxh = digests.page(data, s);         // XXH3-64 of data; s also takes data
//     const streamXxh = digests.digest128(s);        // XXH3-128 of everything s took
//   }
// Digests are canonical (big-endian) bytes, as hash-wasm's digest("binary").

// The specification's default secret (XXH3_kSecret), 192 bytes.
const SECRET_HEX = "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f"
  + "cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
  + "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8"
  + "a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364"
  + "eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e"
  + "2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e";

const M64 = (1n << 64n) - 1n;
const PRIME32_1 = 0x9E3779B1n;
const PRIME32_2 = 0x85EBCA77n;
const PRIME32_3 = 0xC2B2AE3Dn;
const PRIME64_1 = 0x9E3779B185EBCA87n;
const PRIME64_2 = 0xC2B2AE3D27D4EB4Fn;
const PRIME64_3 = 0x165667B19E3779F9n;
const PRIME64_4 = 0x85EBCA77C2B2AE63n;
const PRIME64_5 = 0x27D4EB2F165667C5n;
const PRIME_MX1 = 0x165667919E3779F9n;
const INIT_ACC = [PRIME32_3, PRIME64_1, PRIME64_2, PRIME64_3, PRIME64_4, PRIME32_2, PRIME64_5, PRIME32_1];

const SHORT = 240; // longest input hashed by XXH3's short paths (hash-wasm here)
const STRIPE = 64;
const STRIPES_PER_BLOCK = 16; // (192-byte secret - 64) / 8
const SCRAMBLE_AT = 128; // the secret's last 64 bytes key the scramble
const LAST_STRIPE_AT = 121; // 192 - 64 - 7: the last stripe's secret
const MERGE_LOW_AT = 11;
const MERGE_HIGH_AT = 117; // 192 - 64 - 11

// The WebAssembly module's memory: the secret at 0, two accumulator sets
// and a scratch one, the last stripe, then the window the data is copied into.
const ACC_A = 256;
const ACC_B = 320;
const SCRATCH = 384;
const LAST = 448;
const DATA = 1024;
const CAP = 1 << 20; // bytes copied in per call: a multiple of the stripe
const MEMORY_PAGES = 17; // 64 KiB each: DATA + CAP fits

// ------------------------------------------------------------------ the assembled loop

const uleb = (n) => {
  const out = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
};
const sleb = (n) => {
  const out = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(byte & 0x40)) || (n === -1 && byte & 0x40)) { out.push(byte); return out; }
    out.push(byte | 0x80);
  }
};
const I32 = 0x7f;
const V128 = 0x7b;
const get = (i) => [0x20, ...uleb(i)];
const set = (i) => [0x21, ...uleb(i)];
const i32 = (n) => [0x41, ...sleb(n)];
const simd = (op) => [0xfd, ...uleb(op)];
const load = (offset) => [...simd(0x00), 0, ...uleb(offset)]; // v128.load align=1
const store = (offset) => [...simd(0x0b), 0, ...uleb(offset)];
const XOR = simd(0x51);
const I64X2_SHR_U = simd(0xcd);
const I64X2_ADD = simd(0xce);
const I64X2_MUL = simd(0xd5);
const v128const = (bytes) => [...simd(0x0c), ...bytes];
// The two 64-bit lanes swapped (XXH3 adds each stripe word to its neighbour's accumulator).
const SWAP_LANES = [...simd(0x0d), 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];
// The low (high) 32-bit halves of both 64-bit lanes gathered into the first
// two 32-bit lanes, for i64x2.extmul_low_i32x4_u: lo32(k) * hi32(k) per lane.
const LOW_WORDS = [...simd(0x0d), 0, 1, 2, 3, 8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11];
const HIGH_WORDS = [...simd(0x0d), 4, 5, 6, 7, 12, 13, 14, 15, 4, 5, 6, 7, 12, 13, 14, 15];
const I64X2_EXTMUL_LOW_U = simd(0xde);
const splat64 = (value) => {
  const bytes = [];
  for (let lane = 0; lane < 2; lane++) for (let i = 0n; i < 8n; i++) bytes.push(Number((value >> (8n * i)) & 255n));
  return v128const(bytes);
};

/**
 * One stripe's amount for the accumulator pair j (bytes 16j..16j+15):
 * swap(data) + lo32(data ^ key) * hi32(data ^ key), left on the stack.
 * `d` and `k` are scratch v128 locals, `p` the data pointer, `s` the
 * secret pointer (locals).
 */
function stripeAmount(j, p, s, d, k) {
  return [
    ...get(p), ...load(16 * j), ...set(d),
    ...get(d), ...get(s), ...load(16 * j), ...XOR, ...set(k),
    ...get(d), ...get(d), ...SWAP_LANES, // swap(data)
    ...get(k), ...get(k), ...LOW_WORDS,
    ...get(k), ...get(k), ...HIGH_WORDS,
    ...I64X2_EXTMUL_LOW_U,
    ...I64X2_ADD,
  ];
}

/** acc ^= acc >> 47; acc ^= key; acc *= PRIME32_1, for the pair j in local `a`. */
function scramble(j, a) {
  return [
    ...get(a), ...get(a), ...i32(47), ...I64X2_SHR_U, ...XOR,
    ...i32(0), ...load(SCRAMBLE_AT + 16 * j), ...XOR,
    ...splat64(PRIME32_1), ...I64X2_MUL, ...set(a),
  ];
}

/**
 * accumulate2(accA, accB, p, stripes, pos) -> pos: add `stripes` stripes
 * at p to both accumulator sets (a page's and its stream's), the first at
 * position `pos` of its block, scrambling both at each block's end;
 * returns the position after the last.  With `two` false, accumulate(acc,
 * p, stripes, pos) keeps one set.
 */
function accumulateBody(two) {
  // Parameters, then locals: a0..a3, b0..b3, d, k, t (v128); s (i32).
  const P = two ? { accA: 0, accB: 1, p: 2, n: 3, pos: 4 } : { accA: 0, p: 1, n: 2, pos: 3 };
  const first = two ? 5 : 4;
  const a = [0, 1, 2, 3].map((j) => first + j);
  const b = [0, 1, 2, 3].map((j) => first + 4 + j);
  const d = first + 8;
  const k = first + 9;
  const t = first + 10;
  const s = first + 11;
  const code = [];
  for (let j = 0; j < 4; j++) code.push(...get(P.accA), ...load(16 * j), ...set(a[j]));
  if (two) for (let j = 0; j < 4; j++) code.push(...get(P.accB), ...load(16 * j), ...set(b[j]));
  code.push(0x02, 0x40, 0x03, 0x40); // block, loop
  code.push(...get(P.n), 0x45, 0x0d, 1); // if stripes == 0: break
  code.push(...get(P.pos), ...i32(3), 0x74, ...set(s)); // s = pos * 8: this stripe's secret
  for (let j = 0; j < 4; j++) {
    code.push(...stripeAmount(j, P.p, s, d, k));
    if (two) {
      code.push(...set(t));
      code.push(...get(a[j]), ...get(t), ...I64X2_ADD, ...set(a[j]));
      code.push(...get(b[j]), ...get(t), ...I64X2_ADD, ...set(b[j]));
    } else {
      code.push(...get(a[j]), ...I64X2_ADD, ...set(a[j]));
    }
  }
  code.push(...get(P.p), ...i32(STRIPE), 0x6a, ...set(P.p));
  code.push(...get(P.n), ...i32(1), 0x6b, ...set(P.n));
  code.push(...get(P.pos), ...i32(1), 0x6a, ...set(P.pos));
  code.push(...get(P.pos), ...i32(STRIPES_PER_BLOCK), 0x46, 0x04, 0x40); // if pos == 16
  for (let j = 0; j < 4; j++) {
    code.push(...scramble(j, a[j]));
    if (two) code.push(...scramble(j, b[j]));
  }
  code.push(...i32(0), ...set(P.pos), 0x0b); // pos = 0; end if
  code.push(0x0c, 0, 0x0b, 0x0b); // br loop; end loop; end block
  for (let j = 0; j < 4; j++) code.push(...get(P.accA), ...get(a[j]), ...store(16 * j));
  if (two) for (let j = 0; j < 4; j++) code.push(...get(P.accB), ...get(b[j]), ...store(16 * j));
  code.push(...get(P.pos), 0x0b);
  return { params: two ? 5 : 4, locals: [[11, V128], [1, I32]], code };
}

/** stripe(acc, p, secret): one stripe with the secret at `secret`, no scramble (the last stripe). */
function stripeBody() {
  const [acc, p, s, d, k] = [0, 1, 2, 3, 4];
  const code = [];
  for (let j = 0; j < 4; j++) {
    code.push(...get(acc)); // address for the store
    code.push(...get(acc), ...load(16 * j));
    code.push(...stripeAmount(j, p, s, d, k));
    code.push(...I64X2_ADD, ...store(16 * j));
  }
  code.push(0x0b);
  return { params: 3, locals: [[2, V128]], code };
}

function section(id, body) {
  return [id, ...uleb(body.length), ...body];
}
const vec = (items) => [...uleb(items.length), ...items.flat()];
const name = (text) => [...uleb(text.length), ...new TextEncoder().encode(text)];

function assemble() {
  const fns = [accumulateBody(true), accumulateBody(false), stripeBody()];
  const results = [[I32], [I32], []];
  const types = fns.map((fn, i) => [0x60, ...vec(Array(fn.params).fill([I32])), ...vec(results[i].map((r) => [r]))]);
  const bodies = fns.map((fn) => {
    const body = [...vec(fn.locals.map(([count, type]) => [...uleb(count), type])), ...fn.code];
    return [...uleb(body.length), ...body];
  });
  const exports = [["accumulate2", 0, 0], ["accumulate", 0, 1], ["stripe", 0, 2], ["memory", 2, 0]]
    .map(([n, kind, index]) => [...name(n), kind, ...uleb(index)]);
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(3, vec(fns.map((_, i) => uleb(i)))),
    ...section(5, vec([[0x01, ...uleb(MEMORY_PAGES), ...uleb(MEMORY_PAGES)]])),
    ...section(7, vec(exports)),
    ...section(10, vec(bodies)),
  ]);
}

// ------------------------------------------------------------------ digests

const SECRET = new Uint8Array(SECRET_HEX.match(/../g).map((h) => parseInt(h, 16)));
const SECRET_VIEW = new DataView(SECRET.buffer);
const INIT_BYTES = new Uint8Array(64);
{
  const view = new DataView(INIT_BYTES.buffer);
  INIT_ACC.forEach((v, i) => view.setBigUint64(8 * i, v, true));
}

function mul128Fold64(a, b) {
  const product = a * b;
  return (product & M64) ^ (product >> 64n);
}

function avalanche(h) {
  h ^= h >> 37n;
  h = (h * PRIME_MX1) & M64;
  return h ^ (h >> 32n);
}

function mergeAccs(acc, secretAt, start) {
  let result = start;
  for (let i = 0; i < 4; i++) {
    result += mul128Fold64(acc[2 * i] ^ SECRET_VIEW.getBigUint64(secretAt + 16 * i, true),
      acc[2 * i + 1] ^ SECRET_VIEW.getBigUint64(secretAt + 16 * i + 8, true));
  }
  return avalanche(result & M64);
}

function bigEndian(...words) {
  const out = new Uint8Array(8 * words.length);
  const view = new DataView(out.buffer);
  words.forEach((w, i) => view.setBigUint64(8 * i, w, false));
  return out;
}

/**
 * A stream's digest state: the accumulators and block position once past
 * 240 bytes; the bytes not yet accumulated (all of them while the stream
 * is short, then the 1 to 64 after the last stripe known not to be the
 * last); the last 64 bytes seen, for the final stripe.
 */
class StreamState {
  constructor() {
    this.total = 0;
    this.acc = INIT_BYTES.slice();
    this.pos = 0;
    this.pending = new Uint8Array(256);
    this.pendingLength = 0;
    this.last = new Uint8Array(STRIPE);
  }

  _remember(data) {
    const n = data.length;
    if (n >= STRIPE) {
      this.last.set(data.subarray(n - STRIPE));
    } else {
      this.last.copyWithin(0, n);
      this.last.set(data, STRIPE - n);
    }
  }
}

class XXH3Digests {
  constructor(instance, { xxh3, xxh128 }) {
    this.wasm = instance.exports;
    this.memory = new Uint8Array(this.wasm.memory.buffer);
    this.view = new DataView(this.wasm.memory.buffer);
    this.memory.set(SECRET, 0);
    this.short64 = xxh3;
    this.short128 = xxh128;
  }

  /** A fresh stream state (for page(..., state) and digest128). */
  stream() {
    return new StreamState();
  }

  /** Feed `data` to a stream state. */
  update(state, data) {
    if (data.length === 0) return;
    state._remember(data);
    if (state.total + data.length <= SHORT) {
      state.pending.set(data, state.pendingLength);
      state.pendingLength += data.length;
      state.total += data.length;
      return;
    }
    state.total += data.length;
    this.memory.set(state.acc, ACC_A);
    state.pos = this._run(ACC_A, null, state.pending.subarray(0, state.pendingLength), data, state.pos, state);
    state.acc.set(this.memory.subarray(ACC_A, ACC_A + 64));
  }

  /**
   * XXH3-64 of `data` (8 bytes, big-endian); with `state`, the stream
   * takes `data` too, in the same pass when the page starts on one of its
   * blocks.
   */
  page(data, state = null) {
    const n = data.length;
    if (n <= SHORT || state === null || state.total <= SHORT || state.pendingLength !== STRIPE
        || state.pos !== STRIPES_PER_BLOCK - 1) {
      const digest = this._page64(data);
      if (state !== null) this.update(state, data);
      return digest;
    }
    // The stream's held stripe is the last of its block and no longer its
    // last one: accumulate it; the page's stripes then fall where the
    // stream's do.
    const { memory } = this;
    memory.set(state.acc, ACC_B);
    memory.set(state.pending.subarray(0, STRIPE), DATA);
    const pos = this.wasm.accumulate(ACC_B, DATA, 1, state.pos);
    memory.set(INIT_BYTES, ACC_A);
    state.pos = this._run(ACC_A, ACC_B, new Uint8Array(0), data, pos, state);
    state.acc.set(memory.subarray(ACC_B, ACC_B + 64));
    state.total += n;
    state._remember(data);
    return bigEndian(this._finish64(ACC_A, data.subarray(n - STRIPE), n));
  }

  /** A stream is gone: nothing to do (its state holds no shared resource). */
  drop() {}

  /** XXH3-128 of all the bytes `state` took (16 bytes, big-endian: high word first). */
  digest128(state) {
    if (state.total <= SHORT) {
      const h = this.short128;
      h.init();
      h.update(state.pending.subarray(0, state.pendingLength));
      return h.digest("binary");
    }
    this.memory.set(state.acc, ACC_A);
    const acc = this._lastStripe(ACC_A, state.last);
    const total = BigInt(state.total);
    const low = mergeAccs(acc, MERGE_LOW_AT, (total * PRIME64_1) & M64);
    const high = mergeAccs(acc, MERGE_HIGH_AT, ~(total * PRIME64_2) & M64);
    return bigEndian(high, low);
  }

  _page64(data) {
    const n = data.length;
    if (n <= SHORT) {
      const h = this.short64;
      h.init();
      h.update(data);
      return h.digest("binary");
    }
    this.memory.set(INIT_BYTES, ACC_A);
    this._run(ACC_A, null, new Uint8Array(0), data, 0, null);
    return bigEndian(this._finish64(ACC_A, data.subarray(n - STRIPE), n));
  }

  _finish64(accAt, last, length) {
    const acc = this._lastStripe(accAt, last);
    return mergeAccs(acc, MERGE_LOW_AT, (BigInt(length) * PRIME64_1) & M64);
  }

  /** The accumulators at `accAt` after the last stripe, as BigInts (the memory keeps the state before it). */
  _lastStripe(accAt, last) {
    this.memory.copyWithin(SCRATCH, accAt, accAt + 64);
    this.memory.set(last, LAST);
    this.wasm.stripe(SCRATCH, LAST, LAST_STRIPE_AT);
    const acc = [];
    for (let i = 0; i < 8; i++) acc.push(this.view.getBigUint64(SCRATCH + 8 * i, true));
    return acc;
  }

  /**
   * Accumulate head + data (head: bytes held back before, at most 256)
   * into the set at accA (and accB), starting at block position `pos`,
   * through the data window; every stripe followed by at least one more
   * byte is taken, the rest (1 to 64 bytes) go to state.pending.  Returns
   * the block position after.
   */
  _run(accA, accB, head, data, pos, state) {
    const { memory, wasm } = this;
    memory.set(head, DATA);
    let filled = head.length;
    let read = 0;
    for (;;) {
      const take = Math.min(data.length - read, CAP - filled);
      memory.set(data.subarray(read, read + take), DATA + filled);
      filled += take;
      read += take;
      const final = read === data.length;
      const stripes = final ? Math.floor((filled - 1) / STRIPE) : Math.floor(filled / STRIPE);
      pos = accB === null ? wasm.accumulate(accA, DATA, stripes, pos) : wasm.accumulate2(accA, accB, DATA, stripes, pos);
      const done = DATA + stripes * STRIPE;
      if (final) {
        if (state !== null) {
          state.pending.set(memory.subarray(done, DATA + filled));
          state.pendingLength = DATA + filled - done;
        }
        return pos;
      }
      memory.copyWithin(DATA, done, DATA + filled);
      filled = DATA + filled - done;
    }
  }
}

/**
 * The one-pass digests, given hash-wasm's xxh3 and xxh128 hashers (for
 * inputs of at most 240 bytes); null where WebAssembly SIMD is missing.
 */
export async function createXXH3(shortHashers) {
  const bytes = assemble();
  if (typeof WebAssembly === "undefined" || !WebAssembly.validate(bytes)) return null;
  const { instance } = await WebAssembly.instantiate(bytes, {});
  return new XXH3Digests(instance, shortHashers);
}
