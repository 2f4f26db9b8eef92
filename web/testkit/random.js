// Randomised action sequences against a FakeFile: user actions, file
// changes and I/O steps in any order, invariants checked after every step.

import assert from "node:assert/strict";
import { DocModel, readingState } from "../model.js";
import { FakeFile, rng } from "./fakefs.js";
import { Sim, checkInvariants } from "./sim.js";

export const SMALL = { cap: 16 << 10, lineCap: 512, pageSize: 1024, backBytes: 2048, tailBytes: 2048, overlap: 64, jumpBefore: 256, margin: 10 };
const dec = new TextDecoder();

export function setup(seed, options = {}) {
  const r = rng(seed);
  const file = new FakeFile(r, { lineCap: SMALL.lineCap });
  const model = new DocModel("f.log", { ...SMALL, ...options });
  const sim = new Sim(model, file, r);
  return { r, file, model, sim };
}


/** User actions, file changes and I/O steps, chosen at random; invariants checked after every one. */
export function randomRun(seed, { steps = 1500, lineIndex = false, growth = 1 } = {}) {
  const { r, file, model: first, sim } = setup(seed, { lineIndex });
  let model = first;
  const check = () => checkInvariants(model, file);
  file.appendLines(r.int(0, 300));
  sim.dispatch({ type: "viewport", height: r.int(3, 20) });
  sim.dispatch({ type: "connected" });
  const log = [];
  const user = [
    [8, () => ({ type: "scroll", rows: r.int(-3 * model.height, 3 * model.height) })],
    [2, () => ({ type: "scroll", rows: -r.int(50, 400) })],
    [2, () => ({ type: "scroll", rows: r.int(50, 400) })],
    [2, () => ({ type: "home" })],
    [2, () => ({ type: "end" })],
    [2, () => ({ type: "jump", offset: r.int(0, (file.inode ? file.inode.size : 0) + 10) })],
    [1, () => ({ type: "jump", percent: r.pick([0, 10, 50, 90, 99, 100]) })],
    [1, () => ({ type: "jump", line: r.int(1, 400) })],
    [1.5, () => {
      // A search hit: a line start and its number, named by the server (maybe beyond what the model has seen).
      const ino = file.inode;
      const live = (x) => x.inode === ino && x.offset + x.text.length <= ino.size
        && ino.bytes.subarray(x.offset, x.offset + x.text.length).every((b, i) => b === x.text[i]);
      const lines = ino ? [...file.registry.values()].filter(live) : [];
      if (!lines.length) return null;
      const hit = r.pick(lines);
      return { type: "jump", offset: hit.offset, line: hit.line };
    }],
    [3, () => ({ type: "follow" })],
    [2, () => ({ type: "togglePause" })],
    [1, () => ({ type: "stop" })],
    [1, () => ({ type: "resume" })],
    [0.3, () => ({ type: "hex" })],
    [1, () => ({ type: "viewport", height: r.int(1, 30) })],
    [1, () => ({ type: "tick" })],
    [0.7, () => ({ type: "disconnected" })],
    [1.5, () => (model.connected ? null : { type: "connected" })],
  ];
  const changes = [
    [6 * growth, () => file.appendLines(r.int(1, 20 * growth))],
    [growth, () => file.appendLines(r.int(100, 800 * growth))],
    [2, () => file.appendPartial()],
    [0.5, () => file.appendLines(1, { long: true })],
    [0.4, () => file.appendLines(1, { long: r.int(2 * SMALL.cap, 3 * SMALL.cap) })], // longer than the reading-through budget
    [0.3, () => file.rotate()],
    [0.3, () => file.truncate(r.chance(0.5))],
    [0.15, () => file.delete()],
    [0.3, () => file.recreate()],
  ];
  const pickWeighted = (table) => {
    const total = table.reduce((s, [w]) => s + w, 0);
    let x = r() * total;
    for (const [w, f] of table) { x -= w; if (x < 0) return f; }
    return table[table.length - 1][1];
  };
  try {
    for (let i = 0; i < steps; i++) {
      const x = r();
      if (x < 0.25) {
        const action = pickWeighted(user)();
        if (action) { log.push(JSON.stringify(action)); sim.dispatch(action); }
      } else if (x < 0.35) {
        const f = pickWeighted(changes);
        log.push(`file: ${f.toString().slice(6, 60)}`);
        f();
      } else if (x < 0.36) {
        // Another file, then back: a fresh document (nothing carries over).
        log.push("switch");
        model = new DocModel("f.log", { ...SMALL, lineIndex });
        sim.model = model;
        sim.running.clear();
        sim.dispatch({ type: "viewport", height: r.int(3, 20) });
        sim.dispatch({ type: "connected" });
      } else {
        const n = r.int(1, 8);
        for (let k = 0; k < n; k++) { if (!sim.step()) break; check(); }
        continue;
      }
      check();
    }
    // Settle: the file stops changing; following must reach its end.
    if (!file.inode) file.recreate();
    file.finishPending();
    if (!model.connected) sim.dispatch({ type: "connected" });
    sim.dispatch({ type: "resume" });
    if (model.phase !== "failed") {
      sim.dispatch({ type: "follow", on: true });
      sim.drain(check);
      const ino = file.inode;
      assert.equal(readingState(model), "following", `state after settling: ${readingState(model)}`);
      if (!model.content) {
        assert.equal(model.origin.offset, ino.size, "an empty follower waits at the end of the file");
        return;
      }
      assert.equal(model.content.end, ino.size, "following reached the end of the file");
      const last = model.row(model.rowCount - 1);
      // (A last line longer than what End reads before the end shows as a fragment: checkInvariants checked it.)
      if (ino.size > 0 && !last.event && !last.headCut && model.content.kind === "text") {
        const bytes = ino.bytes;
        const end = bytes[bytes.length - 1] === 10 ? bytes.length - 1 : bytes.length;
        const start = bytes.lastIndexOf(10, end - 1) + 1;
        const want = bytes.subarray(start, Math.min(end, start + SMALL.lineCap));
        if (dec.decode(last.bytes) !== dec.decode(want) && process.env.DEBUG_RUN) {
          const c = model.content;
          console.log({ rows: model.rowCount, top: model.top, end: c.end, tail: c.tail.size, tailOffset: c.tailOffset, skipping: c.skipping });
          for (let i = Math.max(0, model.rowCount - 4); i < model.rowCount; i++) console.log(i, model.row(i));
          console.log(c.chunks.slice(-3).map((k) => ({ off: k.offset, rows: k.rows, size: k.data.size, ev: k.event, tc: k.tailCut, le: k.lineEnd })));
        }
        assert.equal(dec.decode(last.bytes), dec.decode(want), "the last row is the file's last line");
        assert.equal(model.top, Math.max(0, model.rowCount - model.height), "the view is at the bottom");
      }
    }
  } catch (error) {
    error.message += `\nseed ${seed}; last actions:\n  ${log.slice(-25).join("\n  ")}`;
    if (sim.trace) console.error(`trace:\n  ${sim.trace.join("\n  ")}\nactions:\n  ${log.slice(-25).join("\n  ")}`);
    throw error;
  }
}

