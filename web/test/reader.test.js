// The Reader (reader.js) against an asynchronous fake session over a FakeFile: it runs the model's
// reads, takes an item only when the model wants one and hands it in only when the model accepts it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DocModel, readingState } from "../model.js";
import { Reader } from "../reader.js";
import { Cursor, FakeFile, rng } from "../testkit/fakefs.js";
import { SMALL } from "../testkit/random.js";

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** collector.js's Session shape: pages() -> {opened, next(), cancel()}, locate(). */
class FakeSession {
  constructor(file) { this.file = file; this.taken = 0; }
  pages(path, options) {
    const read = { kind: options.length === 0 && options.offset === 0 ? "stat" : "forward", offset: options.offset ?? 0,
      length: options.length ?? null, follow: Boolean(options.follow), text: Boolean(options.text) };
    const cursor = new Cursor(this.file, read, options.pageSize);
    const session = this;
    const result = cursor.open();
    const stream = {
      cancelled: false,
      opened: result.error ? Promise.reject(Object.assign(new Error(result.error.message), result.error)) : Promise.resolve(result.opened),
      async next() {
        for (;;) {
          if (this.cancelled) return { done: true };
          const item = cursor.next(null);
          if (item === null || item.wait) { await tick(); continue; }
          if (item.end) return { done: true };
          if (item.error) throw Object.assign(new Error(item.error.message), item.error);
          session.taken++;
          if (item.page) return { done: false, value: { kind: "page", offset: item.page.offset, data: item.page.data } };
          return { done: false, value: { kind: "event", ...item.event } };
        }
      },
      cancel() { this.cancelled = true; },
    };
    stream.opened.catch(() => {});
    return stream;
  }
  async locate(path, { offset, line }) {
    const r = new Cursor(this.file, { kind: "locate", offset, line }, 0).open();
    if (r.error) throw Object.assign(new Error(r.error.message), r.error);
    return r.located;
  }
}

async function until(predicate, what) {
  for (let i = 0; i < 20000; i++) { if (predicate()) return; await tick(); }
  assert.fail(`timed out waiting for ${what}`);
}

test("the reader fills the model, follows growth, and a pause stops taking items", async () => {
  const file = new FakeFile(rng(3), { lineCap: SMALL.lineCap });
  file.appendLines(500);
  const model = new DocModel("f.log", { ...SMALL, lineIndex: true });
  const session = new FakeSession(file);
  const reader = new Reader(model, { pageSize: SMALL.pageSize });
  reader.attach(session);
  model.dispatch({ type: "viewport", height: 10 });
  model.dispatch({ type: "connected" });
  await until(() => readingState(model) === "window-full" || readingState(model) === "at-end", "the first window");
  assert.ok(model.held <= SMALL.cap);
  model.dispatch({ type: "follow", on: true });
  await until(() => model.content && model.content.end === file.inode.size && readingState(model) === "following", "the end");
  file.appendLines(300);
  await until(() => model.content.end === file.inode.size, "the appended lines");
  model.dispatch({ type: "pause" });
  await tick();
  const taken = session.taken;
  file.appendLines(50);
  for (let i = 0; i < 200; i++) await tick();
  assert.ok(session.taken <= taken + 1, "at most the item already asked for is taken while paused");
  assert.notEqual(model.content.end, file.inode.size, "nothing is shown while paused");
  model.dispatch({ type: "resume" });
  await until(() => model.content.end === file.inode.size, "the lines written while paused");
  const last = model.row(model.rowCount - 1);
  assert.match(new TextDecoder().decode(last.bytes), /^E\d+L850:/);
  reader.close();
});

test("a disconnection drops every read; reconnected, reading resumes where it was", async () => {
  const file = new FakeFile(rng(4), { lineCap: SMALL.lineCap });
  file.appendLines(100);
  const model = new DocModel("f.log", SMALL);
  const reader = new Reader(model, { pageSize: SMALL.pageSize });
  reader.attach(new FakeSession(file));
  model.dispatch({ type: "connected" });
  model.dispatch({ type: "follow", on: true });
  await until(() => model.content && model.content.end === file.inode.size, "the end");
  model.dispatch({ type: "disconnected" });
  assert.equal(model.reads.size, 0);
  assert.equal(reader.running.size, 0);
  file.appendLines(100);
  reader.attach(new FakeSession(file));
  model.dispatch({ type: "connected" });
  await until(() => model.content.end === file.inode.size, "the lines written while offline");
  assert.equal(model.rowCount, 200);
  assert.equal(model.row(199).line, 200);
  reader.close();
});
