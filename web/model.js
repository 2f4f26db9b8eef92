// The viewer's document model: which bytes of which version of a file are
// held, as rows with their true line numbers, where the viewport is, and
// which reads are wanted.  DOM-free and synchronous: the tests drive it in
// Node with randomised action sequences.
//
// Everything that changes the model is an action passed to dispatch():
// user actions (scroll, jump, follow, pause...) and I/O results (opened,
// page, event, end, failed, located).  After each action the model declares
// the reads it wants (this.reads: forward, back, stat, locate) and a driver
// (reader.js in the browser, a simulated server in the tests) makes the set
// of running reads equal to it: it starts new ones and cancels the ones that
// disappeared.  Dropping a read from this.reads (invalidate()) is the one
// way a read ends early; every result carries its read id, and results for a
// read that is no longer wanted are ignored.
//
// The rules, stated once:
// * Held bytes never exceed `cap`.  Forward reading goes on while there is
//   room, or while rows above the viewport can be dropped; reading above the
//   window drops rows below the viewport, which moves the end, so the
//   forward read is invalidated and a new one resumes from the new end.
// * A read that resumes next to held bytes re-reads `overlap` of them and
//   checks they are the same: a file replaced or truncated meanwhile is
//   noticed (fileChanged) instead of being spliced onto the old one.
// * Following: the forward read follows the file; rotation and truncation
//   arrive as events, shown as a marker row, after which the new version's
//   rows start (line numbers from 1).  Rows already shown stay.
// * Line numbers come from counting from offset 0, or from the line index
//   (a `locate` read) for content that starts elsewhere.  A row whose number
//   is not known yet shows none; a number shown is always right.
// * Scrolling never changes what is read by itself: the viewport position
//   is state, and reads follow from it in reconcile().

import { TextContent, HexContent, NL } from "./content.js";

export const DEFAULTS = {
  cap: 8 << 20, // bytes held at most
  lineCap: 64 << 10, // bytes held of one line at most (the rest is shown as cut)
  pageSize: 64 << 10, // page size asked of the server
  backBytes: 256 << 10, // bytes fetched when reading above the window
  tailBytes: 256 << 10, // bytes read before the end when going to the end of a large file
  overlap: 4096, // bytes re-read to check that a resumed read continues the same file
  jumpBefore: 4096, // bytes read before a jump target, to find the start of its line
  margin: 200, // rows kept ready above and below the viewport
  skipBudget: null, // bytes read through the rest of a cut line before stopping (null: cap)
};

/** Does this look like a binary file? (NUL bytes, many control bytes, or invalid UTF-8.) */
export function looksBinary(bytes) {
  const sample = bytes.subarray(0, 4096);
  let control = 0;
  for (const b of sample) {
    if (b === 0) return true;
    if (b < 9 || (b > 13 && b < 27) || (b > 27 && b < 32)) control++;
  }
  if (control > sample.length / 10) return true;
  try {
    // Ignore a character cut at the end of the sample.
    new TextDecoder("utf-8", { fatal: true }).decode(sample.subarray(0, Math.max(0, sample.length - 4)));
    return false;
  } catch {
    return true;
  }
}

const NEWLINE = new Uint8Array([NL]);

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A growable buffer for a back read's bytes. */
class Gather {
  constructor() { this.parts = []; this.size = 0; }
  push(d) { this.parts.push(d); this.size += d.length; }
  bytes() {
    const out = new Uint8Array(this.size);
    let p = 0;
    for (const d of this.parts) { out.set(d, p); p += d.length; }
    return out;
  }
}

