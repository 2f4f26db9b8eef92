// What a document holds of its file: rows, kept as compact chunks of bytes.
//
// DOM-free (the tests run it in Node).  Two layouts share one shape:
//
// * TextContent holds lines.  A chunk is a run of whole lines, contiguous
//   in one version of the file, kept as one byte buffer plus the start of
//   each line (4 bytes a line): 8 MiB of two-byte lines costs 8 MiB of
//   bytes and 16 MiB of starts, not four million strings.  Text is decoded
//   only for the rows on screen.
//   - A line longer than `lineCap` is held cut: its first `lineCap` bytes
//     end a chunk (`tailCut`) and the rest is skipped while reading on.
//   - A content may start inside a line whose start is out of reach (a jump
//     into a very long line): its first row is a fragment (`headCut`).
//   - A live event (rotation, truncation, a gap) is a chunk of one marker
//     row; after it, offsets (and, after rotation or truncation, line
//     numbers) start again in a new version.
//   - The unterminated last line (`tail`) is shown as the last row and grows
//     until its newline arrives, so a growing file never splits a line.
//
// * HexContent holds raw bytes, 16 to a row, rows aligned to absolute offsets.
//
// A row is `{offset, bytes, line, headCut, tailCut, event, version}`:
// `offset` is the file offset of its first byte in its version, `bytes` the
// held bytes without the newline, `line` its number (null while unknown).

export const NL = 10;
/** A chunk grows up to this many bytes by default (a longer line gets one of its own). */
export const CHUNK_BYTES = 64 << 10;
/** Bytes remembered of a cut line's end while reading through it (the model's overlap is at most this). */
export const SKIP_TAIL = 4096;

/** A growable byte buffer. */
class Bytes {
  constructor(capacity = 256) { this.buf = new Uint8Array(capacity); this.size = 0; }
  push(data) {
    if (this.size + data.length > this.buf.length) {
      let cap = Math.max(256, this.buf.length * 2);
      while (cap < this.size + data.length) cap *= 2;
      const bigger = new Uint8Array(cap);
      bigger.set(this.buf.subarray(0, this.size));
      this.buf = bigger;
    }
    this.buf.set(data, this.size);
    this.size += data.length;
  }
  view() { return this.buf.subarray(0, this.size); }
  clear() { this.buf = new Uint8Array(256); this.size = 0; }
}

/** A growable Uint32Array. */
class Starts {
  constructor() { this.arr = new Uint32Array(16); this.size = 0; }
  push(v) {
    if (this.size === this.arr.length) {
      const bigger = new Uint32Array(this.arr.length * 2);
      bigger.set(this.arr);
      this.arr = bigger;
    }
    this.arr[this.size++] = v;
  }
}

/** A run of whole lines (or one marker row), contiguous in one file version. */
class Chunk {
  constructor(version, offset, firstLine) {
    this.version = version;
    this.offset = offset; // file offset of the first byte
    this.data = new Bytes(1024);
    this.starts = new Starts(); // start of each row within data
    this.firstLine = firstLine; // number of the first row, null while unknown
    this.headCut = false; // the first row starts inside its line
    this.tailCut = false; // the last row is the cut head of a longer line
    this.lineEnd = null; // tailCut: file offset after that line's newline, once known
    this.event = null; // a marker: {kind, text, nextLine}
  }
  get rows() { return this.starts.size; }
  get held() { return this.data.size; }
  get endOffset() { return this.offset + this.data.size; }
  /** File offset where the next row begins (null while a cut line's end is unknown). */
  get nextOffset() { return this.event ? this.offset : this.tailCut ? this.lineEnd : this.endOffset; }
  /** Number of the row after this chunk, when known. */
  get nextLine() {
    if (this.event) return this.event.nextLine;
    return this.firstLine === null ? null : this.firstLine + this.rows;
  }
  closed(limit) { return this.data.size >= limit || this.tailCut || this.event !== null || this.sealed === true; }
}

