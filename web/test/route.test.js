import { test } from "node:test";
import assert from "node:assert/strict";
import { formatHash, parseHash, parseJump } from "../route.js";

test("fragments name a folder, a file, a line, the end", () => {
  assert.deepEqual(parseHash(""), { path: "", folder: true, line: null, end: false });
  assert.deepEqual(parseHash("#/"), { path: "", folder: true, line: null, end: false });
  assert.deepEqual(parseHash("#/logs/"), { path: "logs/", folder: true, line: null, end: false });
  assert.deepEqual(parseHash("#/logs/app.log"), { path: "logs/app.log", folder: false, line: null, end: false });
  assert.deepEqual(parseHash("#/logs/app.log:120"), { path: "logs/app.log", folder: false, line: 120, end: false });
  assert.deepEqual(parseHash("#/logs/app.log:end"), { path: "logs/app.log", folder: false, line: null, end: true });
});

test("a colon or a slash inside a name is percent-encoded, never a separator", () => {
  const hash = formatHash("dir:1/a:b.log", { line: 42 });
  assert.equal(hash, "#/dir%3A1/a%3Ab.log:42");
  assert.deepEqual(parseHash(hash), { path: "dir:1/a:b.log", folder: false, line: 42, end: false });
  assert.deepEqual(parseHash("#/a%3A5"), { path: "a:5", folder: false, line: null, end: false });
  assert.deepEqual(parseHash("#/a%2Fb.log:end"), { path: "a/b.log", folder: false, line: null, end: true });
  assert.deepEqual(parseHash(formatHash("ü €.log", { end: true })), { path: "ü €.log", folder: false, line: null, end: true });
});

test("round trips", () => {
  for (const path of ["a.log", "x/y/z.txt", "sp ace/ü/%41.log", "end", "1:2:3"]) {
    for (const where of [{}, { line: 1 }, { line: 99999 }, { end: true }]) {
      const r = parseHash(formatHash(path, where));
      assert.equal(r.path, path);
      assert.equal(r.line, where.line ?? null);
      assert.equal(r.end, Boolean(where.end));
    }
  }
});

test("the jump box: lines, percentages, byte offsets, the end, and clear refusals", () => {
  assert.deepEqual(parseJump("120"), { line: 120 });
  assert.deepEqual(parseJump(" 1 000 000 "), { line: 1000000 });
  assert.deepEqual(parseJump("50%"), { percent: 50 });
  assert.deepEqual(parseJump("99.5%"), { percent: 99.5 });
  assert.deepEqual(parseJump("@4096"), { offset: 4096 });
  assert.deepEqual(parseJump("0x1000"), { offset: 4096 });
  assert.deepEqual(parseJump("@0X1f"), { offset: 31 });
  assert.deepEqual(parseJump("end"), { end: true });
  assert.deepEqual(parseJump("$"), { end: true });
  for (const bad of ["", "abc", "12abc", "0", "150%", "0xZZ", "-5"]) assert.ok(parseJump(bad).error, bad);
});
