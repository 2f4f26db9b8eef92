// The pagebridge viewer: folder list, and a file view that stays small in
// memory however large or fast the file.
//
// Memory: the view holds a bounded window of the file (WINDOW_BYTES of
// text, as lines, or of raw bytes in hex mode).  Reading ahead stops when
// the window is full, by simply not acknowledging pages: the server stops
// too.  Scrolling above the window fetches earlier bytes by offset;
// jumping (top, bottom, a percentage, a byte offset) starts a new stream
// there.  Only rows near the viewport exist in the DOM.

import { ConnectionClosedError, connect, errorText, PagebridgeError } from "./collector.js";

const WINDOW_BYTES = 8 << 20; // bytes kept in the tab per open file
const BACK_FETCH = 256 << 10; // bytes fetched when scrolling above the window
const OVERSCAN = 30; // rows rendered beyond the viewport
const MAX_LINE_CHARS = 4000; // a longer line is cut on screen (its bytes stay exact)
const PAGE_SIZE = 64 << 10; // small pages: the first screen appears at once

const $ = (id) => document.getElementById(id);
const el = {
  status: $("status"), crumbs: $("crumbs"), browser: $("browser"), entries: $("entries"),
  viewer: $("viewer"), lines: $("lines"), spacer: $("spacer"), rows: $("rows"),
  pause: $("pause"), cancel: $("cancel"), top: $("top"), bottom: $("bottom"), follow: $("follow"),
  jump: $("jump"), jumpTo: $("jump-to"), search: $("search"), searchText: $("search-text"),
  searchPrev: $("search-prev"), searchCount: $("search-count"), hex: $("hex"),
  meterFill: $("meter-fill"), meterWindow: $("meter-window"), progress: $("progress-text"),
  message: $("message"), tokenDialog: $("token-dialog"), tokenInput: $("token-input"),
};

// ------------------------------------------------------------------ helpers