function stripNewline(bytes) {
  const n = bytes.length;
  return n && bytes[n - 1] === NL ? bytes.subarray(0, n - 1) : bytes;
}

/**
 * The held lines of a text file.  Row indexes are positions in this content:
 * they move when rows are dropped or added at the top, and the model moves
 * its viewport in the same transition.
 */
export class TextContent {
  /**
   * @param {object} o
   * @param {number} o.version  version of the file at `offset`
   * @param {number} o.offset   file offset of the first byte to come
   * @param {number|null} o.firstLine  number of the line starting at `offset`, when known
   * @param {boolean} o.fragment  the first row starts inside a line
   * @param {number} o.lineCap  bytes held of one line at most
   */
  constructor({ version, offset, firstLine = null, fragment = false, lineCap = 64 << 10, chunkBytes = CHUNK_BYTES }) {
    this.kind = "text";
    this.lineCap = lineCap;
    this.chunkBytes = chunkBytes; // trimming drops whole chunks: keep them small beside the cap
    this.chunks = [];
    this.version = version; // the version appends belong to
    this.appendAt = offset; // file offset of the next appended byte
    this.nextLine = firstLine; // number of the next row to begin
    this.tail = new Bytes(256); // the unterminated last line
    this.tailOffset = offset;
    this.skipping = false; // reading through the rest of a cut line
    this.skipped = 0;
    this.endBytes = new Uint8Array(0); // the last bytes before `end`, held or read through (a resumed read must find them again)
    this.fragmentNext = fragment; // the next row to begin is a fragment
    this._index = null; // cumulative rows per chunk, rebuilt lazily
  }

  // ------------------------------------------------------------ size and rows

  /** Bytes held (what the cap bounds). */
  get held() {
    let n = this.tail.size;
    for (const c of this.chunks) n += c.held;
    return n;
  }
  get rowCount() { return this._rowsInChunks() + (this.tail.size ? 1 : 0); }
  /** File offset of the first held byte (in the first chunk's version). */
  get start() {
    const first = this.chunks[0];
    if (first) return first.offset;
    return this.tail.size ? this.tailOffset : this.appendAt;
  }
  /** File offset after the last byte appended (in `version`). */
  get end() { return this.appendAt; }
  /** The version of the first row: a back read must read that one. */
  get startVersion() { return this.chunks.length ? this.chunks[0].version : this.version; }
  /** The first row begins at a line start (nothing to drop before reading back). */
  get startIsLine() {
    const first = this.chunks[0];
    if (!first) return !this.fragmentNext;
    return !first.event && !first.headCut;
  }

  _idx() {
    if (!this._index) {
      this._index = new Array(this.chunks.length);
      let n = 0;
      this.chunks.forEach((c, i) => { n += c.rows; this._index[i] = n; });
    }
    return this._index;
  }
  _rowsInChunks() { const idx = this._idx(); return idx.length ? idx[idx.length - 1] : 0; }
  _dirty() { this._index = null; }

  /** Row index where chunk `i` begins. */
  chunkRow(i) { return i ? this._idx()[i - 1] : 0; }

