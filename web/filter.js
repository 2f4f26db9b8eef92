// Filter mode: only the lines that match, from the server's scan, with their
// true line numbers; live while following.  DOM-free, like model.js, and
// drawn by the same view: it offers the same surface (rows, top, height,
// pin, follow, flow, reads, wants/accepts, dispatch).
//
// Reads are scans (session.search), declared in this.reads and run by the
// Reader: a forward scan from where the held matches end (following the file
// when `follow` is on), and, when the viewport reaches the first held match
// and earlier matches were dropped, a back scan of the byte range before it
// (growing fourfold while it finds nothing).  Held matches are bounded by
// `maxRows` and `cap` bytes of text: the oldest go first while reading on.

const DEFAULTS = { cap: 4 << 20, maxRows: 50_000, backSpan: 8 << 20, margin: 100, maxText: 2048 };

export class FilterModel {
  /**
   * @param {string} path
   * @param {{pattern: string, regex: boolean, ignoreCase: boolean}} query
   * @param {object} options  DEFAULTS overrides, and `follow`, `size` (from the document)
   */
  constructor(path, query, options = {}) {
    this.o = { ...DEFAULTS, ...options };
    this.path = path;
    this.query = query;
    this.kind = "filter";
    this.mode = "text";
    this.phase = "opening";
    this.error = null;
    this.stream = false;
    this.version = 0;
    this.size = options.size ?? null;
    this.lines = null;
    this.rows = []; // {offset, line, bytes, tailCut, version, event}
    this.bytes = 0;
    this.startComplete = true; // no match before rows[0] was dropped (or the first scan started at 0)
    this.scanned = 0; // where the forward scan is complete
    this.count = 0; // matching lines seen by the forward scan (the total once it ended, when not following)
    this.counted = 0; // the last line number counted
    this.top = 0;
    this.height = 40;
    this.pin = options.follow ? "bottom" : "top";
    this.follow = Boolean(options.follow);
    this.flow = "running";
    this.connected = false;
    this.atEnd = false;
    this.deleted = false;
    this.highlight = null;
    this.notice = null;
    this.reads = new Map();
    this.nextId = 1;
    this.backSpan = this.o.backSpan;
    this.revision = 0;
    this.listeners = new Set();
  }

  dispatch(action) {
    const handler = HANDLERS[action.type];
    if (!handler) return; // actions that mean nothing here (hex, tick...)
    handler.call(this, action);
    this.settle();
    this.reconcile();
    this.revision++;
    for (const fn of this.listeners) fn(action);
  }

  subscribe(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }

  get rowCount() { return this.rows.length; }
  row(i) { return i >= 0 && i < this.rows.length ? this.rows[i] : null; }
  get held() { return this.bytes; }
  /** What the gauge shows as held: the byte range the held matches span. */
  get content() {
    const first = this.rows.find((r) => !r.event);
    return { kind: "filter", startVersion: first ? first.version : this.version, start: first ? first.offset : this.scanned,
      end: this.scanned };
  }

  readOf(kind) { for (const r of this.reads.values()) if (r.kind === kind) return r; return null; }
  invalidate(kind) { for (const [id, r] of this.reads) if (r.kind === kind) this.reads.delete(id); }
  newRead(fields) { const r = { id: this.nextId++, ...fields }; this.reads.set(r.id, r); return r; }

  wants(id) {
    const r = this.reads.get(id);
    if (!r || !this.connected || this.flow !== "running") return false;
    if (r.dir === "back") return true;
    return this.follow && this.pin === "bottom" ? true : this.nearBottom() || this.room();
  }
  accepts(id) { return this.reads.has(id) && this.flow === "running"; }

  room() { return this.rows.length < this.o.maxRows && this.bytes < this.o.cap; }
  nearBottom() { return this.pin === "bottom" || this.top + this.height + this.o.margin >= this.rows.length; }