function humanBytes(n) {
  if (n == null) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(n < 10 ? 1 : 0) : n} ${units[i]}`;
}

function humanTime(seconds) {
  if (!isFinite(seconds)) return "–";
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

function describeError(error) {
  const code = error.code || "internal";
  return `${errorText(error)} (${code}: ${error.message})`;
}

function showMessage(text, kind = "error") {
  el.message.textContent = text;
  el.message.dataset.kind = kind;
  el.message.hidden = !text;
}

function setStatus(state, text) {
  el.status.dataset.state = state;
  el.status.textContent = text;
}

function looksBinary(bytes) {
  const sample = bytes.subarray(0, 4096);
  let control = 0;
  for (const b of sample) {
    if (b === 0) return true;
    if (b < 9 || (b > 13 && b < 32)) control++;
  }
  if (control > sample.length / 10) return true;
  // Invalid UTF-8 (ignoring a character cut at the end of the sample) means binary.
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(sample.subarray(0, Math.max(0, sample.length - 4)));
    return false;
  } catch {
    return true;
  }
}

function concat(a, b) {
  if (!a.length) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

// Split complete lines out of `bytes` (which starts at byte `offset`).
// Returns {lines: [{offset, length, text}], rest} where rest is the
// unterminated tail.  '\n' (0x0A) never occurs inside a multi-byte UTF-8
// character, so cutting at it never splits one.
const utf8 = new TextDecoder("utf-8");
function splitLines(bytes, offset) {
  const lines = [];
  let start = 0;
  for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, start)) {
    const text = utf8.decode(bytes.subarray(start, i));
    lines.push({ offset: offset + start, length: i + 1 - start, text });
    start = i + 1;
  }
  return { lines, rest: bytes.subarray(start) };
}

// ------------------------------------------------------------------ the connection

const app = {
  session: null,
  token: sessionStorage.getItem("pagebridge-token"),
  doc: null,
  route: null,
  reconnectDelay: 500,
  connecting: null,
};

async function ensureSession() {
  if (app.session && app.session.open) return app.session;
  if (app.connecting) return app.connecting;
  app.connecting = (async () => {
    for (;;) {
      setStatus("connecting", "connecting…");
      try {
        const session = await connect("/ws", { token: app.token });
        session.onclose = (error) => onConnectionLost(session, error);
        app.session = session;
        app.reconnectDelay = 500;
        setStatus("connected", "connected");
        return session;
      } catch (error) {
        if (error.code === "unauthorized") {
          setStatus("error", "token needed");
          app.token = await askToken(app.token ? "That token was refused. Try again:" : null);
          continue;
        }
        setStatus("offline", `offline — retrying in ${humanTime(app.reconnectDelay / 1000)}`);
        await new Promise((r) => setTimeout(r, app.reconnectDelay));
        app.reconnectDelay = Math.min(app.reconnectDelay * 2, 5000);
      }
    }
  })();
  try {
    return await app.connecting;
  } finally {
    app.connecting = null;
  }
}

function askToken(note) {
  return new Promise((resolve) => {
    if (note) el.tokenDialog.querySelector("p").textContent = note;
    el.tokenInput.value = "";
    el.tokenDialog.showModal();
    el.tokenDialog.addEventListener("close", () => {
      const token = el.tokenInput.value;
      sessionStorage.setItem("pagebridge-token", token);
      resolve(token);
    }, { once: true });
  });
}

function onConnectionLost(session, error) {
  if (app.session !== session) return;
  app.session = null;
  setStatus("offline", "connection lost — reconnecting…");
  // The open document resumes where its consumer stopped, once reconnected.
  if (app.doc) app.doc.connectionLost();
  ensureSession().then(() => { if (app.doc) app.doc.reconnected(); });
}

// ------------------------------------------------------------------ routing

function currentPath() {
  const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
  return hash;
}

function renderCrumbs(path, isDir) {
  el.crumbs.replaceChildren();
  const parts = path.split("/").filter(Boolean);
  const root = document.createElement("a");
  root.href = "#/";
  root.textContent = "/";
  el.crumbs.append(root);
  parts.forEach((part, i) => {
    const a = document.createElement("a");
    const dir = i < parts.length - 1 || isDir;
    a.href = "#/" + parts.slice(0, i + 1).map(encodeURIComponent).join("/") + (dir ? "/" : "");
    a.textContent = part + (dir ? "/" : "");
    el.crumbs.append(a);
  });
}

async function route() {
  const path = currentPath();
  if (app.doc) { app.doc.close(); app.doc = null; }
  showMessage("");
  if (path === "" || path.endsWith("/")) return showFolder(path);
  return showFile(path);
}

async function showFolder(path) {
  renderCrumbs(path, true);
  el.viewer.hidden = true;
  el.browser.hidden = false;
  document.title = `pagebridge — /${path}`;
  const session = await ensureSession();
  let entries;
  try {
    entries = await session.list(path);
  } catch (error) {
    el.entries.replaceChildren();
    return showMessage(describeError(error));
  }
  const rows = entries.map((e) => {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    const a = document.createElement("a");
    const href = path + encodeURIComponent(e.name) + (e.kind === "dir" ? "/" : "");
    a.href = "#/" + href;
    a.textContent = e.name + (e.kind === "dir" ? "/" : "");
    a.className = `kind-${e.kind}`;
    name.append(a);
    const size = document.createElement("td");
    size.className = "num";
    size.textContent = e.kind === "file" ? humanBytes(e.size) : "";
    size.title = e.size != null ? `${e.size} bytes` : "";
    const mtime = document.createElement("td");
    mtime.textContent = e.mtime ? new Date(e.mtime * 1000).toLocaleString() : "";
    tr.append(name, size, mtime);
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement("tr");
    tr.innerHTML = '<td colspan="3" class="muted">empty folder</td>';
    rows.push(tr);
  }
  el.entries.replaceChildren(...rows);
}

async function showFile(path) {
  renderCrumbs(path, false);
  el.browser.hidden = true;
  el.viewer.hidden = false;
  document.title = `pagebridge — ${path.split("/").pop()}`;
  app.doc = new Doc(path);
  await app.doc.load();
}

// ------------------------------------------------------------------ a file being viewed

class Doc {
  constructor(path) {
    this.path = path;
    this.info = null; // the server's "opened": size, etag...
    this.hex = null; // null: decide from the first page
    this.rows = []; // text: {offset, length, text}; hex: computed from `bytes`
    this.bytes = []; // hex mode: [{offset, data}]
    this.start = 0; // byte offset of the window's first row
    this.end = 0; // byte offset after the last byte consumed
    this.carry = new Uint8Array(0); // text: bytes of an unterminated last line
    this.firstLine = 1; // line number of rows[0], or null when unknown (after a jump)
    this.stream = null;
    this.paused = false;
    this.stopped = false;
    this.closed = false;
    this.atEnd = false;
    this.follow = false; // keep the view at the bottom and read on (tail)
    this.wake = null;
    this.rate = 0;
    this.lastTick = null;
    this.matches = [];
    this.matchIndex = -1;
    this.query = "";
    this.generation = 0;
    this.rowHeight = 0;
  }

  // -------- lifecycle

  async load(offset = 0) {
    this.generation++;
    const generation = this.generation;
    if (this.stream) this.stream.cancel();
    this.stream = null;
    this.rows = [];
    this.bytes = [];
    this.carry = new Uint8Array(0);
    this.atEnd = false;
    this.start = offset;
    this.end = offset;
    this.firstLine = offset === 0 ? 1 : null;
    this.skipPartial = offset !== 0; // a jump lands mid-line: drop up to the first newline
    this.matches = [];
    this.render(true);
    await this.readForward(generation);
  }

  close() {
    this.closed = true;
    this.generation++;
    if (this.stream) this.stream.cancel();
    this.stream = null;
    this.kick();
  }

  connectionLost() {
    this.stream = null;
    this.kick();
  }

  reconnected() {
    if (this.closed || this.atEnd || this.stopped) return;
    // Resume exactly after the last consumed byte, of the same version.
    this.readForward(this.generation);
  }

  kick() {
    if (this.wake) { const w = this.wake; this.wake = null; w(); }
  }

  windowBytes() {
    return this.end - this.start;
  }

  // Reading stops (no acks) while paused, or while the window is full and
  // the reader is not at its bottom.  At the bottom (tail mode) the top of
  // the window is dropped instead, so reading goes on.
  mayRead() {
    if (this.paused || this.closed || this.stopped) return false;
    if (this.windowBytes() < WINDOW_BYTES) return true;
    if (this.follow || this.nearBottom()) {
      this.trimTop(this.windowBytes() - WINDOW_BYTES + BACK_FETCH);
      return true;
    }
    return false;
  }

  async readForward(generation) {
    let session;
    try {
      session = await ensureSession();
    } catch (error) {
      return showMessage(describeError(error));
    }
    if (generation !== this.generation || this.closed) return;
    const live = this.live;
    const stream = session.pages(this.path, {
      offset: this.end, pageSize: PAGE_SIZE, follow: live, text: live,
      // A follower accepts a file that grew; a plain reader insists on the version it started.
      ifMatch: this.info && !live ? this.info.etag : null,
    });
    this.stream = stream;
    try {
      const opened = await stream.opened;
      if (!this.info) this.info = opened;
      this.updateProgress();
      for await (const item of stream) {
        if (generation !== this.generation) return;
        if (item.kind === "page") this.append(item.offset, item.data);
        else if (item.kind === "event") this.liveEvent(item);
        this.tick(item.kind === "page" ? item.data.length : 0);
        this.render();
        while (!this.mayRead()) {
          if (generation !== this.generation) return;
          this.updateProgress();
          await new Promise((r) => { this.wake = r; });
        }
      }
      if (generation !== this.generation) return;
      this.finishText();
      this.atEnd = true;
      this.stream = null;
      this.render();
      this.updateProgress();
    } catch (error) {
      if (generation !== this.generation) return;
      this.stream = null;
      if (error instanceof ConnectionClosedError) return; // reconnected() resumes
      if (error.code === "file_changed") {
        showMessage(`${describeError(error)} Reload to see the new version.`);
      } else {
        showMessage(describeError(error));
      }
      this.updateProgress();
    }
  }

  tick(bytes) {
    const now = performance.now();
    if (this.lastTick !== null) {
      const dt = (now - this.lastTick) / 1000;
      if (dt > 0) this.rate = 0.8 * this.rate + 0.2 * (bytes / dt);
    }
    this.lastTick = now;
    if (!this.progressTimer) {
      this.progressTimer = setTimeout(() => { this.progressTimer = null; this.updateProgress(); }, 100);
    }
  }

  // -------- the window's content

  append(offset, data) {
    if (this.hex === null) {
      this.hex = el.hex.checked || looksBinary(data);
      el.hex.checked = this.hex;
    }
    this.end = offset + data.length;
    if (this.hex) {
      this.bytes.push({ offset, data });
      return;
    }
    let bytes = concat(this.carry, data);
    let base = offset - this.carry.length;
    if (this.skipPartial) {
      const nl = bytes.indexOf(10);
      if (nl === -1) { this.carry = new Uint8Array(0); this.start = this.end; return; }
      bytes = bytes.subarray(nl + 1);
      base += nl + 1;
      this.start = base;
      this.skipPartial = false;
    }
    const { lines, rest } = splitLines(bytes, base);
    for (const line of lines) this.rows.push(line);
    this.carry = rest.slice();
    if (this.query) this.searchNew(lines.length);
  }

  // A followed file was rotated, truncated or deleted: say so in the text.
  liveEvent(item) {
    this.finishText();
    const text = `──── ${item.detail || item.event} ────`;
    if (item.offset < this.end) {
      // Offsets start again (rotation, truncation): the window restarts with the new file,
      // headed by a marker row, so window arithmetic stays on one file's offsets.
      this.rows = [];
      this.bytes = [];
      this.matches = [];
      this.firstLine = null;
      this.start = item.offset;
    }
    if (!this.hex) this.rows.push({ offset: item.offset, length: 0, text, event: true });
    this.end = item.offset;
    this.eventCount = (this.eventCount || 0) + 1;
  }

  setLive(on) {
    this.live = on;
    this.follow = on;
    el.follow.setAttribute("aria-pressed", String(on));
    // Reopen from where reading stands, now with (or without) follow.
    this.generation++;
    if (this.stream) this.stream.cancel();
    this.stream = null;
    this.atEnd = false;
    if (on) this.scrollBottom();
    this.readForward(this.generation);
  }

  finishText() {
    if (!this.hex && this.carry.length) {
      this.rows.push({ offset: this.end - this.carry.length, length: this.carry.length, text: utf8.decode(this.carry) });
      this.carry = new Uint8Array(0);
    }
  }

  rowCount() {
    if (!this.hex) return this.rows.length + (this.carry.length ? 1 : 0);
    return Math.ceil((this.end - this.hexBase()) / 16);
  }

  hexBase() {
    return this.bytes.length ? this.bytes[0].offset - (this.bytes[0].offset % 16) : this.start;
  }

  hexRow(i) {
    const from = this.hexBase() + i * 16;
    const out = new Array(16).fill(null);
    for (const { offset, data } of this.bytes) {
      if (offset + data.length <= from || offset >= from + 16) continue;
      for (let k = 0; k < 16; k++) {
        const pos = from + k - offset;
        if (pos >= 0 && pos < data.length) out[k] = data[pos];
      }
    }
    return { offset: from, values: out };
  }

  trimTop(bytes) {
    const target = this.start + bytes;
    if (this.hex) {
      while (this.bytes.length > 1 && this.bytes[0].offset + this.bytes[0].data.length <= target) this.bytes.shift();
      this.start = this.bytes.length ? this.bytes[0].offset : this.end;
    } else {
      let drop = 0;
      while (drop < this.rows.length - 1 && this.rows[drop].offset + this.rows[drop].length <= target) drop++;
      if (!drop) return;
      this.rows.splice(0, drop);
      if (this.firstLine !== null) this.firstLine += drop;
      this.start = this.rows[0].offset;
      this.shiftMatches(-drop);
      el.lines.scrollTop = Math.max(0, el.lines.scrollTop - drop * this.rowHeight);
    }
  }

  // Scrolling above the window: fetch the bytes before it by offset.
  async fetchBefore() {
    if (this.fetchingBefore || this.start === 0 || this.hex || this.skipPartial) return;
    this.fetchingBefore = true;
    const generation = this.generation;
    try {
      const session = await ensureSession();
      const from = Math.max(0, this.start - BACK_FETCH);
      const data = await session.getAllPages(this.path, { offset: from, length: this.start - from, ifMatch: this.info && this.info.etag });
      if (generation !== this.generation) return;
      let bytes = data;
      let base = from;
      if (from > 0) {
        const nl = bytes.indexOf(10);
        if (nl === -1) return;
        bytes = bytes.subarray(nl + 1);
        base += nl + 1;
      }
      const { lines } = splitLines(bytes, base);
      this.rows.unshift(...lines);
      this.start = base;
      if (this.firstLine !== null) this.firstLine -= lines.length;
      if (base === 0) this.firstLine = 1;
      this.shiftMatches(lines.length);
      el.lines.scrollTop += lines.length * this.rowHeight;
      // Keep the window bounded: drop the bottom and read it again later.
      if (this.windowBytes() > WINDOW_BYTES + BACK_FETCH) this.trimBottom();
      this.render(true);
    } catch (error) {
      showMessage(describeError(error));
    } finally {
      this.fetchingBefore = false;
    }
  }

  trimBottom() {
    const limit = this.start + WINDOW_BYTES;
    let keep = this.rows.length;
    while (keep > 1 && this.rows[keep - 1].offset + this.rows[keep - 1].length > limit) keep--;
    this.rows.length = keep;
    this.matches = this.matches.filter((i) => i < keep);
    this.end = this.rows[keep - 1].offset + this.rows[keep - 1].length;
    this.carry = new Uint8Array(0);
    this.atEnd = false;
    // The forward stream no longer matches the window's end: restart it there when needed.
    this.generation++;
    if (this.stream) this.stream.cancel();
    this.stream = null;
    this.needForward = true;
  }

  nearBottom() {
    const box = el.lines;
    return box.scrollTop + box.clientHeight >= box.scrollHeight - 4 * (this.rowHeight || 18);
  }

  // -------- jumps

  jumpTo(offset) {
    const size = this.info ? this.info.size : 0;
    offset = Math.max(0, Math.min(offset, size));
    this.follow = false;
    if (offset >= this.start && offset < this.end && !this.hex) {
      this.scrollToOffset(offset);
      return;
    }
    this.pendingScroll = offset;
    // Start a little before the target so that the line containing it is
    // complete (the first, partial line of a jump is dropped).
    const from = this.hex ? offset - (offset % 16) : Math.max(0, offset - 4096);
    this.load(from).catch(() => {});
  }

  jumpBottom() {
    const size = this.info ? this.info.size : 0;
    this.follow = true;
    if (size - this.start <= WINDOW_BYTES && this.start <= size) {
      this.scrollBottom();
      this.kick();
      return;
    }
    const from = this.hex ? size - (size % 16) - (BACK_FETCH - (BACK_FETCH % 16)) : size - BACK_FETCH;
    this.pendingScroll = "bottom";
    this.load(Math.max(0, from)).catch(() => {});
  }

  scrollBottom() {
    el.lines.scrollTop = el.lines.scrollHeight;
    this.render();
  }

  scrollToOffset(offset) {
    let row;
    if (this.hex) {
      row = Math.floor((offset - this.hexBase()) / 16);
    } else {
      let lo = 0;
      let hi = this.rows.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (this.rows[mid].offset <= offset) lo = mid; else hi = mid - 1;
      }
      row = lo;
    }
    el.lines.scrollTop = Math.max(0, row) * this.rowHeight;
    this.render(true);
  }

  // -------- search within the loaded window

  setQuery(query) {
    this.query = query.toLowerCase();
    this.matches = [];
    this.matchIndex = -1;
    if (this.query && !this.hex) {
      this.rows.forEach((row, i) => { if (row.text.toLowerCase().includes(this.query)) this.matches.push(i); });
    }
    this.render(true);
  }

  searchNew(count) {
    for (let i = this.rows.length - count; i < this.rows.length; i++) {
      if (this.rows[i].text.toLowerCase().includes(this.query)) this.matches.push(i);
    }
  }

  shiftMatches(delta) {
    this.matches = this.matches.map((i) => i + delta).filter((i) => i >= 0);
    if (this.matchIndex >= this.matches.length) this.matchIndex = this.matches.length - 1;
  }

  step(direction) {
    if (!this.matches.length) return this.render(true);
    this.matchIndex = (this.matchIndex + direction + this.matches.length) % this.matches.length;
    const row = this.matches[this.matchIndex];
    el.lines.scrollTop = Math.max(0, row - 3) * this.rowHeight;
    this.render(true);
  }

  // -------- drawing

  measure() {
    if (this.rowHeight) return;
    const probe = document.createElement("div");
    probe.className = "row";
    probe.textContent = "0";
    el.rows.append(probe);
    this.rowHeight = probe.getBoundingClientRect().height || 18;
    probe.remove();
  }

  render(force = false) {
    if (this.closed) return;
    if (!force) {
      if (this.renderQueued) return;
      this.renderQueued = true;
      requestAnimationFrame(() => { this.renderQueued = false; this.render(true); });
      return;
    }
    this.measure();
    const count = this.rowCount();
    const wasBottom = this.follow || this.nearBottom();
    el.spacer.style.height = `${count * this.rowHeight}px`;
    if (this.pendingScroll !== undefined && count) {
      const target = this.pendingScroll;
      this.pendingScroll = undefined;
      if (target === "bottom") el.lines.scrollTop = el.lines.scrollHeight;
      else this.scrollToOffset(target);
    } else if (wasBottom && this.follow) {
      el.lines.scrollTop = el.lines.scrollHeight;
    }
    const first = Math.max(0, Math.floor(el.lines.scrollTop / this.rowHeight) - OVERSCAN);
    const last = Math.min(count, Math.ceil((el.lines.scrollTop + el.lines.clientHeight) / this.rowHeight) + OVERSCAN);
    const fragment = document.createDocumentFragment();
    const current = this.matches[this.matchIndex];
    const gutterWidth = String(this.gutterLabel(count - 1)).length;
    for (let i = first; i < last; i++) {
      const row = document.createElement("div");
      row.className = "row";
      const gutter = document.createElement("span");
      gutter.className = "gutter";
      gutter.textContent = String(this.gutterLabel(i)).padStart(gutterWidth);
      const text = document.createElement("span");
      text.className = "text";
      if (this.hex) this.drawHex(text, i);
      else this.drawText(text, i, i === current);
      row.append(gutter, text);
      if (i === current) row.classList.add("current");
      if (!this.hex && this.rows[i] && this.rows[i].event) row.classList.add("event");
      fragment.append(row);
    }
    el.rows.style.transform = `translateY(${first * this.rowHeight}px)`;
    el.rows.replaceChildren(fragment);
    el.searchCount.textContent = this.query
      ? `${this.matches.length ? this.matchIndex + 1 : 0}/${this.matches.length} in loaded text` : "";
  }

  gutterLabel(i) {
    if (this.hex) return (this.hexBase() + i * 16).toString(16).padStart(8, "0");
    if (this.firstLine !== null) return this.firstLine + i;
    const row = this.rows[i];
    return row ? `@${row.offset}` : "";
  }

  drawText(span, i) {
    const row = this.rows[i];
    let text = row ? row.text : utf8.decode(this.carry);
    if (text.length > MAX_LINE_CHARS) text = text.slice(0, MAX_LINE_CHARS) + ` … (${text.length - MAX_LINE_CHARS} more characters)`;
    if (!this.query) { span.textContent = text; return; }
    const lower = text.toLowerCase();
    let pos = 0;
    for (let hit = lower.indexOf(this.query); hit !== -1; hit = lower.indexOf(this.query, pos)) {
      span.append(text.slice(pos, hit));
      const mark = document.createElement("mark");
      mark.textContent = text.slice(hit, hit + this.query.length);
      span.append(mark);
      pos = hit + this.query.length;
    }
    span.append(text.slice(pos));
  }

  drawHex(span, i) {
    const { values } = this.hexRow(i);
    let hexPart = "";
    let ascii = "";
    values.forEach((v, k) => {
      hexPart += (v === null ? "  " : v.toString(16).padStart(2, "0")) + (k === 7 ? "  " : " ");
      ascii += v === null ? " " : v >= 32 && v < 127 ? String.fromCharCode(v) : "·";
    });
    span.textContent = `${hexPart} ${ascii}`;
  }

  updateProgress() {
    const size = this.info ? this.info.size : null;
    const done = this.end;
    const pct = size ? (100 * done) / size : null;
    el.meterFill.style.width = `${pct === null ? 100 : Math.min(100, pct)}%`;
    if (size) {
      el.meterWindow.style.left = `${(100 * this.start) / size}%`;
      el.meterWindow.style.width = `${(100 * (this.end - this.start)) / size}%`;
    }
    const parts = [pct === null ? `${humanBytes(done)} received`
      : `${humanBytes(done)} of ${humanBytes(size)} (${pct.toFixed(pct < 10 ? 1 : 0)}%)`];
    let state;
    if (this.live && !this.paused) state = `following live · ${humanBytes(this.rate)}/s`;
    else if (this.atEnd) state = "complete";
    else if (this.paused) state = "paused — no acknowledgements, so the server has stopped sending";
    else if (this.stopped) state = "stopped";
    else if (!this.stream) state = app.session ? "idle" : "waiting for the connection";
    else if (this.windowBytes() >= WINDOW_BYTES && !this.nearBottom()) state = "window full — scroll down to read on";
    else {
      state = `${humanBytes(this.rate)}/s`;
      if (size && this.rate > 0) state += `, ETA ${humanTime((size - done) / this.rate)}`;
    }
    parts.push(state);
    if (this.start > 0) parts.push(`showing bytes ${this.start}–${this.end}`);
    el.progress.textContent = parts.join(" · ");
    el.pause.textContent = this.paused ? "Resume" : "Pause";
    el.pause.setAttribute("aria-pressed", String(this.paused));
  }
}

// ------------------------------------------------------------------ controls

function doc() {
  return app.doc;
}

el.pause.addEventListener("click", () => togglePause());
function togglePause() {
  const d = doc();
  if (!d) return;
  d.paused = !d.paused;
  if (!d.paused) {
    if (d.stopped || (!d.stream && !d.atEnd)) { d.stopped = false; d.readForward(d.generation); }
    d.kick();
  }
  d.updateProgress();
}

el.cancel.addEventListener("click", () => {
  const d = doc();
  if (!d) return;
  d.stopped = true;
  d.generation++;
  if (d.stream) d.stream.cancel();
  d.stream = null;
  d.kick();
  d.updateProgress();
});

el.top.addEventListener("click", () => doc() && doc().jumpTo(0));
el.bottom.addEventListener("click", () => doc() && doc().jumpBottom());
el.follow.addEventListener("click", () => doc() && doc().setLive(!doc().live));

el.jump.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const d = doc();
  if (!d || !d.info) return;
  const value = el.jumpTo.value.trim();
  const size = d.info.size || 0;
  const offset = value.endsWith("%") ? Math.floor((parseFloat(value) / 100) * size) : parseInt(value, 10);
  if (!Number.isFinite(offset)) return showMessage("Jump to a percentage (50%) or a byte offset (123456).", "info");
  d.jumpTo(offset);
});

el.search.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const d = doc();
  if (!d) return;
  if (el.searchText.value.toLowerCase() !== d.query) d.setQuery(el.searchText.value);
  d.step(1);
});
el.searchPrev.addEventListener("click", () => {
  const d = doc();
  if (!d) return;
  if (el.searchText.value.toLowerCase() !== d.query) d.setQuery(el.searchText.value);
  d.step(-1);
});

el.hex.addEventListener("change", () => {
  const d = doc();
  if (!d) return;
  const offset = d.start;
  d.hex = el.hex.checked;
  d.load(offset - (offset % 16)).catch(() => {});
});

el.lines.addEventListener("scroll", () => {
  const d = doc();
  if (!d) return;
  if (!d.nearBottom()) d.follow = false;
  d.render();
  if (el.lines.scrollTop < 20 * (d.rowHeight || 18)) d.fetchBefore();
  if (d.needForward && d.nearBottom()) {
    d.needForward = false;
    d.readForward(d.generation);
  }
  d.kick(); // reading may go on now that the view moved
});

document.addEventListener("keydown", (ev) => {
  const typing = ev.target instanceof HTMLInputElement || ev.target instanceof HTMLTextAreaElement;
  if (ev.key === "Escape") { ev.target.blur && ev.target.blur(); return; }
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey || !doc()) return;
  if (ev.key === " ") { ev.preventDefault(); togglePause(); }
  else if (ev.key === "/") { ev.preventDefault(); el.searchText.focus(); el.searchText.select(); }
  else if (ev.key === "g") doc().jumpTo(0);
  else if (ev.key === "G") doc().jumpBottom();
  else if (ev.key === "F") doc().setLive(!doc().live);
  else if (ev.key === "n") doc().step(1);
  else if (ev.key === "N") doc().step(-1);
});

window.addEventListener("hashchange", () => route());

// A small read-only hook for tests and curious users (window.pagebridgeViewer).
window.pagebridgeViewer = {
  state() {
    const d = doc();
    return d ? {
      path: d.path, start: d.start, end: d.end, rows: d.rowCount(), hex: d.hex, paused: d.paused,
      atEnd: d.atEnd, firstLine: d.firstLine, matches: d.matches.length, size: d.info && d.info.size,
      live: Boolean(d.live), events: d.eventCount || 0,
      status: el.status.dataset.state,
    } : { status: el.status.dataset.state };
  },
  lines() {
    const d = doc();
    return d && !d.hex ? d.rows.map((r) => r.text) : [];
  },
  visibleText() {
    return [...el.rows.querySelectorAll(".row")].map((r) => r.textContent);
  },
  topRow() {
    const d = doc();
    const i = Math.round(el.lines.scrollTop / (d.rowHeight || 18));
    return { gutter: String(d.gutterLabel(i)), text: d.hex ? null : (d.rows[i] || {}).text, offset: d.hex ? d.hexBase() + 16 * i : (d.rows[i] || {}).offset };
  },
  jumpTo(offset) { doc().jumpTo(offset); },
  PagebridgeError,
};

route();
