import { test } from "node:test";
import assert from "node:assert/strict";
import { readingState } from "../model.js";
import { checkInvariants } from "../testkit/sim.js";
import { randomRun, setup, SMALL } from "../testkit/random.js";

test("a small file is read whole, numbered from 1", () => {
  const { file, model, sim } = setup(1);
  file.appendLines(50);
  sim.dispatch({ type: "viewport", height: 10 });
  sim.dispatch({ type: "connected" });
  sim.drain(() => checkInvariants(model, file));
  assert.equal(model.rowCount, 50);
  assert.equal(model.row(0).line, 1);
  assert.equal(model.row(49).line, 50);
  assert.equal(readingState(model), "at-end");
  assert.equal(model.size, file.inode.size);
});

for (const lineIndex of [false, true]) {
  test(`random action sequences keep every invariant (line index: ${lineIndex})`, () => {
    for (let seed = 1; seed <= 24; seed++) randomRun(seed * 7919 + (lineIndex ? 1 : 0), { lineIndex, steps: 1200 });
  });
}

test("random sequences with fast growth: following reaches the end", () => {
  for (let seed = 1; seed <= 10; seed++) randomRun(seed * 104729, { growth: 20, steps: 800, lineIndex: seed % 2 === 0 });
});

test("a hit beyond the size seen so far (the file grew) opens at that line, with its number", () => {
  const { file, model, sim } = setup(9, { lineIndex: true });
  file.appendLines(100);
  sim.dispatch({ type: "viewport", height: 10 });
  sim.dispatch({ type: "connected" });
  sim.drain(() => checkInvariants(model, file));
  file.appendLines(3);
  const reg = [...file.registry.values()].find((r) => r.inode === file.inode && r.line === 103);
  sim.dispatch({ type: "jump", offset: reg.offset, line: reg.line }); // as a search hit: the model has not seen the growth
  sim.drain(() => checkInvariants(model, file));
  const row = model.row(model.rowOf(reg.offset));
  assert.equal(row.offset, reg.offset);
  assert.equal(row.line, 103);
  assert.deepEqual(model.highlight, { offset: reg.offset, version: model.version });
});

test("a line longer than the window: read through up to a budget, then stop, or jump to the next line with the index", () => {
  for (const lineIndex of [false, true]) {
    const { file, model, sim } = setup(11, { lineIndex });
    file.appendLines(10);
    file.appendLines(1, { long: 100_000 }); // line 11: six windows long
    file.appendLines(10);
    sim.dispatch({ type: "viewport", height: 30 });
    sim.dispatch({ type: "connected" });
    let pagesRead = 0;
    const count = () => { checkInvariants(model, file); };
    const dispatch = sim.dispatch.bind(sim);
    sim.dispatch = (a) => { if (a.type === "page") pagesRead += a.data.length; dispatch(a); };
    sim.drain(count);
    const cut = model.row(10);
    assert.ok(cut.tailCut && cut.line === 11);
    if (lineIndex) {
      assert.equal(model.rowCount, 21, "the lines after the long one are shown");
      assert.equal(model.row(20).line, 21);
      assert.equal(readingState(model), "at-end");
      assert.ok(pagesRead < 60_000, `${pagesRead} bytes read, not the whole line`);
    } else {
      assert.equal(model.rowCount, 11);
      assert.equal(readingState(model), "long-line");
      assert.ok(pagesRead < 20_000 + SMALL.cap, `${pagesRead} bytes read`);
    }
    // Following reads through whatever the line's length.
    sim.dispatch({ type: "follow", on: true });
    sim.drain(count);
    assert.equal(model.content.end, file.inode.size);
    const last = model.row(model.rowCount - 1);
    assert.match(new TextDecoder().decode(last.bytes), /^E\d+L21:/);
    assert.equal(last.line, lineIndex ? 21 : null); // far from where it was: it started near the end (numbers need the index)
  }
});