  /** {chunk, k}: which chunk holds row `i` (chunk -1: the tail row). */
  _find(i) {
    const idx = this._idx();
    let lo = 0, hi = idx.length - 1;
    if (hi < 0 || i >= idx[hi]) return { chunk: -1, k: 0 };
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (idx[mid] > i) hi = mid; else lo = mid + 1;
    }
    return { chunk: lo, k: i - this.chunkRow(lo) };
  }

  /** Row `i`, or null. */
  row(i) {
    if (!(i >= 0 && i < this.rowCount)) return null;
    const { chunk, k } = this._find(i);
    if (chunk === -1) {
      return { offset: this.tailOffset, bytes: this.tail.view(), line: this.nextLine, headCut: this.fragmentNext,
        tailCut: false, event: null, version: this.version, partial: true };
    }
    const c = this.chunks[chunk];
    if (c.event) {
      return { offset: c.offset, bytes: new Uint8Array(0), line: null, headCut: false, tailCut: false,
        event: c.event, version: c.version };
    }
    const s = c.starts.arr;
    const from = s[k];
    const to = k + 1 < c.rows ? s[k + 1] : c.data.size;
    const last = k === c.rows - 1;
    return {
      offset: c.offset + from,
      bytes: stripNewline(c.data.buf.subarray(from, to)),
      line: c.firstLine === null ? null : c.firstLine + k,
      headCut: c.headCut && k === 0,
      tailCut: c.tailCut && last,
      lineEnd: c.tailCut && last ? c.lineEnd : null,
      sealed: c.sealed === true && last,
      event: null,
      version: c.version,
    };
  }

  /** Index of the row holding file offset `offset` of version `version` (the nearest one before it otherwise). */
  rowAt(offset, version = this.version) {
    let best = 0;
    for (let i = 0; i < this.chunks.length; i++) {
      const c = this.chunks[i];
      if (c.version > version || (c.version === version && c.offset > offset)) break;
      best = this.chunkRow(i);
      if (c.event || c.version !== version) { best += c.rows - 1; continue; }
      // Within the chunk: the last row starting at or before `offset`.
      const s = c.starts.arr;
      let lo = 0, hi = c.rows - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (c.offset + s[mid] <= offset) lo = mid; else hi = mid - 1;
      }
      best += lo;
    }
    if (this.tail.size && this.version === version && offset >= this.tailOffset) return this.rowCount - 1;
    return best;
  }

  // ------------------------------------------------------------ appending

  _newChunk(offset) {
    const c = new Chunk(this.version, offset, this.nextLine);
    if (this.fragmentNext) { c.headCut = true; this.fragmentNext = false; }
    this.chunks.push(c);
    this._dirty();
    return c;
  }

  /** Whole lines (each ending in \n) at file offset `offset`. */
  _pushLines(bytes, offset) {
    let pos = 0;
    const last = this.chunks[this.chunks.length - 1];
    let c = last && !last.closed(this.chunkBytes) && last.version === this.version && last.endOffset === offset && !this.fragmentNext
      ? last : null;
    while (pos < bytes.length) {
      if (!c) c = this._newChunk(offset + pos);
      let end = pos;
      while (end < bytes.length) {
        const next = bytes.indexOf(NL, end) + 1;
        if (c.data.size + (next - pos) > this.chunkBytes && (c.data.size > 0 || end > pos)) break;
        c.starts.push(c.data.size + (end - pos));
        end = next;
        if (this.nextLine !== null) this.nextLine++;
      }
      if (end > pos) {
        c.data.push(bytes.subarray(pos, end));
        this._dirty();
        pos = end;
      }
      if (pos < bytes.length) c = null; // full: the rest goes to a new chunk
    }
  }

  /** A line longer than the cap: its first `lineCap` bytes as a cut row. */
  _pushCut(head, offset, lineEnd) {
    const c = this._newChunk(offset);
    c.data.push(head.subarray(0, this.lineCap));
    c.starts.push(0);
    c.tailCut = true;
    c.lineEnd = lineEnd;
    if (this.nextLine !== null) this.nextLine++;
  }

  _growTail(bytes, offset) {
    if (!this.tail.size) this.tailOffset = offset;
    if (this.tail.size + bytes.length <= this.lineCap) { this.tail.push(bytes); return; }
    const head = new Uint8Array(this.lineCap);
    head.set(this.tail.view());
    head.set(bytes.subarray(0, this.lineCap - this.tail.size), this.tail.size);
    this.skipped = this.tail.size + bytes.length - this.lineCap;
    this._pushCut(head, this.tailOffset, null);
    this.tail.clear();
    this.skipping = true;
  }

  /** Keep the last SKIP_TAIL bytes before the end: `endBytes` then `b`. */
  _remember(b) {
    const a = this.endBytes;
    const keep = Math.min(SKIP_TAIL, a.length + b.length);
    const out = new Uint8Array(keep);
    const fromB = Math.min(b.length, keep);
    out.set(b.subarray(b.length - fromB), keep - fromB);
    if (keep > fromB) out.set(a.subarray(a.length - (keep - fromB)), 0);
    this.endBytes = out;
  }

  /** Bytes that start at `this.end` of the current version.  Returns rows added. */
  append(data) {
    const before = this.rowCount;
    const base = this.appendAt;
    this.appendAt += data.length;
    this._remember(data);
    let pos = 0;
    while (pos < data.length) {
      if (this.skipping) {
        const nl = data.indexOf(NL, pos);
        if (nl === -1) { this.skipped += data.length - pos; break; }
        this.chunks[this.chunks.length - 1].lineEnd = base + nl + 1;
        this.skipping = false;
        this.skipped = 0;
        pos = nl + 1;
        this.tailOffset = base + pos;
        this._dirty();
        continue;
      }
      const nl = data.indexOf(NL, pos);
      if (nl === -1) { this._growTail(data.subarray(pos), base + pos); break; }
      if (this.tail.size) {
        // The first newline completes the tail.
        const length = this.tail.size + (nl - pos);
        if (length > this.lineCap) {
          const head = new Uint8Array(this.lineCap);
          head.set(this.tail.view().subarray(0, this.lineCap));
          if (this.tail.size < this.lineCap) head.set(data.subarray(pos, pos + this.lineCap - this.tail.size), this.tail.size);
          this._pushCut(head, this.tailOffset, base + nl + 1);
        } else {
          const line = new Uint8Array(length + 1);
          line.set(this.tail.view());
          line.set(data.subarray(pos, nl + 1), this.tail.size);
          this._pushLines(line, this.tailOffset);
        }
        this.tail.clear();
        pos = nl + 1;
        this.tailOffset = base + pos;
        continue;
      }
      // Whole lines up to the last newline; any line over the cap is held cut.
      const lastNl = data.lastIndexOf(NL);
      let run = pos;
      for (let cursor = pos; cursor <= lastNl;) {
        const end = data.indexOf(NL, cursor);
        if (end - cursor > this.lineCap) {
          if (cursor > run) this._pushLines(data.subarray(run, cursor), base + run);
          this._pushCut(data.subarray(cursor, cursor + this.lineCap), base + cursor, base + end + 1);
          run = end + 1;
        }
        cursor = end + 1;
      }
      if (lastNl + 1 > run) this._pushLines(data.subarray(run, lastNl + 1), base + run);
      pos = lastNl + 1;
      this.tailOffset = base + pos;
    }
    return this.rowCount - before;
  }

  /**
   * A live event.  `newVersion`: offsets start again at `offset` in a new
   * file (rotation, truncation: line numbers restart when `offset` is 0).
   * Otherwise (a gap in a push source) offsets go on but line numbers are lost.
   */
  event(kind, text, { offset, newVersion }) {
    this.flushTail();
    if (this.skipping) { this.skipping = false; this.skipped = 0; }
    if (newVersion) this.version += 1;
    const nextLine = newVersion && offset === 0 ? 1 : null;
    const c = new Chunk(this.version, offset, null);
    c.event = { kind, text, nextLine };
    c.starts.push(0);
    this.chunks.push(c);
    this._dirty();
    this.nextLine = nextLine;
    this.appendAt = offset;
    this.tailOffset = offset;
    this.fragmentNext = false;
    this.endBytes = new Uint8Array(0);
  }

  /** The unterminated last line becomes a row of its own: nothing may join it any more. */
  flushTail() {
    if (!this.tail.size) return;
    const c = this._newChunk(this.tailOffset);
    c.data.push(this.tail.view());
    c.starts.push(0);
    c.sealed = true;
    if (this.nextLine !== null) this.nextLine++;
    this.tail.clear();
  }

  /**
   * Whole lines `bytes` at `offset`, ending where the first row begins (same
   * version).  `headCut`: the first of them is a fragment.  Returns rows added.
   */
  prepend(bytes, offset, { headCut = false, firstLine = null } = {}) {
    if (!bytes.length) return 0;
    const version = this.startVersion;
    const c = new Chunk(version, offset, firstLine);
    c.data.push(bytes);
    c.headCut = headCut;
    for (let pos = 0; pos < bytes.length;) {
      c.starts.push(pos);
      const nl = bytes.indexOf(NL, pos);
      pos = nl === -1 ? bytes.length : nl + 1;
    }
    if (!this.chunks.length && !this.tail.size) {
      this.chunks.push(c);
      this.appendAt = offset + bytes.length;
      this.tailOffset = this.appendAt;
      this.fragmentNext = false;
      this.endBytes = new Uint8Array(0);
      this._remember(bytes);
    } else if (!this.chunks.length) {
      // Only the tail is held: it follows the prepended lines.
      this.chunks.push(c);
      this.fragmentNext = false;
    } else {
      this.chunks.unshift(c);
    }
    this._dirty();
    this.propagateLines();
    return c.rows;
  }

  /** Known line numbers flow forward and backward through chunks that touch. */
  propagateLines() {
    const cs = this.chunks;
    const touch = (a, b) => !a.event && !b.event && a.version === b.version && !b.headCut && a.nextOffset === b.offset;
    for (let i = 1; i < cs.length; i++) {
      const a = cs[i - 1], b = cs[i];
      if (b.firstLine === null && a.nextLine !== null && (touch(a, b) || (a.event && a.version === b.version && a.offset === b.offset && !b.headCut))) b.firstLine = a.nextLine;
    }
    for (let i = cs.length - 2; i >= 0; i--) {
      const a = cs[i], b = cs[i + 1];
      if (a.firstLine === null && b.firstLine !== null && touch(a, b)) a.firstLine = b.firstLine - a.rows;
    }
    const last = cs[cs.length - 1];
    if (this.nextLine === null && last && last.version === this.version && !last.sealed && last.nextLine !== null
        && (last.event || last.nextOffset === this.tailOffset || (last.tailCut && this.skipping))) {
      this.nextLine = last.nextLine;
    }
  }

  /**
   * A line-index answer: the line holding `offset` (which the model asked
   * about: the start of a chunk, or of the tail) is number `line` and begins
   * at `lineStart`.  Returns true when it numbered rows.
   */
  assignLine(version, offset, line, lineStart) {
    for (const c of this.chunks) {
      if (c.event || c.version !== version || c.offset !== offset || c.firstLine !== null) continue;
      if (c.headCut ? lineStart > offset : lineStart !== offset) return false;
      c.firstLine = line;
      this.propagateLines();
      return true;
    }
    if (this.tail.size && this.version === version && this.tailOffset === offset && this.nextLine === null) {
      if (this.fragmentNext ? lineStart > offset : lineStart !== offset) return false;
      this.nextLine = line;
      this.propagateLines();
      return true;
    }
    return false;
  }

  /**
   * The line after the cut row (the last chunk, at `cutOffset`) is line `line`, starting at `offset`
   * (the line index said so): stop reading through the cut line and go on from there.  The byte
   * before `offset` must be its newline: it becomes what a resumed read checks first.  Returns true
   * when it applied (the reader appending must start again).
   */
  skipTo(cutOffset, line, offset) {
    const cut = this.chunks[this.chunks.length - 1];
    if (!this.skipping || !cut || !cut.tailCut || cut.offset !== cutOffset || cut.firstLine === null) return false;
    if (line !== cut.firstLine + 1 || offset <= cut.offset + cut.data.size) return false; // it was the last line
    cut.lineEnd = offset;
    this.skipping = false;
    this.skipped = 0;
    this.appendAt = offset;
    this.tailOffset = offset;
    this.nextLine = line;
    this.endBytes = new Uint8Array([NL]);
    this._dirty();
    return true;
  }

  /** Offset of the first row of the current version without a number (to look up), or null. */
  unnumbered() {
    for (const c of this.chunks) {
      if (!c.event && c.firstLine === null && c.version === this.version) return c.offset;
    }
    if (this.tail.size && this.nextLine === null) return this.tailOffset;
    return null;
  }

  // ------------------------------------------------------------ trimming

  /** Bytes that dropping whole chunks above row `keep` would free. */
  trimmableTop(keep) {
    let rows = 0, bytes = 0;
    for (const c of this.chunks) {
      if (rows + c.rows > keep) break;
      rows += c.rows;
      bytes += c.held;
    }
    return bytes;
  }

  /** Drop whole chunks from the top to free `bytes`, never row `keep` or after.  Returns rows dropped. */
  trimTop(bytes, keep) {
    let rows = 0, freed = 0, n = 0;
    while (n < this.chunks.length && freed < bytes && rows + this.chunks[n].rows <= keep) {
      rows += this.chunks[n].rows;
      freed += this.chunks[n].held;
      n++;
    }
    if (n) { this.chunks.splice(0, n); this._dirty(); }
    return rows;
  }

  /** Bytes that dropping the tail and whole chunks after row `keep` would free (never an event marker). */
  trimmableBottom(keep) {
    let bytes = 0;
    if (this.tail.size && this.rowCount - 1 > keep) bytes += this.tail.size;
    else if (this.tail.size) return 0;
    for (let i = this.chunks.length - 1; i > 0; i--) {
      const c = this.chunks[i];
      if (this.chunkRow(i) <= keep || c.event) break;
      bytes += c.held;
    }
    return bytes;
  }

  /**
   * Drop the tail and whole chunks from the bottom until at most `bytes` are
   * held, never row `keep` or before, never an event marker.  Returns true
   * when anything went: the end moved back, so whoever appended there must
   * start again from the new end.
   */
  trimBottom(bytes, keep) {
    let held = this.held;
    let dropped = false;
    if (held > bytes && this.tail.size && this.rowCount - 1 > keep) {
      held -= this.tail.size;
      this.tail.clear();
      dropped = true;
    }
    while (held > bytes && this.chunks.length > 1 && !this.tail.size) {
      const i = this.chunks.length - 1;
      const c = this.chunks[i];
      if (this.chunkRow(i) <= keep || c.event) break;
      held -= c.held;
      this.chunks.pop();
      this._dirty();
      dropped = true;
    }
    if (!dropped) return false;
    let last = this.chunks[this.chunks.length - 1];
    while (last && last.tailCut && this.chunks.length > 1) { // its last bytes are not held: do not resume after it
      this.chunks.pop();
      this._dirty();
      last = this.chunks[this.chunks.length - 1];
    }
    this.skipping = false;
    this.skipped = 0;
    this.fragmentNext = false;
    if (last) {
      this.version = last.version;
      this.appendAt = last.nextOffset;
      this.nextLine = last.nextLine;
    }
    this.tailOffset = this.appendAt;
    this.endBytes = new Uint8Array(0);
    if (last && !last.event && !last.tailCut && !last.sealed) this._remember(last.data.view());
    return true;
  }

  /** The last `n` bytes held before `end`, in the current version (what a resumed reader must find again). */
  lastBytes(n) {
    const e = this.endBytes;
    return e.subarray(Math.max(0, e.length - Math.min(n, SKIP_TAIL)));
  }

  /** The first `n` bytes held (a back read checks it finds them right after what it fetched). */
  firstBytes(n) {
    const first = this.chunks[0];
    if (!first) return this.tail.view().subarray(0, n);
    if (first.event) return new Uint8Array(0);
    return first.data.view().subarray(0, n);
  }
}

