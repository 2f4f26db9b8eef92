// A driver for DocModel that runs its reads against a FakeFile one step at
// a time (the way web/reader.js runs them against the server), and the
// invariants every state of the model must satisfy.

import { Cursor } from "./fakefs.js";

const dec = new TextDecoder();

/** Runs the model's reads against `file`, one chosen step at a time. */
export class Sim {
  constructor(model, file, r) {
    this.model = model;
    this.file = file;
    this.r = r;
    this.running = new Map(); // id -> {read, cursor, state: "new"|"open", hand}
  }

  /** Make the running reads what the model wants (start new ones, forget dropped ones). */
  sync() {
    for (const id of [...this.running.keys()]) if (!this.model.reads.has(id)) this.running.delete(id);
    if (!this.model.connected) { this.running.clear(); return; }
    for (const [id, read] of this.model.reads) {
      if (!this.running.has(id)) {
        this.running.set(id, { read, cursor: new Cursor(this.file, read, this.model.o.pageSize), state: "new", hand: null });
      }
    }
  }

  dispatch(action) {
    if (process.env.DEBUG_TRACE) {
      const m = this.model;
      const a = { ...action };
      if (a.data) a.data = `${a.data.length}B ${JSON.stringify(new TextDecoder().decode(a.data.subarray(0, 12)))}`;
      const reads = [...m.reads.values()].map((r) => `${r.kind}${r.id}@${r.offset}${r.follow ? "F" : ""}`).join(",");
      this.trace = this.trace || [];
      this.trace.push(`${JSON.stringify(a)} | v${m.version} rows ${m.rowCount} start ${m.content && m.content.start} end ${m.content && m.content.end} top ${m.top} pin ${m.pin} follow ${m.follow} flow ${m.flow} reads ${reads}`);
      if (this.trace.length > 60) this.trace.shift();
    }
    this.model.dispatch(action);
    this.sync();
  }

  /** The steps that could happen now: [{id, run()}]. */
  steps() {
    this.sync();
    const out = [];
    for (const [id, run] of this.running) {
      if (run.state === "new") { out.push({ id, go: () => this.open(id, run) }); continue; }
      if (run.hand) {
        if (this.model.accepts(id)) out.push({ id, go: () => this.handIn(id, run) });
        continue;
      }
      if (this.model.wants(id)) {
        const peekable = run.cursor.done ? false : true;
        if (peekable) out.push({ id, go: () => this.pull(id, run) });
      }
    }
    return out;
  }

  open(id, run) {
    const result = run.cursor.open();
    if (run.read.kind === "locate") {
      this.running.delete(id);
      if (result.error) return this.dispatch({ type: "failed", id, error: result.error });
      return this.dispatch({ type: "located", id, answer: result.located });
    }
    if (result.error) { this.running.delete(id); return this.dispatch({ type: "failed", id, error: result.error }); }
    run.state = "open";
    this.dispatch({ type: "opened", id, info: result.opened });
  }

  /** Take the next item (as the collector's next() does: this acknowledges the previous page). */
  pull(id, run) {
    const item = run.cursor.next(this.r);
    if (item === null) return false; // the server would wait
    if (item.wait) return true; // it waited for the rest of a line: the next look sends what there is
    if (item.end) { this.running.delete(id); this.dispatch({ type: "ended", id }); return true; }
    if (item.error) { this.running.delete(id); this.dispatch({ type: "failed", id, error: item.error }); return true; }
    run.hand = item;
    if (this.model.accepts(id)) this.handIn(id, run);
    return true;
  }

  handIn(id, run) {
    const item = run.hand;
    run.hand = null;
    if (item.page) this.dispatch({ type: "page", id, offset: item.page.offset, data: item.page.data });
    else this.dispatch({ type: "event", id, ...item.event });
  }

  /** Do one random step; false when nothing can move. */
  step() {
    const steps = this.steps();
    while (steps.length) {
      const i = Math.floor(this.r() * steps.length);
      const [s] = steps.splice(i, 1);
      if (s.go() !== false) return true;
    }
    return false;
  }

  /** Run steps until nothing can move (or `limit` steps); `check` after each. */
  drain(check, limit = 100000) {
    let n = 0;
    while (n < limit && this.step()) { n++; if (check) check(); }
    return n;
  }
}

