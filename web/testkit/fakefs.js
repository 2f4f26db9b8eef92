// An in-memory file that grows, rotates, truncates and disappears, and a
// server that pages it the way bridge/sources/files.py (FilePager) and
// bridge/sources/follow.py (FollowPager) do, one step at a time, so a test
// decides every interleaving.  Every line written is registered with where
// it lives, so a test can check any row the model shows.

const NL = 10;
const enc = new TextEncoder();

export function rng(seed) {
  // mulberry32: small, seedable, good enough to pick actions.
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)); // inclusive
  next.pick = (arr) => arr[Math.floor(next() * arr.length)];
  next.chance = (p) => next() < p;
  return next;
}

class Inode {
  constructor(id) {
    this.id = id;
    this.buf = new Uint8Array(4096);
    this.size = 0;
    this.mtime = 0;
    this.lines = 0; // complete lines written
  }
  get bytes() { return this.buf.subarray(0, this.size); }
  write(data) {
    if (this.size + data.length > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < this.size + data.length) cap *= 2;
      const b = new Uint8Array(cap);
      b.set(this.buf.subarray(0, this.size));
      this.buf = b;
    }
    this.buf.set(data, this.size);
    this.size += data.length;
    this.mtime++;
  }
  truncate(n) {
    // What it held before is kept, so a test can still check bytes read before the truncation.
    (this.snapshots ||= []).push(this.bytes.slice());
    this.size = n;
    this.mtime++;
    this.truncations = (this.truncations || 0) + 1;
  }
  /** Every content this file has had (the current one last). */
  versions() { return [...(this.snapshots || []), this.bytes]; }
  get etag() { return `${this.id.toString(16)}-${this.size.toString(16)}-${this.mtime.toString(16)}`; }
}

/** One path, whose file can be appended to, rotated, truncated, deleted, recreated. */
export class FakeFile {
  constructor(r, { lineCap = 512 } = {}) {
    this.r = r;
    this.lineCap = lineCap;
    this.nextInode = 1;
    this.epoch = 0;
    this.inode = this.newInode();
    this.registry = new Map(); // "E<epoch>L<line>" -> {inode, offset, line, text: Uint8Array}
    this.pending = null; // a line being written in pieces: {text, written}
  }

  newInode() {
    const ino = new Inode(this.nextInode++);
    ino.epoch = ++this.epoch;
    ino.nextLine = 1;
    return ino;
  }

  /** Text of a new line (without its newline): a header naming it, then filler. */
  makeLine(ino, long = false) {
    const header = `E${ino.epoch}L${ino.nextLine}:`;
    const n = typeof long === "number" ? long : long ? this.r.int(this.lineCap + 1, this.lineCap * 3) : this.r.chance(0.05) ? 0 : this.r.int(0, 60);
    let filler = "";
    const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 -_=+.,;ü€";
    for (let i = 0; i < n; i++) filler += alphabet[Math.floor(this.r() * alphabet.length)];
    return enc.encode(header + filler);
  }

  /** Register the line that begins at the inode's end now. */
  startLine(ino, text) {
    const key = `E${ino.epoch}L${ino.nextLine}`;
    this.registry.set(key, { inode: ino, offset: ino.size, line: ino.nextLine, text });
    ino.nextLine++;
    return key;
  }

  /** Append `count` whole lines (finishing a pending partial line first). */
  appendLines(count, { long = false } = {}) {
    if (!this.inode) return;
    this.finishPending();
    const parts = [];
    let size = 0;
    for (let i = 0; i < count; i++) {
      const text = this.makeLine(this.inode, i === 0 ? long : false);
      this.startLineAt(text, size);
      const line = new Uint8Array(text.length + 1);
      line.set(text);
      line[text.length] = NL;
      parts.push(line);
      size += line.length;
    }
    const all = new Uint8Array(size);
    let p = 0;
    for (const part of parts) { all.set(part, p); p += part.length; }
    this.inode.write(all);
  }

  startLineAt(text, pendingBytes) {
    // A line registered before the bytes before it (in the same append) are written.
    const ino = this.inode;
    const key = `E${ino.epoch}L${ino.nextLine}`;
    this.registry.set(key, { inode: ino, offset: ino.size + pendingBytes, line: ino.nextLine, text });
    ino.nextLine++;
    return key;
  }

  /** Write part of a line (no newline yet); later appends complete it. */
  appendPartial() {
    if (!this.inode) return;
    if (!this.pending) {
      const text = this.makeLine(this.inode, this.r.chance(0.2));
      this.startLine(this.inode, text);
      this.pending = { inode: this.inode, text, written: 0 };
    }
    const p = this.pending;
    const n = Math.min(p.text.length - p.written, this.r.int(1, Math.max(1, Math.floor(p.text.length / 2))));
    this.inode.write(p.text.subarray(p.written, p.written + n));
    p.written += n;
  }

  finishPending() {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    if (p.inode !== this.inode) return;
    const rest = new Uint8Array(p.text.length - p.written + 1);
    rest.set(p.text.subarray(p.written));
    rest[rest.length - 1] = NL;
    p.inode.write(rest);
  }

  /** logrotate: the file is renamed away and a new, empty one created. */
  rotate() {
    this.pending = null;
    this.inode = this.newInode();
  }

  /** copytruncate: the same file, emptied (or cut back to a line boundary). */
  truncate(toLineBoundary = false) {
    if (!this.inode) return;
    this.pending = null;
    const ino = this.inode;
    if (toLineBoundary && ino.size > 0) {
      // Keep the first k whole lines.
      const bytes = ino.bytes;
      let cut = 0, line = 1;
      const keep = this.r.int(0, 20);
      for (let i = 0; i < bytes.length && line <= keep; i++) if (bytes[i] === NL) { cut = i + 1; line++; }
      ino.truncate(cut);
      ino.epoch = ++this.epoch; // lines written from now on are new ones
      ino.nextLine = line;
    } else {
      ino.truncate(0);
      ino.epoch = ++this.epoch;
      ino.nextLine = 1;
    }
  }