/** Raw bytes, 16 to a row, for binary files (and the hex view of any file). */
export class HexContent {
  constructor({ version, offset, chunkBytes = CHUNK_BYTES }) {
    this.kind = "hex";
    this.chunkBytes = chunkBytes;
    this.version = version;
    this.chunks = []; // [{offset, data: Bytes}], contiguous
    this.appendAt = offset;
  }
  get held() { let n = 0; for (const c of this.chunks) n += c.data.size; return n; }
  get start() { return this.chunks.length ? this.chunks[0].offset : this.appendAt; }
  get end() { return this.appendAt; }
  get startVersion() { return this.version; }
  get startIsLine() { return true; }
  get base() { const s = this.start; return s - (s % 16); }
  get rowCount() { return Math.ceil((this.end - this.base) / 16); }

  append(data) {
    const before = this.rowCount;
    const total = data.length;
    const last = this.chunks[this.chunks.length - 1];
    let pos = 0;
    if (last && last.data.size < this.chunkBytes) {
      pos = Math.min(total, this.chunkBytes - last.data.size);
      last.data.push(data.subarray(0, pos));
    }
    while (pos < total) {
      const n = Math.min(this.chunkBytes, total - pos);
      const c = { offset: this.appendAt + pos, data: new Bytes(n) };
      c.data.push(data.subarray(pos, pos + n));
      this.chunks.push(c);
      pos += n;
    }
    this.appendAt += total;
    return this.rowCount - before;
  }