export class DocModel {
  /**
   * @param {string} path  the file, relative to the served root
   * @param {object} options  DEFAULTS overrides, plus `lineIndex` (the server answers `locate`)
   */
  constructor(path, options = {}) {
    this.o = { ...DEFAULTS, ...options };
    this.path = path;
    this.lineIndex = Boolean(options.lineIndex);
    // The file.
    this.phase = "opening"; // opening | open | failed
    this.error = null; // a refusal that ends this document: {code, message}
    this.stream = false; // a push source: no size, no offsets, no going back
    this.version = 0; // the file version appends belong to (changes on rotation, truncation, replacement)
    this.size = null; // bytes in the file (of `version`), as last seen
    this.etag = null;
    this.lines = null; // total lines, from the line index
    this.deleted = false; // following a file that was deleted
    // What is held.
    this.hexChoice = null; // null: decide from the first bytes
    this.mode = null; // "text" | "hex" once decided
    this.content = null; // TextContent | HexContent; null while (re)starting at `origin`
    this.origin = { offset: 0, line: 1, skip: false };
    // The viewport.
    this.top = 0; // row index of the first row on screen
    this.height = 40; // rows on screen
    this.pin = "top"; // "bottom": the last row stays in view as rows arrive
    this.target = null; // {offset, version}: move the viewport there once its row arrives
    this.highlight = null; // {offset, version}: the row a link or a jump named
    // Reading.
    this.follow = false;
    this.flow = "running"; // running | paused (no acknowledgements) | stopped (reads cancelled)
    this.connected = false;
    this.atEnd = false; // a forward read reached the end of the file (not following)
    this.reads = new Map(); // id -> read: what the driver must be running
    this.nextId = 1;
    this.backSpan = this.o.backBytes;
    this.want = null; // a look-up the model waits for: {kind: "stat"|"line", ...}
    this.tried = new Set(); // locate look-ups that did not number rows (not asked again)
    this.notice = null; // {kind, text}: a change the user should know about
    this.revision = 0;
    this.listeners = new Set();
  }

  // ------------------------------------------------------------ public

  /** Apply one action; then declare the wanted reads and tell the listeners. */
  dispatch(action) {
    const handler = HANDLERS[action.type];
    if (!handler) throw new Error(`unknown action ${action.type}`);
    handler.call(this, action);
    this.settle();
    this.reconcile();
    this.revision++;
    for (const fn of this.listeners) fn(action);
  }

  subscribe(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }

  get rowCount() { return this.content ? this.content.rowCount : 0; }
  row(i) { return this.content ? this.content.row(i) : null; }

  /** May the driver take the next item of read `id` (and so acknowledge the previous one)? */
  wants(id) {
    const read = this.reads.get(id);
    if (!read || !this.connected) return false;
    if (this.flow !== "running") return false;
    if (read.kind !== "forward") return true;
    return this.roomForward();
  }

  /** May the driver hand in an item it already took?  Not while paused: the item waits in its hand. */
  accepts(id) {
    return this.reads.has(id) && this.flow === "running";
  }

  /** Bytes held (bounded by `cap`). */
  get held() { return this.content ? this.content.held : 0; }

  /** The row index of file offset `offset` in the held content, or -1. */
  rowOf(offset, version = this.version) {
    const c = this.content;
    if (!c || !this.holds(offset, version)) return -1;
    return c.rowAt(offset, version);
  }

