// Search: the whole file through the server's scan when the collector offers
// it (session.search), otherwise the part of the file held by the model.
//
// A whole-file search streams its hits (byte offset and line number of each
// matching line) under the same credit rules as pages; we keep up to
// MAX_HITS of them (offsets and line numbers in typed arrays) and the total.
// Next/previous move to the hit after/before the row on screen, which may be
// anywhere in the file: the model jumps there with the line number known.

import { matchRanges } from "./decorate.js";

const MAX_HITS = 200_000;
const utf8 = new TextDecoder();
const latin1 = new TextDecoder("latin1");

class Hits {
  constructor() {
    this.offsets = new Float64Array(1024); // where each matching line starts
    this.lines = new Float64Array(1024); // its number
    this.at = new Float64Array(1024); // where the match itself is (for the hex view)
    this.size = 0;
  }
  push(offset, line, at) {
    if (this.size === this.offsets.length) {
      for (const key of ["offsets", "lines", "at"]) {
        const bigger = new Float64Array(this.size * 2);
        bigger.set(this[key]);
        this[key] = bigger;
      }
    }
    this.offsets[this.size] = offset;
    this.lines[this.size] = line;
    this.at[this.size] = at;
    this.size++;
  }
  /** Index of the first hit whose `key` ("offsets" or "at") is > x (size when none). */
  after(x, key = "offsets") {
    const a = this[key];
    let lo = 0, hi = this.size;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (a[mid] > x) hi = mid; else lo = mid + 1; }
    return lo;
  }
}

export class Search {
  /**
   * @param {object} file  the FileView: model, view, path, navigate(action)
   * @param {(search: Search) => void} onChange
   */
  constructor(file, onChange) {
    this.file = file;
    this.onChange = onChange;
    this.session = null;
    this.reset();
  }

  reset() {
    this.cancelScan();
    this.query = null; // {pattern, regex, ignoreCase}
    this.state = "idle"; // idle | scanning | done | local | error
    this.total = null;
    this.scanned = 0;
    this.hits = new Hits();
    this.capped = false;
    this.current = null; // {version, offset, index}
    this.error = null;
    this.waiting = null;
  }

  close() { this.cancelScan(); }

  get wholeFile() { return Boolean(this.session && typeof this.session.search === "function"); }

  sessionChanged(session) {
    this.session = session;
    if (this.query && this.state === "scanning") this.startScan(); // the scan died with the connection
  }

  cancelScan() {
    if (this.scan) { try { this.scan.cancel(); } catch { /* already over */ } }
    this.scan = null;
  }

  /** Set the query (unchanged: nothing happens).  An empty pattern clears the search. */
  set(pattern, { regex = false, ignoreCase = false } = {}) {
    const q = pattern ? { pattern, regex, ignoreCase } : null;
    const same = (a, b) => (a === null && b === null) || (a && b && a.pattern === b.pattern && a.regex === b.regex && a.ignoreCase === b.ignoreCase);
    if (same(q, this.query)) return false;
    this.reset();
    this.query = q;
    if (!q) { this.changed(); return true; }
    if (q.regex) {
      try { new RegExp(q.pattern); } catch (e) { this.state = "error"; this.error = e.message; this.changed(); return true; }
    }
    if (this.wholeFile) this.startScan();
    else { this.state = "local"; this.total = this.countLocal(); }
    this.changed();
    return true;
  }

  changed() { this.onChange(this); }

  startScan() {
    this.cancelScan();
    const q = this.query;
    const model = this.file.doc;
    this.hits = new Hits();
    this.total = 0;
    this.state = "scanning";
    const scan = this.session.search(model.path, q.pattern, { regex: q.regex, ignoreCase: q.ignoreCase });
    this.scan = scan;
    const version = model.version;
    (async () => {
      try {
        for await (const item of scan) {
          if (this.scan !== scan) return;
          if (item.type !== "hits") continue;
          for (const m of item.matches) {
            if (this.hits.size < MAX_HITS) this.hits.push(m.offset, m.line, m.offset + this.matchIndex(m.text));
            else this.capped = true;
            this.total++;
          }
          this.scanned = item.scanned;
          this.wakeStep();
          this.changed();
        }
        if (this.scan !== scan) return;
        this.state = "done";
        if (scan.count != null) this.total = scan.count;
        this.version = version;
      } catch (error) {
        if (this.scan !== scan) return;
        this.state = "error";
        this.error = error.message;
      }
      this.wakeStep();
      this.changed();
    })();
  }

  /** Where the pattern is within a hit's text (bytes), 0 when it cannot be told (a cut text, an engine difference). */
  matchIndex(text) {
    const q = this.query;
    const latin = latin1.decode(text);
    const pattern = q.regex ? q : { ...q, pattern: latin1.decode(new TextEncoder().encode(q.pattern)) };
    const r = matchRanges(latin, pattern);
    return r.length ? r[0].from : 0;
  }

  wakeStep() {
    if (this.waiting) { const w = this.waiting; this.waiting = null; w(); }
  }