/** Assert everything the issue lists about the model's state; throws with a description. */
export function checkInvariants(model, file) {
  const fail = (msg) => { throw new Error(`invariant: ${msg}`); };
  const o = model.o;
  if (model.held > o.cap) fail(`held ${model.held} > cap ${o.cap}`);
  const c = model.content;
  const n = model.rowCount;
  if (n === 0) { if (model.top !== 0) fail(`top ${model.top} with no rows`); return; }
  if (!(model.top >= 0 && model.top < n)) fail(`top ${model.top} outside 0..${n - 1}`);
  if (c.kind === "hex") return checkHex(model, file, fail);
  let prev = null;
  for (let i = 0; i < n; i++) {
    const row = c.row(i);
    if (row.partial && i !== n - 1) fail(`partial row ${i} is not the last`);
    if (row.event) { prev = { event: true, version: row.version }; continue; }
    if (prev && !prev.event && row.version !== prev.version) fail(`row ${i}: version changes without a marker`);
    const text = dec.decode(row.bytes);
    const info = describe(row, i);
    let reg = null;
    if (!row.headCut) {
      const m = /^E(\d+)L(\d+):/.exec(text);
      if (!m) {
        // Only a line still being written may be shorter than its header.
        if (!(row.partial || row.sealed) || !/^(E\d*(L\d*)?)?$/.test(text)) fail(`${info}: not a line of the file: ${JSON.stringify(text.slice(0, 40))}`);
      } else {
        reg = file.registry.get(`E${m[1]}L${m[2]}`);
        if (!reg) fail(`${info}: unknown line ${m[0]}`);
        if (row.offset !== reg.offset) fail(`${info}: offset ${row.offset}, the line is at ${reg.offset}`);
        if (row.line !== null && row.line !== reg.line) fail(`${info}: numbered ${row.line}, it is line ${reg.line}`);
        const whole = row.bytes.length === reg.text.length && equal(row.bytes, reg.text);
        if (row.tailCut) {
          if (row.bytes.length !== o.lineCap || reg.text.length <= o.lineCap || !equal(row.bytes, reg.text.subarray(0, o.lineCap))) fail(`${info}: a cut row must be the line's first lineCap bytes`);
        } else if (row.partial || row.sealed) {
          if (!equal(row.bytes, reg.text.subarray(0, row.bytes.length))) fail(`${info}: not a prefix of its line`);
        } else if (!whole) {
          fail(`${info}: ${JSON.stringify(text.slice(0, 60))} is not the whole line ${JSON.stringify(dec.decode(reg.text).slice(0, 60))} (joined or split)`);
        }
      }
    } else {
      // A fragment: its bytes are somewhere in a line of some version at that offset.
      const found = [...file.registry.values()].some((r) => row.offset >= r.offset && row.offset + row.bytes.length <= r.offset + r.text.length
        && equal(row.bytes, r.text.subarray(row.offset - r.offset, row.offset - r.offset + row.bytes.length)));
      if (!found) fail(`${info}: fragment not found in any line`);
      if (i !== 0 && !(prev && prev.event)) fail(`${info}: a fragment may only start the content`);
    }
    // Consecutive rows are consecutive lines: no duplicates, no gaps.
    if (prev && !prev.event && reg && prev.reg) {
      if (reg.inode !== prev.reg.inode) fail(`${info}: follows a row of another file without a marker`);
      if (reg.offset !== prev.reg.offset + prev.reg.text.length + 1) {
        fail(`${info}: line ${reg.line} at ${reg.offset} does not follow line ${prev.reg.line} at ${prev.reg.offset} (duplicate or gap)`);
      }
    }
    if (prev && !prev.event && prev.row && prev.row.line !== null && row.line !== null && row.line !== prev.row.line + 1) {
      fail(`${info}: numbered ${row.line} after ${prev.row.line}`);
    }
    prev = { reg, row, version: row.version };
  }
}

function checkHex(model, file, fail) {
  const c = model.content;
  // Each held chunk is the bytes at that offset of some content the file has had.
  const contents = [...new Set([...file.registry.values()].map((r) => r.inode))].flatMap((ino) => ino.versions());
  for (const chunk of c.chunks) {
    const d = chunk.data.view();
    const ok = contents.some((bytes) => chunk.offset + d.length <= bytes.length && equal(d, bytes.subarray(chunk.offset, chunk.offset + d.length)));
    if (!ok) fail(`hex bytes at ${chunk.offset} (${d.length}) are not the file's`);
  }
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function describe(row, i) {
  return `row ${i} (offset ${row.offset}, line ${row.line}${row.partial ? ", partial" : ""}${row.tailCut ? ", cut" : ""}${row.sealed ? ", sealed" : ""})`;
}