  /** The row holding line number `line` of the current version, or -1. */
  rowOfLine(line) {
    const c = this.content;
    if (!c || c.kind !== "text" || !c.rowCount) return -1;
    const first = c.row(0), last = c.row(c.rowCount - 1);
    if (first.line === null || last.line === null || first.version !== this.version || last.version !== this.version) return -1;
    if (line < first.line || line > last.line) return -1;
    let lo = 0, hi = c.rowCount - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const r = c.row(mid);
      if (r.line !== null && r.line >= line) hi = mid; else lo = mid + 1;
    }
    const r = c.row(lo);
    return r.line === line && !r.headCut ? lo : -1;
  }

  /** Is file offset `offset` (of `version`) inside what is held? */
  holds(offset, version = this.version) {
    const c = this.content;
    if (!c || c.rowCount === 0) return false;
    if (c.kind === "hex") return version === c.version && offset >= c.base && offset < Math.max(c.end, c.base + 1);
    if (c.startVersion === version && offset < c.start) return false;
    if (c.startVersion === version && c.version === version) return offset >= c.start && (offset < c.end || (offset === c.end && this.atEnd));
    return version >= c.startVersion && version <= c.version;
  }

  // ------------------------------------------------------------ transitions used by the handlers

  newRead(fields) {
    const read = { id: this.nextId++, ...fields };
    this.reads.set(read.id, read);
    return read;
  }

  /** The one place a read ends early: the driver cancels it, and its late results are ignored. */
  invalidate(kind) {
    for (const [id, read] of this.reads) if (read.kind === kind) this.reads.delete(id);
  }

  readOf(kind) {
    for (const read of this.reads.values()) if (read.kind === kind) return read;
    return null;
  }

  /** Forget what is held and start again at file offset `offset` (a jump). */
  restart(offset, { line = null, pin = "top", target = true } = {}) {
    this.invalidate("forward");
    this.invalidate("back");
    this.content = null;
    this.atEnd = false;
    this.backSpan = this.o.backBytes;
    offset = Math.max(0, offset);
    // A line start the server named (line known) may lie beyond a size seen earlier: the file grew.
    if (line !== null && (this.size === null || offset > this.size)) this.size = offset;
    if (this.size !== null) offset = Math.min(offset, this.size);
    if (this.mode === "hex") {
      this.origin = { offset: offset - (offset % 16), line: null, skip: false };
    } else if (offset === 0 || line !== null) {
      // A line start the server named: the byte before it is re-read, and must be a newline (the file
      // may have been rewritten since the server looked).
      this.origin = { offset, line: offset === 0 ? 1 : line, skip: false, newline: offset > 0 };
    } else {
      // Read a little before the target: its line starts there (the partial line before is dropped).
      const from = Math.max(0, offset - this.o.jumpBefore);
      this.origin = { offset: from, line: from === 0 ? 1 : null, skip: from > 0, fragmentAt: offset };
    }
    this.top = 0;
    this.pin = pin;
    this.target = target && pin !== "bottom" ? { offset, version: this.version } : null;
  }

  /** The file is not the one whose bytes are held (replaced, truncated): look at it again, then restart there. */
  fileChanged(why) {
    const row = this.row(this.top);
    const offset = row ? row.offset : 0;
    this.version++;
    this.notice = { kind: "changed", text: `${why} Showing its current version.` };
    this.restart(0, { target: false });
    this.etag = null;
    this.want = { kind: "stat", purpose: "resync", offset };
  }

  /** Chunks are what trimming drops: small beside the cap. */
  chunkBytes() { return Math.max(256, Math.min(64 << 10, Math.floor(this.o.cap / 16))); }

  /** Is the viewport near the last rows held? */
  nearBottom() { return this.pin === "bottom" || this.target !== null || this.top + this.height + this.o.margin >= this.rowCount; }
  nearTop() { return this.top < this.o.margin; }

  /**
   * Reading through a line longer than the cap went on long enough: stop (the rest would be read for
   * nothing; with the line index, the model asks where the next line starts instead).  A follower
   * never stops: it must reach the end.
   */
  longLine() {
    const c = this.content;
    return Boolean(c && !this.follow && !this.stream && c.skipping && c.skipped >= (this.o.skipBudget ?? this.o.cap));
  }

  /** May forward reading take another page? */
  roomForward() {
    const c = this.content;
    if (!c) return true;
    if (this.longLine()) return false;
    const room = this.o.cap - c.held;
    if (room >= this.o.pageSize) return true;
    // Following at the bottom: the newest rows always win (settle() drops the oldest).
    if (this.follow && this.pin === "bottom") return true;
    // Full: go on only by dropping rows above the viewport.
    if (!this.nearBottom() && !this.follow) return false;
    return room + c.trimmableTop(this.top) >= this.o.pageSize;
  }

  /** Rows from this one on are kept when trimming the top. */
  keepAbove() {
    return this.pin === "bottom" ? Math.max(0, this.rowCount - this.height - this.o.margin) : Math.max(0, this.top - this.o.margin);
  }

  /** Can the model read above the first held row? */
  canReadBack() {
    const c = this.content;
    if (!c || this.stream || c.rowCount === 0) return false;
    if (c.startVersion !== this.version || !c.startIsLine) return false;
    return c.start > 0;
  }

  clampViewport() {
    const n = this.rowCount;
    const last = Math.max(0, n - this.height);
    if (this.pin === "bottom") this.top = last;
    this.top = Math.max(0, Math.min(this.top, last));
  }

  /** After every action: keep within the cap, put a pending target in view, clamp the viewport. */
  settle() {
    const c = this.content;
    if (c && c.held > this.o.cap) {
      this.clampViewport();
      // Rows above the viewport go first (those kept ready above it last), then rows below it.
      for (const keep of [this.keepAbove(), this.top]) {
        if (c.held > this.o.cap) this.top = Math.max(0, this.top - c.trimTop(c.held - this.o.cap, keep));
        this.clampViewport();
      }
      if (c.held > this.o.cap && !(this.follow && this.pin === "bottom") && c.trimBottom(this.o.cap, this.top + this.height)) {
        this.invalidate("forward");
        this.atEnd = false;
      }
      if (c.held > this.o.cap) {
        // Still over: the rows on screen alone exceed the cap; drop from the top, whatever is on screen.
        const more = c.trimTop(c.held - this.o.cap, c.rowCount);
        this.top = Math.max(0, this.top - more);
      }
    }
    if (c && this.target && this.target.line != null && c.rowCount) {
      const t = this.target;
      const i = this.rowOfLine(t.line);
      if (i >= 0) {
        this.top = i;
        this.target = null;
        this.highlight = { offset: this.row(i).offset, version: this.version };
      } else if (this.atEnd || !this.roomForward() || t.version !== this.version) {
        this.target = null;
        this.notice = { kind: "error", text: this.atEnd
          ? `The file has ${c.row(c.rowCount - 1).line ?? "fewer"} lines: line ${t.line} does not exist.`
          : `Line ${t.line} is beyond the part read from the top; going to any line needs the server's line index.` };
      }
    } else if (c && this.target && c.rowCount) {
      const t = this.target;
      if (this.holds(t.offset, t.version)) {
        this.top = c.rowAt(t.offset, t.version);
        this.target = null;
      } else if (this.atEnd || (c.kind === "text" && t.version === c.version && c.end > t.offset && !c.tail.size)) {
        this.top = c.rowCount - 1;
        this.target = null;
      }
    }
    this.clampViewport();
  }

  /** Declare the reads the current state calls for. */
  reconcile() {
    if (this.phase === "failed" || !this.connected) return;
    if (this.want && this.want.kind === "stat") {
      if (!this.readOf("stat")) this.newRead({ kind: "stat", purpose: this.want.purpose });
      return;
    }
    if (this.want && this.want.kind === "line") {
      if (!this.readOf("locate")) this.newRead({ kind: "locate", line: this.want.line, purpose: "jump", version: this.version });
      return;
    }
    if (this.flow === "stopped") return;
    const c = this.content;
    if (!this.readOf("forward") && this.wantsForward()) {
      const expect = c ? c.lastBytes(this.o.overlap) : this.origin.newline ? NEWLINE : new Uint8Array(0);
      const offset = c ? c.end - expect.length : this.origin.offset - expect.length;
      this.newRead({
        kind: "forward", offset, follow: this.follow || this.stream, text: this.mode !== "hex",
        expect, verified: 0, skip: c ? false : this.origin.skip, skipped: null, version: this.version,
      });
    }
    if (!this.readOf("back") && this.canReadBack() && this.nearTop() && this.roomBack()) {
      const start = c.start;
      let from = Math.max(0, start - this.backSpan);
      if (c.kind === "hex") from -= from % 16;
      const expect = c.firstBytes(this.o.overlap);
      this.newRead({ kind: "back", offset: from, length: start - from + expect.length, until: start, expect,
        version: this.version, got: new Gather() });
    }
    if (this.lineIndex && c && c.kind === "text" && this.longLine() && !this.readOf("locate")) {
      // Where does the line after the cut one start?  Then reading goes on from there.
      const cut = c.chunks[c.chunks.length - 1];
      const key = `skip:${this.version}:${cut.offset}`;
      if (cut.firstLine !== null && !this.tried.has(key)) {
        this.newRead({ kind: "locate", line: cut.firstLine + 1, purpose: "skip", version: this.version, key, cutOffset: cut.offset });
      }
    }
    if (this.lineIndex && c && c.kind === "text" && !this.readOf("locate")) {
      const offset = c.unnumbered();
      const key = `${this.version}:${offset}`;
      if (offset !== null && !this.tried.has(key)) {
        this.newRead({ kind: "locate", offset, purpose: "number", version: this.version, key });
      }
    }
    if (this.want && this.want.kind === "poll" && !this.readOf("stat")) {
      this.want = null;
      this.newRead({ kind: "stat", purpose: "poll" });
    }
  }

  wantsForward() {
    const c = this.content;
    if (!c) return true;
    if (this.longLine()) return false;
    if (this.stream || this.follow) return true;
    if (this.atEnd) return false;
    // Read on near the bottom, or ahead while there is room (then reading stops short of the cap).
    return this.nearBottom() || c.held + this.o.pageSize <= this.o.cap;
  }

  roomBack() {
    const c = this.content;
    const room = this.o.cap - c.held;
    if (room >= this.backSpan) return true;
    return room + c.trimmableBottom(this.top + this.height + this.o.margin) >= this.backSpan;
  }

  /** The content starts with these first bytes of a read (the mode is decided by them, once). */
  begin(read, data, { fragment = false, offset } = {}) {
    if (this.mode === null) this.mode = (this.hexChoice ?? looksBinary(data)) ? "hex" : "text";
    if (this.mode === "hex") {
      this.content = new HexContent({ version: this.version, offset, chunkBytes: this.chunkBytes() });
    } else {
      this.content = new TextContent({
        version: this.version, offset, lineCap: this.o.lineCap, fragment, chunkBytes: this.chunkBytes(),
        firstLine: fragment ? null : offset === 0 ? 1 : this.origin.line,
      });
    }
    this.phase = "open";
  }

  // ------------------------------------------------------------ I/O results

  onPage(read, offset, data) {
    if (read.kind === "back") { read.got.push(data); return; }
    if (read.kind !== "forward") return;
    read.at = offset + data.length;
    // First, the bytes re-read to check we continue the same file.
    if (read.verified < read.expect.length) {
      const n = Math.min(read.expect.length - read.verified, data.length);
      if (!sameBytes(data.subarray(0, n), read.expect.subarray(read.verified, read.verified + n))) {
        return this.fileChanged("The file changed on the server (its bytes differ from those shown).");
      }
      read.verified += n;
      offset += n;
      data = data.subarray(n);
      if (!data.length) return;
    }
    if (!this.content && this.mode === null) this.mode = (this.hexChoice ?? looksBinary(data)) ? "hex" : "text";
    if (!this.content && read.skip && this.mode === "text") {
      // A jump landed inside a line: drop up to its end, unless the line is too long to find its end.
      read.skipped = read.skipped || new Gather();
      const nl = data.indexOf(NL);
      if (nl === -1) {
        if (!read.skipped.size) read.skipFrom = offset;
        read.skipped.push(data);
        if (read.skipped.size <= this.o.lineCap) return;
        return this.beginFragment(read);
      }
      const at = offset + nl + 1;
      read.skip = false;
      read.skipped = null;
      this.begin(read, data, { offset: at });
      data = data.subarray(nl + 1);
      if (!data.length) return;
    }
    if (!this.content) this.begin(read, data, { offset });
    this.append(data);
  }

  /** The line around a jump target is longer than lineCap: show it as a fragment from where the read began. */
  beginFragment(read) {
    const bytes = read.skipped.bytes();
    read.skip = false;
    read.skipped = null;
    this.begin(read, bytes, { offset: read.skipFrom ?? read.offset, fragment: true });
    this.append(bytes);
  }

  append(data) {
    const c = this.content;
    c.append(data);
    if (!this.stream && (this.size === null || c.end > this.size) && c.version === this.version) this.size = c.end;
  }

  onOpened(read, info) {
    if (read.kind === "locate") return;
    this.deleted = false; // it exists: it was just opened
    if (info.size == null && read.kind === "forward") {
      this.stream = true;
      this.size = null;
      this.phase = "open";
      return;
    }
    if (read.kind === "forward" && read.expect.length && info.size != null && info.size < read.offset + read.expect.length) {
      // Shorter than the bytes it should find again: not the file whose bytes are shown.
      return this.fileChanged("The file on the server is shorter than what is shown (replaced or truncated).");
    }
    if (read.kind === "forward" && read.follow) {
      // A follower opened at the current version: whatever size it has now.
      this.size = Math.max(info.size, this.content ? this.content.end : 0);
    } else if (info.size != null) {
      this.size = info.size;
    }
    if (info.etag) this.etag = info.etag;
    if (read.kind === "stat") this.onStat(read, info);
    if (this.phase === "opening" && read.kind === "forward") this.phase = "open";
  }

  onStat(read, info) {
    this.reads.delete(read.id);
    const c = this.content;
    if (read.purpose === "resync" && this.want && this.want.purpose === "resync") {
      const offset = Math.min(this.want.offset, info.size);
      this.want = null;
      if (this.follow) this.restart(Math.max(0, info.size - this.o.tailBytes), { pin: "bottom" });
      else this.restart(offset);
      return;
    }
    if (read.purpose === "end" && this.want && this.want.purpose === "end") {
      this.want = null;
      return this.goEnd();
    }
    if (read.purpose === "poll" && c && !this.follow) {
      if (info.size < c.end && c.version === this.version) {
        return this.fileChanged("The file shrank on the server.");
      }
      if (info.size > c.end && this.atEnd) this.atEnd = false;
    }
  }

  onEvent(read, item) {
    if (read.kind !== "forward") return;
    read.at = item.offset;
    const c = this.content;
    if (item.event === "deleted") {
      this.deleted = true;
      this.notice = { kind: "deleted", text: item.detail || "The file was deleted; waiting for it to come back." };
      return;
    }
    this.deleted = false;
    const newVersion = item.event === "rotated" || item.event === "truncated";
    const text = item.detail || item.event;
    this.notice = { kind: item.event, text };
    read.expect = new Uint8Array(0);
    if (!c || c.kind === "hex" || (read.skip && !c)) {
      // Nothing shown yet, or hex: simply start again at the event's offset.
      if (newVersion) this.version++;
      this.content = null;
      this.origin = { offset: item.offset, line: item.offset === 0 ? 1 : null, skip: false };
      read.skip = false;
      read.skipped = null;
      if (!this.stream) this.size = item.offset;
      return;
    }
    c.event(item.event, text, { offset: item.offset, newVersion });
    this.version = c.version;
    if (newVersion && !this.stream) { this.size = item.offset; this.etag = null; this.lines = null; }
  }

  onEnd(read) {
    this.reads.delete(read.id);
    if (read.kind === "forward") {
      if (!this.content && read.skipped && read.skipped.size) this.beginFragment(read);
      if (!this.content && !read.skip) this.begin(read, new Uint8Array(0), { offset: read.at ?? read.offset });
      if (!this.content && read.skip) {
        // The jump landed in the last line, which has no newline: show it from where the read began.
        read.skipped = read.skipped || new Gather();
        this.beginFragment(read);
      }
      if (this.stream) { this.atEnd = true; return; }
      this.atEnd = true;
      if (this.content.version === this.version) this.size = this.content.end;
      return;
    }
    if (read.kind === "back") return this.applyBack(read);
  }

  applyBack(read) {
    const c = this.content;
    if (!c || read.version !== this.version || c.start !== read.until || c.startVersion !== this.version) return;
    const all = read.got.bytes();
    const want = read.until - read.offset;
    if (all.length !== want + read.expect.length || !sameBytes(all.subarray(want), read.expect)) {
      return this.fileChanged("The file changed on the server (its bytes differ from those shown).");
    }
    let data = all.subarray(0, want);
    let offset = read.offset;
    let headCut = false;
    let firstLine = null;
    if (c.kind === "text") {
      if (offset === 0) {
        firstLine = 1;
      } else {
        const nl = data.indexOf(NL);
        if (nl === -1) {
          // The line before the window is longer than what was read: read more, or show its end as a fragment.
          if (this.backSpan < this.o.lineCap + this.o.backBytes) {
            this.backSpan = Math.min(this.backSpan * 2, this.o.lineCap + this.o.backBytes);
            return;
          }
          data = data.subarray(Math.max(0, data.length - this.o.lineCap));
          offset = read.until - data.length;
          headCut = true;
        } else {
          data = data.subarray(nl + 1);
          offset += nl + 1;
        }
      }
    }
    this.backSpan = this.o.backBytes;
    if (!data.length) return;
    // Within the cap: drop rows far below the viewport, or what does not fit of the new rows.
    const room = this.o.cap - c.held + c.trimmableBottom(this.top + this.height + this.o.margin);
    if (data.length > room) {
      if (c.kind === "text") {
        const cutAt = data.length - room;
        const nl = data.indexOf(NL, cutAt - 1);
        if (nl === -1 || nl + 1 >= data.length) return;
        offset += nl + 1;
        data = data.subarray(nl + 1);
        firstLine = null;
        headCut = false;
      } else {
        const skip = Math.ceil((data.length - room) / 16) * 16;
        if (skip >= data.length) return;
        data = data.subarray(skip);
        offset += skip;
      }
    }
    const added = c.kind === "text" ? c.prepend(data, offset, { headCut, firstLine }) : c.prepend(data, offset);
    this.top += added;
    if (c.held > this.o.cap && c.trimBottom(this.o.cap, this.top + this.height + this.o.margin)) {
      this.invalidate("forward");
      this.atEnd = false;
    }
  }

  onFailed(read, error) {
    this.reads.delete(read.id);
    const code = error.code;
    if (code === "connection_closed" || code === "cancelled") return; // "disconnected" says what to do
    if (read.kind === "locate") {
      if (read.purpose === "number") { this.tried.add(read.key); return; }
      this.want = null;
      this.notice = { kind: "error", text: `Could not find that line: ${error.message}` };
      return;
    }
    if (code === "file_changed" || (code === "bad_request" && this.phase === "open" && read.offset > 0)) {
      return this.fileChanged("The file changed on the server.");
    }
    if (this.phase === "opening" || read.kind === "stat") {
      this.phase = "failed";
      this.error = { code, message: error.message };
      this.reads.clear();
      return;
    }
    // Anything else stops reading, with the reason; resume tries again.
    this.notice = { kind: "error", text: error.message, code };
    this.invalidate("forward");
    this.invalidate("back");
    this.flow = "stopped";
  }

  onLocated(read, answer) {
    this.reads.delete(read.id);
    if (answer.lines != null && read.version === this.version) this.lines = answer.lines;
    if (read.purpose === "jump") {
      if (!this.want || this.want.kind !== "line") return;
      this.want = null;
      this.follow = false;
      if (this.content && this.content.kind === "text" && read.version === this.version) {
        const i = this.rowOf(answer.offset);
        const row = i >= 0 ? this.row(i) : null;
        if (row && row.line === answer.line && row.offset === answer.offset) {
          this.top = i;
          this.pin = "top";
          this.highlight = { offset: answer.offset, version: this.version };
          return;
        }
      }
      if (this.size === null || answer.size > this.size) this.size = answer.size;
      this.restart(answer.offset, { line: answer.line });
      this.highlight = { offset: answer.offset, version: this.version };
      return;
    }
    const c = this.content;
    if (!c || c.kind !== "text" || read.version !== this.version) return;
    if (read.purpose === "skip") {
      this.tried.add(read.key);
      if (c.skipTo(read.cutOffset, answer.line, answer.offset)) this.invalidate("forward");
      return;
    }
    if (!c.assignLine(read.version, read.offset, answer.line, answer.offset)) this.tried.add(read.key);
  }

  // ------------------------------------------------------------ user transitions

  /** A newer navigation replaces a look-up still waited for (a line to go to, the size for End). */
  cancelWait() {
    if (this.want && (this.want.kind === "line" || this.want.purpose === "end")) {
      this.want = null;
      this.invalidate("locate");
      for (const [id, read] of this.reads) if (read.kind === "stat" && read.purpose === "end") this.reads.delete(id);
    }
  }

  goEnd() {
    this.cancelWait();
    this.pin = "bottom";
    this.target = null;
    if (this.stream) return;
    if (this.size === null) {
      this.want = { kind: "stat", purpose: "end" };
      return;
    }
    const c = this.content;
    const tail = Math.max(0, this.size - this.o.tailBytes);
    if (!c) {
      if (this.origin.offset !== tail) this.restart(tail, { pin: "bottom" });
    } else {
      // Far from the end: start again near it rather than read everything in between
      // (a follower whose end is close reads on: it has nothing to skip).
      const far = c.version !== this.version || this.size < c.end || this.size - c.start > this.o.cap;
      if (far && (!this.follow || this.size - c.end > this.o.cap)) this.restart(tail, { pin: "bottom" });
    }
    if (!this.follow && this.atEnd) this.want = { kind: "poll" };
  }

  goHome() {
    this.cancelWait();
    const c = this.content;
    this.follow = false;
    this.invalidateFollow();
    this.pin = "top";
    if (c && c.start === 0 && c.startIsLine && c.startVersion === this.version) { this.top = 0; return; }
    if (this.stream) { this.top = 0; return; }
    this.restart(0);
  }

  /** Stop following: the follow read goes (the next forward read, if any, reads to the end and stops). */
  invalidateFollow() {
    const read = this.readOf("forward");
    if (read && read.follow && !this.stream) this.invalidate("forward");
  }

  jumpTo(offset) {
    if (this.stream) return;
    this.follow = false;
    this.invalidateFollow();
    this.cancelWait();
    if (this.size !== null) offset = Math.max(0, Math.min(offset, this.size));
    if (this.content && this.holds(offset) && (this.content.kind === "hex" || this.content.startIsLine || offset >= this.content.start)) {
      this.top = this.content.rowAt(offset, this.version);
      this.pin = "top";
      return;
    }
    this.restart(offset);
  }
}

