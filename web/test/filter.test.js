// FilterModel (filter.js) against a fake scan of an in-memory file: whatever the moves, the held rows
// are consecutive matching lines of the file (no gap, no duplicate), with their true numbers and offsets.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FilterModel } from "../filter.js";
import { rng } from "../testkit/fakefs.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A growing text file and the scan the server would run on it (docs/protocol.md §8). */
class Text {
  constructor() { this.lines = []; this.offsets = []; this.size = 0; }
  add(text) { this.offsets.push(this.size); this.lines.push(text); this.size += enc.encode(text).length + 1; }
  /** Matches in [from, to): lines starting in the range (a range starting inside a line starts it there). */
  matches(pattern, from, to) {
    const out = [];
    for (let i = 0; i < this.lines.length; i++) {
      const start = this.offsets[i];
      const end = start + enc.encode(this.lines[i]).length + 1;
      if (end <= from || start >= to) continue;
      const s = Math.max(start, from);
      const text = enc.encode(this.lines[i]).subarray(s - start);
      if (dec.decode(text).includes(pattern)) out.push({ offset: s, line: i + 1, text, cut: false });
    }
    return out;
  }
}

/** Runs the filter's scan reads one step at a time, like the Reader. */
class ScanSim {
  constructor(model, file, r) { this.model = model; this.file = file; this.r = r; this.runs = new Map(); }
  sync() {
    for (const id of [...this.runs.keys()]) if (!this.model.reads.has(id)) this.runs.delete(id);
    for (const [id, read] of this.model.reads) if (!this.runs.has(id)) this.runs.set(id, { read, pos: read.offset, opened: false });
  }
  dispatch(a) { this.model.dispatch(a); this.sync(); }
  step() {
    this.sync();
    const ready = [...this.runs.entries()].filter(([id, run]) => !run.opened || this.model.wants(id));
    if (!ready.length) return false;
    const [id, run] = ready[Math.floor(this.r() * ready.length)];
    if (!run.opened) { run.opened = true; this.dispatch({ type: "opened", id, info: { size: this.file.size } }); return true; }
    const end = run.read.length == null ? this.file.size : run.read.offset + run.read.length;
    if (run.pos >= end) {
      if (run.read.follow) return false; // waits for the file to grow
      this.runs.delete(id);
      this.dispatch({ type: "ended", id, count: null });
      return true;
    }
    const to = Math.min(end, run.pos + 1 + Math.floor(this.r() * 2000));
    // A scan reports whole lines: stop at the end of the line holding `to - 1`.
    let stop = to;
    for (let i = 0; i < this.file.lines.length; i++) {
      const s = this.file.offsets[i], e = s + enc.encode(this.file.lines[i]).length + 1;
      if (s < to && e > to - 1) { stop = Math.min(end, e); break; }
    }
    const matches = this.file.matches(this.model.query.pattern, run.pos, stop);
    run.pos = stop;
    this.dispatch({ type: "hits", id, matches, scanned: stop });
    return true;
  }
  drain(check) { let n = 0; while (n < 100000 && this.step()) { n++; if (check) check(); } }
}

function check(model, file) {
  const rows = model.rows;
  assert.ok(rows.length <= Math.max(model.o.maxRows, model.height + 2 * model.o.margin + 2), `${rows.length} rows held`);
  let prev = null;
  for (const row of rows) {
    if (row.event) { prev = null; continue; }
    const i = row.line - 1;
    assert.equal(row.offset, file.offsets[i], `row for line ${row.line} at its line's offset`);
    assert.equal(dec.decode(row.bytes), file.lines[i]);
    assert.ok(file.lines[i].includes(model.query.pattern));
    if (prev) {
      // The next matching line after prev: none skipped, none repeated.
      let k = prev.line; // index of the line after prev
      while (k < file.lines.length && !file.lines[k].includes(model.query.pattern)) k++;
      assert.equal(row.line, k + 1, `after line ${prev.line} comes line ${k + 1}, not ${row.line}`);
    }
    prev = row;
  }
  assert.ok(model.top >= 0 && model.top <= Math.max(0, rows.length - 1));
}

function makeFile(n, r) {
  const file = new Text();
  for (let i = 0; i < n; i++) file.add(`${r.chance(0.3) ? "ERROR" : "info"} event ${i} ${"x".repeat(r.int(0, 40))}`);
  return file;
}

test("filter rows stay consecutive matches through trimming, going back up, Home and live growth", () => {
  for (let seed = 1; seed <= 12; seed++) {
    const r = rng(seed);
    const file = makeFile(4000, r);
    const model = new FilterModel("f.log", { pattern: "ERROR", regex: false, ignoreCase: false }, { maxRows: 150, margin: 20, backSpan: 3000 });
    const sim = new ScanSim(model, file, r);
    sim.dispatch({ type: "viewport", height: 10 });
    sim.dispatch({ type: "connected" });
    const c = () => check(model, file);
    for (let i = 0; i < 600; i++) {
      const x = r();
      if (x < 0.3) {
        const action = r.pick([
          { type: "scroll", rows: r.int(-60, 60) }, { type: "scroll", rows: -r.int(100, 400) }, { type: "end" }, { type: "home" },
          { type: "follow" }, { type: "togglePause" }, { type: "scrollTo", row: 0 }, { type: "viewport", height: r.int(3, 30) },
        ]);
        sim.dispatch(action);
      } else if (x < 0.35) {
        for (let k = r.int(1, 30); k > 0; k--) file.add(`${r.chance(0.3) ? "ERROR" : "info"} later ${file.lines.length}`);
      } else {
        for (let k = r.int(1, 6); k > 0; k--) if (!sim.step()) break;
      }
      c();
    }
    // Settle: follow to the end; the last held row is the file's last matching line.
    sim.dispatch({ type: "resume" });
    sim.dispatch({ type: "follow", on: true });
    sim.drain(c);
    const lastMatch = file.lines.findLastIndex((t) => t.includes("ERROR")) + 1;
    assert.equal(model.rows[model.rows.length - 1].line, lastMatch, `seed ${seed}`);
    // And Home gets back to the first matching line.
    sim.dispatch({ type: "follow", on: false });
    sim.dispatch({ type: "home" });
    sim.drain(c);
    assert.equal(model.rows[0].line, file.lines.findIndex((t) => t.includes("ERROR")) + 1, `seed ${seed}`);
  }
});
