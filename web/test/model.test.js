import { test } from "node:test";
import assert from "node:assert/strict";
import { readingState } from "../model.js";
import { checkInvariants } from "../testkit/sim.js";
import { randomRun, setup } from "../testkit/random.js";

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