// Each action's handler: `this` is the model.  Keep them short: the rules live in the methods above.
const HANDLERS = {
  // ---- the connection
  connected() { this.connected = true; },
  disconnected() {
    this.connected = false;
    // Every read is gone with the connection; reconcile() declares them again on "connected".
    this.reads.clear();
  },

  // ---- I/O results (ignored unless their read is still wanted)
  opened(a) { const r = this.reads.get(a.id); if (r) this.onOpened(r, a.info); },
  page(a) { const r = this.reads.get(a.id); if (r) this.onPage(r, a.offset, a.data); },
  event(a) { const r = this.reads.get(a.id); if (r) this.onEvent(r, a); },
  ended(a) { const r = this.reads.get(a.id); if (r) this.onEnd(r); },
  failed(a) { const r = this.reads.get(a.id); if (r) this.onFailed(r, a.error); },
  located(a) { const r = this.reads.get(a.id); if (r) this.onLocated(r, a.answer); },

  // ---- the viewport
  viewport(a) { this.height = Math.max(1, a.height | 0); },
  scroll(a) {
    const rows = a.rows | 0;
    if (rows < 0 && this.pin === "bottom") this.pin = "top";
    this.top = Math.max(0, Math.min(this.top + rows, Math.max(0, this.rowCount - this.height)));
    if (rows > 0 && this.follow && this.top >= this.rowCount - this.height) this.pin = "bottom";
  },
  scrollTo(a) {
    this.pin = "top";
    this.top = Math.max(0, Math.min(a.row | 0, Math.max(0, this.rowCount - this.height)));
  },
  home() { this.goHome(); },
  end() { this.goEnd(); },

  // ---- jumps
  jump(a) {
    this.highlight = null;
    this.cancelWait();
    if (a.end) return this.goEnd();
    if (a.percent != null) {
      if (a.percent >= 100) return this.goEnd();
      if (this.size === null) return;
      return this.jumpTo(Math.floor((this.size * a.percent) / 100));
    }
    if (a.line != null && a.offset != null) {
      // A place the server named (a search hit): a line start, with its number.
      this.follow = false;
      this.invalidateFollow();
      this.highlight = { offset: a.offset, version: this.version };
      const i = this.content && this.content.kind === "text" ? this.rowOf(a.offset) : -1;
      const row = i >= 0 ? this.row(i) : null;
      if (row && row.offset === a.offset && !row.headCut) { this.top = i; this.pin = "top"; return; }
      if (this.mode === "hex") return this.jumpTo(a.offset);
      this.restart(a.offset, { line: a.line });
      return;
    }
    if (a.line != null) {
      this.follow = false;
      this.invalidateFollow();
      const i = this.rowOfLine(a.line);
      if (i >= 0) {
        const r = this.row(i);
        this.top = i;
        this.pin = "top";
        this.highlight = { offset: r.offset, version: this.version };
        return;
      }
      if (a.line === 1 || !this.lineIndex) {
        // Without the line index, lines are counted from the top: read from there and look.
        this.restart(0, { target: false });
        this.target = { line: a.line, version: this.version };
        return;
      }
      this.want = { kind: "line", line: a.line };
      return;
    }
    this.jumpTo(a.offset);
    if (a.highlight) this.highlight = { offset: a.offset, version: this.version };
  },

  // ---- reading
  follow(a) {
    const on = a.on ?? !this.follow;
    if (on === this.follow) { if (on) this.goEnd(); return; }
    this.follow = on;
    if (on) {
      this.flow = "running";
      this.atEnd = false;
      this.highlight = null;
      this.invalidate("forward"); // a reader that does not follow makes way for one that does
      this.goEnd();
    } else {
      this.invalidateFollow();
    }
  },
  pause() { if (this.flow === "running") this.flow = "paused"; },
  resume() { this.flow = "running"; },
  togglePause() { this.flow = this.flow === "running" ? "paused" : "running"; },
  stop() {
    this.flow = "stopped";
    this.invalidate("forward");
    this.invalidate("back");
  },
  hex(a) {
    const on = a.on ?? this.mode !== "hex";
    this.hexChoice = on;
    if ((this.mode === "hex") === on) return;
    const row = this.row(this.top);
    const offset = row ? row.offset : this.origin.offset;
    this.mode = on ? "hex" : "text";
    this.restart(offset);
  },
  tick() {
    if (this.atEnd && !this.follow && !this.stream && this.content && !this.readOf("stat")) this.want = this.want || { kind: "poll" };
  },
  dismiss() { this.notice = null; },
  clearHighlight() { this.highlight = null; },
};

/** What the document is doing, in one word, for the status line (and the tests). */
export function readingState(m) {
  if (m.phase === "failed") return "failed";
  if (!m.connected) return "offline";
  if (m.flow === "stopped") return "stopped";
  if (m.flow === "paused") return "paused";
  if (m.want && m.want.kind === "stat" && m.want.purpose === "resync") return "reloading";
  if (m.longLine()) return "long-line";
  if (m.follow) return m.deleted ? "deleted" : m.pin === "bottom" ? "following" : "following-scrolled";
  if (m.stream) return m.atEnd ? "ended" : "reading";
  if (m.atEnd) return "at-end";
  const fwd = m.readOf("forward");
  if (fwd && !m.roomForward()) return "window-full";
  if (!fwd && !m.readOf("back") && m.content) return "idle";
  return "reading";
}