  /** Where the search starts from: the current match, or the row on screen. */
  position() {
    const m = this.file.doc;
    if (this.current && this.current.version === m.version) return this.current.offset;
    const row = m.row(m.top);
    return row && row.version === m.version ? row.offset - 1 : -1;
  }

  /** Move to the next (1) or previous (-1) match. */
  async step(direction) {
    if (!this.query || this.state === "error") return;
    if (this.state === "local") return this.stepLocal(direction);
    const from = this.position();
    const key = this.file.doc.mode === "hex" ? "at" : "offsets";
    for (;;) {
      const i = this.hits.after(from, key);
      let k = direction > 0 ? i : i - 1;
      while (direction < 0 && k >= 0 && this.hits[key][k] >= from) k--;
      if (k >= 0 && k < this.hits.size) return this.go(k);
      if (this.state === "scanning" && direction > 0 && !this.capped) {
        await new Promise((resolve) => { this.waiting = resolve; });
        continue;
      }
      if (!this.hits.size) return;
      return this.go(direction > 0 ? 0 : this.hits.size - 1, true); // wrap around
    }
  }

  go(k, wrapped = false) {
    const m = this.file.doc;
    const offset = this.hits.offsets[k];
    const line = this.hits.lines[k];
    if (m.mode === "hex") {
      const at = this.hits.at[k];
      this.current = { version: m.version, offset: at, index: k, wrapped };
      this.file.navigate({ type: "jump", offset: at - (at % 16) });
    } else {
      this.current = { version: m.version, offset, index: k, wrapped };
      this.file.navigate({ type: "jump", offset, line: line || null });
    }
    this.changed();
  }

  // ---- the loaded part only (no scan on this server)

  rowMatches(row) {
    if (!row || row.event || !row.bytes) return false;
    return matchRanges(utf8.decode(row.bytes), this.query).length > 0;
  }

  /** Row indexes of the held rows that match (at most 100 000). */
  localRows() {
    const m = this.file.doc;
    const out = [];
    if (m.mode === "hex") return out;
    for (let i = 0; i < m.rowCount && out.length < 100_000; i++) if (this.rowMatches(m.row(i))) out.push(i);
    return out;
  }

  countLocal() { return this.localRows().length; }

  /** Hex mode: the pattern among the held bytes (as Latin-1 text, one character a byte). */
  hexMatches() {
    const c = this.file.doc.content;
    if (!c || !c.chunks.length) return { base: 0, ranges: [] };
    const all = new Uint8Array(c.held);
    let p = 0;
    for (const k of c.chunks) { all.set(k.data.view(), p); p += k.data.size; }
    const text = latin1.decode(all);
    const q = this.query.regex ? this.query : { ...this.query, pattern: latin1.decode(new TextEncoder().encode(this.query.pattern)) };
    return { base: c.start, ranges: matchRanges(text, q) };
  }

  stepHex(direction) {
    const m = this.file.doc;
    const { base, ranges } = this.hexMatches();
    this.total = ranges.length;
    if (!ranges.length) return this.changed();
    const row = m.row(m.top);
    const from = this.current && this.current.version === m.version ? this.current.offset : (row ? row.offset - 1 : -1);
    let pick = direction > 0 ? ranges.find((r) => base + r.from > from) : [...ranges].reverse().find((r) => base + r.from < from);
    if (!pick) pick = direction > 0 ? ranges[0] : ranges[ranges.length - 1];
    const offset = base + pick.from;
    this.current = { version: m.version, offset, index: ranges.indexOf(pick) };
    this.file.navigate({ type: "scrollTo", row: Math.max(0, m.content.rowAt(offset) - 3) });
    this.changed();
  }

  stepLocal(direction) {
    const m = this.file.doc;
    if (m.mode === "hex") return this.stepHex(direction);
    const rows = this.localRows();
    this.total = rows.length;
    if (!rows.length) return this.changed();
    let start = m.top - (direction > 0 ? 1 : 0);
    if (this.current && this.current.version === m.version) {
      const i = m.rowOf(this.current.offset);
      if (i >= 0 && m.row(i).offset === this.current.offset) start = i;
    }
    let k = direction > 0 ? rows.findIndex((i) => i > start) : rows.findLastIndex((i) => i < start);
    if (k === -1) k = direction > 0 ? 0 : rows.length - 1; // wrap around
    const row = m.row(rows[k]);
    this.current = { version: row.version, offset: row.offset, index: k };
    this.file.navigate({ type: "scrollTo", row: Math.max(0, rows[k] - 3) });
    this.changed();
  }

  /** The count shown beside the box. */
  label() {
    if (!this.query) return "";
    if (this.state === "error") return `invalid: ${this.error}`;
    const size = this.file.doc.size;
    const at = this.current && this.current.index != null ? `${this.current.index + 1} / ` : "";
    if (this.state === "local") return `${at}${this.total}${this.total >= 1000 ? "+" : ""} in the loaded part`;
    if (this.state === "scanning") {
      const pct = size ? ` · ${Math.min(100, Math.floor((100 * this.scanned) / size))}%` : "";
      return `${at}${this.total}${pct}`;
    }
    return `${at}${this.total}${this.capped ? ` (first ${MAX_HITS} listed)` : ""}`;
  }
}
