import { test } from "node:test";
import assert from "node:assert/strict";
import { levelOf, matchRanges, paletteColor, parseAnsi, prettyJson, segments, visible } from "../decorate.js";

test("ANSI colour codes become styles; other escapes disappear", () => {
  const { plain, styles } = parseAnsi("\u001b[31mred\u001b[0m and \u001b[1;32mbold green\u001b[0m\u001b[2K!");
  assert.equal(plain, "red and bold green!");
  assert.deepEqual(styles, [{ from: 0, to: 3, fg: 1 }, { from: 8, to: 18, bold: true, fg: 2 }]);
  const rich = parseAnsi("\u001b[38;5;208morange\u001b[48;2;1;2;3mbg\u001b[39;49m.");
  assert.deepEqual(rich.styles, [{ from: 0, to: 6, fg: 208 }, { from: 6, to: 8, fg: 208, bg: "#010203" }]);
  assert.equal(parseAnsi("\u001b]0;title\u0007text").plain, "text");
  assert.equal(paletteColor(196), "#ff0000");
  assert.equal(paletteColor(232), "#080808");
});

test("log levels are recognised near the start, not in the middle of words", () => {
  assert.equal(levelOf("2024-05-01 12:00:00 ERROR something"), "error");
  assert.equal(levelOf("[WARN] disk almost full"), "warn");
  assert.equal(levelOf("W0501 12:00 INFO x"), "info");
  assert.equal(levelOf('{"level":"debug","msg":"x"}'), "debug");
  assert.equal(levelOf("level=error msg=boom"), "error");
  assert.equal(levelOf("user error: typo"), null);
  assert.equal(levelOf("TERRORIST"), null);
  assert.equal(levelOf("FATAL: out of memory"), "fatal");
});

test("JSON lines are pretty-printed on demand, with a prefix kept", () => {
  assert.equal(prettyJson('{"a":1,"b":[1,2]}'), '{\n  "a": 1,\n  "b": [\n    1,\n    2\n  ]\n}');
  assert.equal(prettyJson('12:00:01 {"a":1}'), '12:00:01 {\n  "a": 1\n}');
  assert.equal(prettyJson("{not json}"), null);
  assert.equal(prettyJson("plain text"), null);
});

test("search ranges: literal or regex, case folded or not", () => {
  assert.deepEqual(matchRanges("a.b a.b", { pattern: "a.b" }), [{ from: 0, to: 3 }, { from: 4, to: 7 }]);
  assert.deepEqual(matchRanges("axb", { pattern: "a.b" }), []);
  assert.deepEqual(matchRanges("axb", { pattern: "a.b", regex: true }), [{ from: 0, to: 3 }]);
  assert.deepEqual(matchRanges("Error error", { pattern: "error", ignoreCase: true }), [{ from: 0, to: 5 }, { from: 6, to: 11 }]);
  assert.deepEqual(matchRanges("Error error", { pattern: "error" }), [{ from: 6, to: 11 }]);
  assert.deepEqual(matchRanges("x", { pattern: "(", regex: true }), []);
});

test("segments split at styles and marks; control characters are made visible", () => {
  const segs = segments("red and", [{ from: 0, to: 3, fg: 1 }], [{ from: 2, to: 5 }]);
  assert.deepEqual(segs.map((s) => [s.text, Boolean(s.style), s.mark]), [["re", true, false], ["d", true, true], [" a", false, true], ["nd", false, false]]);
  assert.equal(visible("a\u0000b\u001bc\td"), "a\u2400b\u241bc\td");
});
