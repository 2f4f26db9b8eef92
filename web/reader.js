// Runs a DocModel's declared reads against a collector session (collector.js).
//
// The model says which reads should exist (model.reads); after every change
// the Reader makes the running set equal to it: it opens a stream for each
// new read and cancels each one that disappeared.  It takes a stream's next
// item only when the model wants one (model.wants: that is what sends the
// acknowledgement, so a full window or a pause stops the server), and hands
// an item in only when the model accepts it (not while paused: the item
// waits here, one at most).  Results go back as actions carrying the read id.

const PAGE_SIZE = 64 << 10;

export class Reader {
  /**
   * @param {import("./model.js").DocModel} model
   * @param {{pageSize?: number}} options
   */
  constructor(model, { pageSize = PAGE_SIZE } = {}) {
    this.model = model;
    this.pageSize = pageSize;
    this.session = null;
    this.running = new Map(); // read id -> {cancel()}
    this.waiters = new Set();
    this.bytesIn = 0; // page bytes handed to the model (for the rate shown)
    this.unsubscribe = model.subscribe(() => this.sync());
  }

  /** Use this (connected) session from now on; reads of an earlier one were dropped by "disconnected". */
  attach(session) {
    this.session = session;
    this.sync();
  }

  /** Cancel everything; the model is being closed. */
  close() {
    this.unsubscribe();
    for (const run of this.running.values()) run.cancel();
    this.running.clear();
    this.session = null;
    this.wake();
  }

  sync() {
    for (const [id, run] of this.running) {
      if (!this.model.reads.has(id)) { run.cancel(); this.running.delete(id); }
    }
    if (this.session && this.model.connected) {
      for (const [id, read] of this.model.reads) if (!this.running.has(id)) this.start(read);
    }
    this.wake();
  }

  wake() {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) w();
  }

  /** Resolve at the next change of the model (or of the running set). */
  changed() { return new Promise((resolve) => this.waiters.add(resolve)); }

  alive(id, session) { return this.running.has(id) && this.session === session && this.model.reads.has(id); }

  start(read) {
    const session = this.session;
    const run = { cancelled: false, stream: null, cancel() { this.cancelled = true; if (this.stream) this.stream.cancel(); } };
    this.running.set(read.id, run);
    const task = read.kind === "locate" ? this.runLocate(read, session)
      : read.kind === "scan" ? this.runScan(read, session, run) : this.runPages(read, session, run);
    task.catch((error) => this.fail(read.id, session, error));
  }

  fail(id, session, error) {
    if (!this.alive(id, session)) return;
    this.running.delete(id);
    this.model.dispatch({ type: "failed", id, error: { code: error.code || "internal", message: error.message || String(error) } });
  }

  async runLocate(read, session) {
    const answer = await session.locate(this.model.path, read.offset != null ? { offset: read.offset } : { line: read.line });
    if (!this.alive(read.id, session)) return;
    this.running.delete(read.id);
    this.model.dispatch({ type: "located", id: read.id, answer });
  }

  /** A scan (filter mode): hits under the same credit rules as pages. */
  async runScan(read, session, run) {
    const id = read.id;
    const stream = session.search(read.path, read.pattern, {
      regex: read.regex, ignoreCase: read.ignoreCase, offset: read.offset, length: read.length, follow: read.follow,
      maxText: read.maxText,
    });
    await this.drive(id, session, run, stream, {
      ended: () => ({ type: "ended", id, count: stream.count }),
      deliver: (item) => {
        if (item.type === "hits") this.model.dispatch({ type: "hits", id, matches: item.matches, scanned: item.scanned });
        else if (item.type === "event") this.model.dispatch({ type: "event", id, event: item.event, offset: item.offset, lost: item.lost, detail: item.detail });
      },
    });
  }

  async runPages(read, session, run) {
    const model = this.model;
    const id = read.id;
    const options = { pageSize: this.pageSize };
    if (read.kind === "stat") Object.assign(options, { offset: 0, length: 0 });
    else if (read.kind === "back") Object.assign(options, { offset: read.offset, length: read.length });
    else Object.assign(options, { offset: read.offset, follow: read.follow, text: read.text });
    if (model.stream) delete options.offset;
    const stream = session.pages(model.path, options);
    await this.drive(id, session, run, stream, {
      ended: () => ({ type: "ended", id }),
      deliver: (item) => {
        if (item.kind === "page") {
          this.bytesIn += item.data.length;
          model.dispatch({ type: "page", id, offset: item.offset, data: item.data });
        } else if (item.kind === "event") {
          model.dispatch({ type: "event", id, event: item.event, offset: item.offset, lost: item.lost, detail: item.detail });
        }
      },
    });
  }

  /**
   * Feed one stream (pages or a scan) to the model: an item is asked for
   * (which acknowledges the one before) only while the model wants more, and
   * handed over only when it can take it; the stream is cancelled on the way
   * out, whatever ended the read.
   */
  async drive(id, session, run, stream, { ended, deliver }) {
    const model = this.model;
    run.stream = stream;
    if (run.cancelled) stream.cancel();
    try {
      const info = await stream.opened;
      if (!this.alive(id, session)) return;
      model.dispatch({ type: "opened", id, info });
      for (;;) {
        while (this.alive(id, session) && !model.wants(id)) await this.changed();
        if (!this.alive(id, session)) return;
        const { value: item, done } = await stream.next(); // acknowledges the previous item
        if (!this.alive(id, session)) return;
        if (done) {
          this.running.delete(id);
          model.dispatch(ended());
          return;
        }
        while (this.alive(id, session) && !model.accepts(id)) await this.changed();
        if (!this.alive(id, session)) return;
        deliver(item);
      }
    } finally {
      stream.cancel();
    }
  }
}