  prepend(bytes, offset) {
    if (!bytes.length) return 0;
    const before = this.rowCount;
    const c = { offset, data: new Bytes(bytes.length) };
    c.data.push(bytes);
    if (!this.chunks.length) this.appendAt = offset + bytes.length;
    this.chunks.unshift(c);
    return this.rowCount - before;
  }

  _byteAt(pos) {
    for (const c of this.chunks) {
      if (pos >= c.offset && pos < c.offset + c.data.size) return c.data.buf[pos - c.offset];
    }
    return null;
  }

  row(i) {
    if (!(i >= 0 && i < this.rowCount)) return null;
    const offset = this.base + 16 * i;
    const values = new Array(16).fill(null);
    for (const c of this.chunks) {
      if (c.offset + c.data.size <= offset || c.offset >= offset + 16) continue;
      for (let k = 0; k < 16; k++) {
        const p = offset + k - c.offset;
        if (p >= 0 && p < c.data.size) values[k] = c.data.buf[p];
      }
    }
    return { offset, values, line: null, version: this.version, event: null };
  }

  rowAt(offset) {
    return Math.max(0, Math.min(this.rowCount - 1, Math.floor((offset - this.base) / 16)));
  }

  trimmableTop(keep) {
    const limit = this.base + 16 * keep;
    let bytes = 0;
    for (const c of this.chunks) {
      if (c.offset + c.data.size > limit) break;
      bytes += c.data.size;
    }
    return bytes;
  }