  readingState() {
    if (this.phase === "failed") return "failed";
    if (!this.connected) return "offline";
    if (this.flow === "stopped") return "stopped";
    if (this.flow === "paused") return "paused";
    if (this.follow) return this.deleted ? "deleted" : this.pin === "bottom" ? "filter-following" : "following-scrolled";
    if (this.atEnd) return "filter-done";
    return "filtering";
  }

  reconcile() {
    if (this.phase === "failed" || !this.connected || this.flow === "stopped") return;
    const q = this.query;
    if (!this.readOf("scan") && (!this.atEnd || this.follow)) {
      this.newRead({ kind: "scan", dir: "forward", path: this.path, pattern: q.pattern, regex: q.regex, ignoreCase: q.ignoreCase,
        offset: this.scanned, length: null, follow: this.follow, version: this.version, maxText: this.o.maxText });
    }
    const first = this.rows[0];
    if (!this.readOf("back") && !this.startComplete && first && !first.event && first.version === this.version
        && this.top < this.o.margin) {
      const from = Math.max(0, first.offset - this.backSpan);
      this.newRead({ kind: "scan", dir: "back", path: this.path, pattern: q.pattern, regex: q.regex, ignoreCase: q.ignoreCase,
        offset: from, length: first.offset - from, follow: false, version: this.version, maxText: this.o.maxText,
        until: first.offset, got: [] });
    }
  }

  /** Keep within the bounds: drop the oldest matches while reading on at the bottom; keep the viewport on its rows. */
  settle() {
    const over = () => this.rows.length > this.o.maxRows || this.bytes > this.o.cap;
    if (over()) {
      const keep = this.pin === "bottom" ? this.rows.length - this.height : this.top - this.o.margin;
      let n = 0;
      let freed = 0;
      const target = Math.max(this.rows.length - this.o.maxRows, 0) + Math.ceil(this.o.maxRows / 10);
      while (n < keep && (n < target || this.bytes - freed > this.o.cap)) { freed += this.rows[n].bytes.length; n++; }
      if (n) {
        this.rows.splice(0, n);
        this.bytes -= freed;
        this.top = Math.max(0, this.top - n);
        this.startComplete = false;
      }
    }
    if (over() && this.pin !== "bottom") {
      // Still over (matches were added above the viewport): drop from far below it, and read on from
      // the last row kept when the viewport gets there.
      const keep = this.top + this.height + this.o.margin;
      let n = this.rows.length;
      while (n > keep && over()) { n--; this.bytes -= this.rows[n].bytes.length; this.rows.length = n; }
      const last = this.rows[this.rows.length - 1];
      if (last && !last.event && last.version === this.version) {
        this.invalidate("scan");
        this.scanned = last.offset; // its line matches again: onHits skips lines already held
        this.atEnd = false;
      }
    }
    const last = Math.max(0, this.rows.length - this.height);
    if (this.pin === "bottom") this.top = last;
    this.top = Math.max(0, Math.min(this.top, last));
  }

  push(match, version) {
    const row = { offset: match.offset, line: match.line || null, bytes: match.text, tailCut: Boolean(match.cut), headCut: false,
      version, event: null, lineEnd: null };
    this.bytes += row.bytes.length;
    return row;
  }

  onHits(read, a) {
    if (read.dir === "back") {
      // A range that starts inside a line matches from there: that partial line is left to the next look back.
      for (const m of a.matches) if (!(read.offset > 0 && m.offset === read.offset)) read.got.push(m);
      return;
    }
    const last = this.rows[this.rows.length - 1];
    const after = last && !last.event && last.version === read.version && last.line ? last.line : 0;
    for (const m of a.matches) {
      if (m.line && m.line <= after) continue; // held already (a scan restarted at the last row kept)
      this.rows.push(this.push(m, read.version));
      if (!m.line || m.line > this.counted) { this.count += 1; this.counted = m.line || 0; } // lines scanned again count once
    }
    this.scanned = Math.max(this.scanned, a.scanned);
    if (this.size === null || this.scanned > this.size) this.size = this.scanned;
  }