  delete() { this.pending = null; this.inode = null; }
  recreate() { if (!this.inode) this.inode = this.newInode(); }

  /** The registered line at `offset` of inode `ino`, or null. */
  lineAt(ino, offset) {
    for (const reg of this.registry.values()) if (reg.inode === ino && reg.offset === offset) return reg;
    return null;
  }
}

function cutAtLine(data) {
  const end = data.lastIndexOf(NL);
  return end !== -1 && end !== data.length - 1 ? data.subarray(0, end + 1) : data;
}

/**
 * A stream as the server runs it.  `next()` gives the next item, or null
 * when the server would wait (a follower at the end of its file).
 */
export class Cursor {
  constructor(file, read, pageSize) {
    this.file = file;
    this.read = read;
    this.pageSize = pageSize;
    this.done = false;
  }

  /** {opened: info} or {error}. */
  open() {
    const { file, read } = this;
    const ino = file.inode;
    if (!ino) return { error: { code: "not_found", message: "no such file" } };
    if (read.kind === "locate") return this.locate(ino);
    const offset = read.kind === "stat" ? 0 : read.offset;
    if (offset > ino.size) return { error: { code: "bad_request", message: `offset ${offset} is beyond the end` } };
    this.ino = ino;
    this.truncations = ino.truncations || 0;
    this.pos = offset;
    this.seen = ino.size;
    this.follow = read.kind === "forward" && read.follow;
    const length = read.kind === "stat" ? 0 : read.length ?? null;
    this.end = this.follow ? null : Math.min(ino.size, length === null ? Infinity : offset + length);
    return { opened: { size: ino.size, etag: ino.etag, offset, length: this.follow ? null : this.end - offset } };
  }

  locate(ino) {
    const bytes = ino.bytes;
    const r = this.read;
    let lines = 0;
    for (const b of bytes) if (b === NL) lines++;
    if (bytes.length && bytes[bytes.length - 1] !== NL) lines++;
    if (r.offset != null) {
      // An offset at or beyond the end is taken as the last byte (docs/protocol.md §8).
      const at = Math.max(0, Math.min(r.offset, bytes.length - 1));
      let line = 1, start = 0;
      for (let i = 0; i < at; i++) if (bytes[i] === NL) { line++; start = i + 1; }
      return { located: { line, offset: start, lines, size: ino.size, etag: ino.etag } };
    }
    let line = 1, start = 0;
    const target = Math.min(r.line, Math.max(1, lines));
    for (let i = 0; i < bytes.length && line < target; i++) if (bytes[i] === NL) { line++; start = i + 1; }
    return { located: { line, offset: start, lines, size: ino.size, etag: ino.etag } };
  }

  /** The next item: {page: {offset, data}} | {event} | {end: true} | {error} | {wait} (the half-second wait
   * for the rest of a line; the next look sends it) | null (nothing to send until the file changes). */
  next(r) {
    if (this.done) return null;
    if (!this.follow) {
      if (this.pos >= this.end) { this.done = true; return { end: true }; }
      const want = Math.min(this.pageSize, this.end - this.pos);
      // (The real FilePager notices only a file now shorter than what it reads; a file truncated and
      // grown again is spliced.  This fake notices every truncation, so the tests check the model alone.)
      if (this.ino.size < this.pos + want || (this.ino.truncations || 0) !== this.truncations) {
        this.done = true;
        return { error: { code: "file_changed", message: "shrank" } };
      }
      let data = this.ino.bytes.slice(this.pos, this.pos + want);
      if (this.read.text && this.pos + data.length < this.end) data = cutAtLine(data);
      const item = { page: { offset: this.pos, data } };
      this.pos += data.length;
      return item;
    }
    const ino = this.ino;
    if ((ino.truncations || 0) !== this.truncations) {
      // Truncated since the last look (the real FollowPager sees it only if the file is still shorter).
      this.truncations = ino.truncations;
      const lost = Math.max(0, this.seen - this.pos);
      this.pos = 0;
      this.seen = ino.size;
      return { event: { event: "truncated", offset: 0, lost, detail: "truncated" } };
    }
    const avail = ino.size - this.pos;
    this.seen = Math.max(this.seen, ino.size);
    if (avail > 0) {
      let data = ino.bytes.slice(this.pos, this.pos + Math.min(avail, this.pageSize));
      if (this.read.text) {
        const cut = cutAtLine(data);
        // At the end, the real server waits half a second for the rest of a line, then sends it as it is.
        if (cut === data && data[data.length - 1] !== NL && data.length < this.pageSize && !this.waited && r && r.chance(0.5)) {
          this.waited = true;
          return { wait: true };
        }
        this.waited = false;
        data = cut;
      }
      const item = { page: { offset: this.pos, data } };
      this.pos += data.length;
      return item;
    }
    if (ino.size < this.pos) {
      const lost = Math.max(0, this.seen - this.pos);
      this.pos = 0;
      this.seen = ino.size;
      return { event: { event: "truncated", offset: 0, lost, detail: "truncated" } };
    }
    const current = this.file.inode;
    if (!current) {
      if (this.deleted) return null;
      this.deleted = true;
      return { event: { event: "deleted", offset: this.pos, detail: "deleted" } };
    }
    if (current !== ino) {
      this.ino = current;
      this.truncations = current.truncations || 0;
      this.pos = 0;
      this.seen = current.size;
      this.deleted = false;
      return { event: { event: "rotated", offset: 0, detail: "rotated" } };
    }
    return null;
  }
}