  trimTop(bytes, keep) {
    const before = this.rowCount;
    const limit = this.base + 16 * keep;
    let freed = 0;
    while (this.chunks.length && freed < bytes && this.chunks[0].offset + this.chunks[0].data.size <= limit) {
      const c = this.chunks.shift();
      freed += c.data.size;
      if (!this.chunks.length) this.appendAt = c.offset + c.data.size;
    }
    return before - this.rowCount;
  }

  trimmableBottom(keep) {
    const limit = this.base + 16 * (keep + 1);
    let bytes = 0;
    for (let i = this.chunks.length - 1; i > 0 && this.chunks[i].offset >= limit; i--) bytes += this.chunks[i].data.size;
    return bytes;
  }

  trimBottom(bytes, keep) {
    let held = this.held;
    let dropped = false;
    const limit = this.base + 16 * (keep + 1);
    while (held > bytes && this.chunks.length > 1 && this.chunks[this.chunks.length - 1].offset >= limit) {
      held -= this.chunks.pop().data.size;
      dropped = true;
    }
    if (dropped) {
      const last = this.chunks[this.chunks.length - 1];
      this.appendAt = last.offset + last.data.size;
    }
    return dropped;
  }

  lastBytes(n) {
    const last = this.chunks[this.chunks.length - 1];
    if (!last) return new Uint8Array(0);
    const d = last.data.view();
    return d.subarray(Math.max(0, d.length - n));
  }

  firstBytes(n) {
    const first = this.chunks[0];
    return first ? first.data.view().subarray(0, n) : new Uint8Array(0);
  }

  unnumbered() { return null; }
}