  onEvent(read, a) {
    if (a.event === "deleted") { this.deleted = true; return; }
    this.deleted = false;
    if (a.event === "rotated" || a.event === "truncated") {
      this.version++;
      read.version = this.version;
      this.counted = 0;
      this.scanned = a.offset;
      this.size = a.offset;
      this.rows.push({ offset: a.offset, line: null, bytes: new Uint8Array(0), event: { kind: a.event, text: a.detail || a.event },
        version: this.version, headCut: false, tailCut: false });
    }
  }

  onEnd(read, a) {
    this.reads.delete(read.id);
    if (read.dir === "back") {
      if (read.version !== this.version || !this.rows.length || this.rows[0].offset !== read.until) return;
      const room = Math.max(this.height + this.o.margin, this.o.maxRows - this.rows.length);
      const got = read.got.slice(-room).map((m) => this.push(m, read.version));
      this.rows.unshift(...got);
      this.top += got.length;
      if (read.offset === 0 && got.length === read.got.length) this.startComplete = true;
      this.backSpan = got.length ? this.o.backSpan : this.backSpan * 4; // found nothing: look further back next time
      return;
    }
    this.atEnd = true;
    if (a.count != null && read.offset === 0) this.count = a.count;
  }

  onFailed(read, error) {
    this.reads.delete(read.id);
    if (error.code === "cancelled" || error.code === "connection_closed") return;
    this.phase = "failed";
    this.error = { code: error.code, message: error.message };
    this.notice = { kind: "error", text: error.message, code: error.code };
  }
}

const HANDLERS = {
  connected() { this.connected = true; },
  disconnected() { this.connected = false; this.reads.clear(); },
  opened(a) { const r = this.reads.get(a.id); if (r) { this.phase = "open"; if (a.info && a.info.size != null && r.dir === "forward") this.size = Math.max(this.size ?? 0, a.info.size); } },
  hits(a) { const r = this.reads.get(a.id); if (r) this.onHits(r, a); },
  event(a) { const r = this.reads.get(a.id); if (r) this.onEvent(r, a); },
  ended(a) { const r = this.reads.get(a.id); if (r) this.onEnd(r, a); },
  failed(a) { const r = this.reads.get(a.id); if (r) this.onFailed(r, a.error); },
  viewport(a) { this.height = Math.max(1, a.height | 0); },
  scroll(a) {
    const rows = a.rows | 0;
    if (rows < 0 && this.pin === "bottom") this.pin = "top";
    this.top = Math.max(0, Math.min(this.top + rows, Math.max(0, this.rows.length - this.height)));
    if (rows > 0 && this.follow && this.top >= this.rows.length - this.height) this.pin = "bottom";
  },
  scrollTo(a) { this.pin = "top"; this.top = Math.max(0, a.row | 0); },
  home() {
    this.pin = "top";
    if (this.startComplete) { this.top = 0; return; }
    // Earlier matches were dropped: scan again from the top.
    this.reads.clear();
    this.rows = [];
    this.bytes = 0;
    this.scanned = 0;
    this.count = 0;
    this.counted = 0;
    this.atEnd = false;
    this.startComplete = true;
    this.top = 0;
  },
  end() { this.pin = "bottom"; },
  follow(a) {
    const on = a.on ?? !this.follow;
    this.follow = on;
    if (on) { this.pin = "bottom"; this.flow = "running"; this.atEnd = false; }
    const r = this.readOf("scan");
    if (r && r.follow !== on) this.reads.delete(r.id); // a scan that follows (or not) takes over where this one is
  },
  pause() { if (this.flow === "running") this.flow = "paused"; },
  resume() { this.flow = "running"; },
  togglePause() { this.flow = this.flow === "running" ? "paused" : "running"; },
  stop() { this.flow = "stopped"; this.reads.clear(); },
  dismiss() { this.notice = null; },
  clearHighlight() { this.highlight = null; },
};
