// The pagebridge viewer: a folder list, and a file view that stays small in
// memory and correct however large, fast-growing or rotated the file.
//
// The parts (each in its own module):
//   model.js    the document: what is held, rows and line numbers, follow/pause, wanted reads (no DOM)
//   reader.js   runs the model's reads on the collector session
//   view.js     draws the model; turns wheel, keys, touch and the gauge into model actions
//   search.js   search across the whole file (the server's scan) or the loaded part, and the filter
//   route.js    the URL fragment: #/path, #/path:120, #/path:end
//   viewer.js   this file: the connection, routing and history, the folder list, the tools

import { connect, errorText, PagebridgeError } from "./collector.js";
import { FilterModel } from "./filter.js";
import { DocModel, readingState } from "./model.js";
import { Reader } from "./reader.js";
import { formatHash, parseHash, parseJump } from "./route.js";
import { Search } from "./search.js";
import { DocView, humanBytes, Settings } from "./view.js";

const $ = (id) => document.getElementById(id);
const el = {
  conn: $("conn"), crumbs: $("crumbs"), banner: $("banner"), bannerText: $("banner-text"), bannerAction: $("banner-action"),
  browser: $("browser"), entries: $("entries"), listingNote: $("listing-note"), viewer: $("viewer"),
  lines: $("lines"), rows: $("rows"), empty: $("empty"), gauge: $("gauge"), thumb: $("gauge-thumb"), band: $("gauge-band"),
  marks: $("gauge-marks"), status: $("status"),
  follow: $("follow"), pause: $("pause"), stop: $("stop"), top: $("top"), bottom: $("bottom"),
  jump: $("jump"), jumpTo: $("jump-to"), search: $("search"), searchText: $("search-text"),
  searchRegex: $("search-regex"), searchCase: $("search-case"), searchFilter: $("search-filter"),
  searchPrev: $("search-prev"), searchNext: $("search-next"), searchCount: $("search-count"),
  wrap: $("wrap"), json: $("json"), hex: $("hex"), fontSmaller: $("font-smaller"), fontBigger: $("font-bigger"),
  copy: $("copy"), download: $("download"), transfer: $("transfer"), transferBar: $("transfer-bar"),
  transferText: $("transfer-text"), transferCancel: $("transfer-cancel"),
  message: $("message"), messageText: $("message-text"), messageClose: $("message-close"), pageMessage: $("page-message"),
  tokenDialog: $("token-dialog"), tokenInput: $("token-input"), tokenRemember: $("token-remember"), tokenTitle: $("token-title"),
  help: $("help"), helpButton: $("help-button"),
};

const TOKEN_KEY = "pagebridge-token";
const RETRY_MS = [500, 1000, 2000, 4000, 8000];

function describeError(error) {
  const code = error.code || "internal";
  return `${errorText(error)} (${code}: ${error.message})`;
}

// ------------------------------------------------------------------ the connection

/** One WebSocket session at a time; reconnects with a visible countdown; asks for a token when needed. */
const conn = {
  session: null,
  token: sessionStorage.getItem(TOKEN_KEY),
  connecting: null,
  attempt: 0,
  retryAt: null,
  retryNow: null,
  tokenWaiter: null,
  listeners: new Set(), // (session|null) => void

  set(state, text) {
    el.conn.dataset.state = state;
    el.conn.textContent = text;
  },

  async ensure() {
    if (this.session && this.session.open) return this.session;
    if (!this.connecting) this.connecting = this.loop().finally(() => { this.connecting = null; });
    return this.connecting;
  },

  async loop() {
    for (;;) {
      this.set("connecting", "connecting…");
      try {
        const session = await connect("/ws", { token: this.token });
        session.onclose = () => this.lost(session);
        this.session = session;
        this.attempt = 0;
        this.set("connected", "connected");
        banner(null);
        for (const fn of this.listeners) fn(session);
        return session;
      } catch (error) {
        if (error.code === "unauthorized") {
          this.set("error", "token needed");
          this.token = await this.askToken(this.token ? "That token was refused. Try again:" : "This server needs a token.");
          continue;
        }
        await this.wait(RETRY_MS[Math.min(this.attempt++, RETRY_MS.length - 1)]);
      }
    }
  },

  /** Offline: a banner counts down to the next attempt; "Retry now" skips the wait. */
  wait(ms) {
    this.retryAt = performance.now() + ms;
    return new Promise((resolve) => {
      const tick = () => {
        const left = Math.max(0, this.retryAt - performance.now());
        const secs = Math.ceil(left / 1000);
        this.set("offline", "offline");
        banner(`Offline: the server cannot be reached. Retrying in ${secs} s…`, "offline", "Retry now", () => done());
        if (left <= 0) done();
      };
      const timer = setInterval(tick, 250);
      const done = () => { clearInterval(timer); this.retryNow = null; resolve(); };
      this.retryNow = done;
      tick();
    });
  },

  lost(session) {
    if (this.session !== session) return;
    this.session = null;
    for (const fn of this.listeners) fn(null);
    this.set("offline", "offline");
    this.ensure().catch(() => {});
  },

  /** The token prompt; "Not now" leaves a banner to open it again.  Remembered per tab when asked. */
  askToken(note) {
    return new Promise((resolve) => {
      el.tokenTitle.textContent = note;
      el.tokenInput.value = "";
      el.tokenDialog.returnValue = "";
      el.tokenDialog.showModal();
      el.tokenDialog.addEventListener("close", () => {
        if (el.tokenDialog.returnValue !== "ok") {
          banner("This server needs a token.", "token", "Enter token", () => { banner(null); resolve(this.askToken(note)); });
          return;
        }
        const token = el.tokenInput.value;
        if (el.tokenRemember.checked) sessionStorage.setItem(TOKEN_KEY, token);
        else sessionStorage.removeItem(TOKEN_KEY);
        resolve(token);
      }, { once: true });
    });
  },
};

function banner(text, kind = "info", actionText = null, action = null) {
  el.banner.hidden = !text;
  if (!text) return;
  el.banner.dataset.kind = kind;
  el.bannerText.textContent = text;
  el.bannerAction.hidden = !actionText;
  el.bannerAction.textContent = actionText || "";
  el.bannerAction.onclick = action;
}

// ------------------------------------------------------------------ routing and history

const app = {
  file: null, // the open FileView
  shownHash: null, // the fragment we last wrote or routed
  settings: new Settings(localStorage),
};

function route() {
  const hash = location.hash || "#/";
  if (hash === app.shownHash) return;
  app.shownHash = hash;
  const r = parseHash(hash);
  if (!r.folder && app.file && app.file.path === r.path) {
    app.file.goTo(r); // back/forward within one file: move, do not reopen
    return;
  }
  if (app.file) { app.file.close(); app.file = null; }
  pageMessage(null);
  if (r.folder) return showFolder(r.path);
  return showFile(r);
}

window.addEventListener("hashchange", route);
window.addEventListener("popstate", route);

/** Write the fragment for what is on screen: a new history entry for a jump, a replacement otherwise. */
function setHash(hash, push) {
  if (hash === location.hash || (hash === "#/" && !location.hash)) { app.shownHash = hash; return; }
  app.shownHash = hash;
  if (push) history.pushState(null, "", hash);
  else history.replaceState(null, "", hash);
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
    a.href = formatHash(parts.slice(0, i + 1).join("/") + (dir ? "/" : ""));
    a.textContent = part + (dir ? "/" : "");
    el.crumbs.append(a);
  });
}

function pageMessage(text) {
  el.pageMessage.hidden = !text;
  el.pageMessage.textContent = text || "";
}

// ------------------------------------------------------------------ folders

async function showFolder(path) {
  renderCrumbs(path, true);
  el.viewer.hidden = true;
  el.browser.hidden = false;
  document.title = `pagebridge — /${path}`;
  let entries;
  try {
    const session = await conn.ensure();
    entries = await session.list(path.replace(/\/$/, ""));
  } catch (error) {
    el.entries.replaceChildren();
    return pageMessage(describeError(error));
  }
  if (app.file || parseHash(location.hash || "#/").path !== path) return; // the reader moved on
  const rows = entries.map((e) => {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    const a = document.createElement("a");
    const dir = e.kind === "dir";
    a.href = formatHash(path + e.name + (dir ? "/" : ""));
    a.textContent = e.name + (dir ? "/" : "");
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
    const td = document.createElement("td");
    td.colSpan = 3;
    td.className = "muted";
    td.textContent = "empty folder";
    tr.append(td);
    rows.push(tr);
  }
  el.entries.replaceChildren(...rows);
  const first = el.entries.querySelector("a");
  if (first) first.focus({ preventScroll: true });
}

// ------------------------------------------------------------------ a file

function showFile(r) {
  renderCrumbs(r.path, false);
  el.browser.hidden = true;
  el.viewer.hidden = false;
  document.title = `pagebridge — ${r.path.split("/").pop()}`;
  app.file = new FileView(r);
}

/** A file on screen: its model, the reader feeding it, the view drawing it, its search and filter. */
class FileView {
  constructor(r) {
    this.path = r.path;
    this.doc = new DocModel(r.path, { lineIndex: false });
    this.docReader = new Reader(this.doc);
    this.filter = null; // a FilterModel while only matching lines are shown
    this.filterReader = null;
    this.view = this.makeView(this.doc, this.docReader);
    this.search = new Search(this, (s) => this.searchChanged(s));
    this.pushNext = false;
    this.lastError = null;
    this.tick = setInterval(() => this.doc.dispatch({ type: "tick" }), 3000);
    this.onSession = (session) => this.sessionChanged(session);
    conn.listeners.add(this.onSession);
    // Nothing carries over from the previous file but the reader's own settings.
    el.jumpTo.value = "";
    el.searchText.value = "";
    el.searchFilter.setAttribute("aria-pressed", "false");
    this.search.reset();
    this.searchChanged();
    message(null);
    this.initial = r; // applied once the session says whether the server has a line index
    el.lines.focus({ preventScroll: true });
    conn.ensure().then((session) => { if (!this.closed && conn.session === session) this.sessionChanged(session); }).catch(() => {});
  }

  /** The model on screen: the filter while it is on, else the document. */
  get model() { return this.filter || this.doc; }
  get reader() { return this.filter ? this.filterReader : this.docReader; }

  makeView(model, reader) {
    return new DocView(model, {
      lines: el.lines, rows: el.rows, gauge: el.gauge, thumb: el.thumb, band: el.band, marks: el.marks, status: el.status,
      follow: el.follow, pause: el.pause, hex: el.hex, wrap: el.wrap, json: el.json,
    }, {
      settings: app.settings, reader,
      onChange: () => this.changed(),
      onCutMore: (row) => {
        this.navigate({ type: "hex", on: true });
        this.navigate({ type: "jump", offset: row.offset + row.bytes.length });
      },
      onPick: (row) => this.pick(row),
    });
  }

  /** Filter mode on or off (on: only the lines matching the search box's pattern). */
  toggleFilter() {
    if (this.filter) return this.closeFilter();
    const [pattern, options] = searchQuery();
    if (!pattern) return message("Type what the lines must contain first (the search box), then Filter.", "info");
    if (options.regex) {
      try { new RegExp(pattern); } catch (e) { return message(`Invalid pattern: ${e.message}`); }
    }
    this.search.set(pattern, options);
    this.filter = new FilterModel(this.path, { pattern, ...options }, { follow: this.doc.follow, size: this.doc.size });
    this.filterReader = new Reader(this.filter);
    this.view.close();
    this.view = this.makeView(this.filter, this.filterReader);
    this.view.setSearch(this.search.query, null);
    el.searchFilter.setAttribute("aria-pressed", "true");
    if (this.session && conn.session === this.session) {
      this.filterReader.attach(this.session);
      this.filter.dispatch({ type: "connected" });
    }
    el.lines.focus({ preventScroll: true });
  }

  closeFilter() {
    if (!this.filter) return;
    this.filterReader.close();
    this.view.close();
    this.filter = null;
    this.filterReader = null;
    this.view = this.makeView(this.doc, this.docReader);
    this.searchChanged();
    el.searchFilter.setAttribute("aria-pressed", "false");
  }

  /** A row of the filter clicked: the whole file at that line. */
  pick(row) {
    this.closeFilter();
    if (row.version !== this.doc.version) return;
    this.navigate({ type: "jump", offset: row.offset, line: row.line });
    el.lines.focus({ preventScroll: true });
  }

  close() {
    this.closed = true;
    conn.listeners.delete(this.onSession);
    clearInterval(this.tick);
    this.search.close();
    if (this.filterReader) this.filterReader.close();
    this.docReader.close();
    this.view.close();
    message(null);
  }

  sessionChanged(session) {
    if (this.closed) return;
    const models = [[this.doc, this.docReader], ...(this.filter ? [[this.filter, this.filterReader]] : [])];
    if (!session) { for (const [m] of models) m.dispatch({ type: "disconnected" }); return; }
    if (this.doc.connected && this.docReader.session === session) return;
    this.doc.lineIndex = typeof session.locate === "function";
    this.search.sessionChanged(session);
    this.session = session;
    if (this.initial) { this.goTo(this.initial, { initial: true }); this.initial = null; }
    for (const [m, reader] of models) {
      reader.attach(session);
      if (m.connected) m.dispatch({ type: "disconnected" });
      m.dispatch({ type: "connected" });
    }
  }

  /** A position named by the URL: the top, a line (highlighted), or the end (following). */
  goTo(r, { initial = false } = {}) {
    this.closeFilter();
    if (r.end) this.doc.dispatch({ type: "follow", on: true });
    else if (r.line) this.doc.dispatch({ type: "jump", line: r.line });
    else if (!initial) this.doc.dispatch({ type: "home" });
  }

  /** The text of a range of lines (points from the view's selection): from what is held, or read again. */
  async textOf({ from, to }) {
    const dec0 = new TextDecoder();
    if (this.filter) {
      // Filter mode: the selected matching lines (as shown: a long line's text is its start).
      return this.filter.rows.filter((r) => !r.event && r.version === from.version && r.offset >= from.offset && r.offset <= to.offset)
        .map((r) => dec0.decode(r.bytes)).join("\n");
    }
    const m = this.model;
    const i = m.rowOf(from.offset, from.version);
    const j = m.rowOf(to.offset, to.version);
    const dec = new TextDecoder();
    if (i >= 0 && j >= 0 && m.row(i).offset === from.offset && m.row(j).offset === to.offset) {
      const out = [];
      for (let k = i; k <= j; k++) {
        const r = m.row(k);
        if (!r.event) out.push(dec.decode(r.bytes).replace(/\r$/, ""));
      }
      return out.join("\n");
    }
    if (from.version !== m.version) throw new PagebridgeError("file_changed", "those lines belong to an earlier version of the file");
    const length = to.end - from.offset;
    if (length > 64 << 20) throw new PagebridgeError("bad_request", "select at most 64 MiB to copy");
    const session = await conn.ensure();
    const bytes = await session.getAllPages(this.path, { offset: from.offset, length });
    return dec.decode(bytes).replace(/\r?\n$/, "").replace(/\r\n/g, "\n");
  }

  /** A navigation by the reader: a new history entry once the position is known. */
  navigate(action) {
    this.pushNext = true;
    this.view.shift = 0;
    this.model.dispatch(action);
  }

  changed() {
    const m = this.model;
    if (m.phase === "failed" && m.error && this.lastError !== m.error) {
      this.lastError = m.error;
      message(describeError(m.error));
    }
    if (m.notice && m.notice !== this.shownNotice) {
      this.shownNotice = m.notice;
      if (m.notice.kind === "error") message(m.notice.text);
      else if (m.notice.kind === "changed") message(m.notice.text, "info");
    }
    const state = stateOf(m);
    el.empty.hidden = !(m.phase === "open" && m.rowCount === 0 && !["reading", "filtering", "filter-following"].includes(state));
    el.empty.textContent = m.kind === "filter" ? (state === "filtering" ? "No matching line yet…" : "No line matches.")
      : m.deleted ? "The file was deleted." : "This file is empty.";
    this.syncHash();
  }

  /** The fragment follows what is on screen (replaced as one scrolls, pushed after a jump). */
  syncHash() {
    if (this.filter) return; // filter mode is not a position in the file
    const m = this.doc;
    if (m.phase !== "open" || (m.want && m.want.kind === "line")) return;
    let hash;
    if (m.follow) hash = formatHash(this.path, { end: true });
    else {
      const row = m.row(m.top);
      const line = row && !row.event && row.line !== null && row.version === m.version ? row.line : null;
      if (m.mode === "hex" || line === null) {
        if (!this.pushNext) return; // a position the fragment cannot name yet: leave it
        hash = formatHash(this.path);
      } else {
        hash = formatHash(this.path, { line: line > 1 ? line : null });
      }
    }
    const push = this.pushNext;
    this.pushNext = false;
    const now = Date.now();
    if (!push && hash !== location.hash && now - (this.hashAt || 0) < 250) {
      clearTimeout(this.hashTimer);
      this.hashTimer = setTimeout(() => this.syncHash(), 260);
      return;
    }
    this.hashAt = now;
    setHash(hash, push);
  }

  searchChanged() {
    this.view.setSearch(this.search.query, this.filter ? null : this.search.current);
    this.view.setMarks(this.filter ? [] : this.search.marks());
    el.searchCount.textContent = this.search.label();
    el.searchCount.dataset.state = this.search.state;
  }
}

// ------------------------------------------------------------------ messages

function message(text, kind = "error") {
  el.message.hidden = !text;
  el.message.dataset.kind = kind;
  el.messageText.textContent = text || "";
}
el.messageClose.addEventListener("click", () => { message(null); if (app.file) app.file.model.dispatch({ type: "dismiss" }); });

// ------------------------------------------------------------------ tools

const file = () => app.file;
const stateOf = (m) => (m.readingState ? m.readingState() : readingState(m));
const act = (action) => { const f = file(); if (f) f.navigate(action); };

el.follow.addEventListener("click", () => act({ type: "follow" }));
el.pause.addEventListener("click", () => { const f = file(); if (f) f.model.dispatch({ type: f.model.flow === "running" ? "pause" : "resume" }); });
el.stop.addEventListener("click", () => { const f = file(); if (f) f.model.dispatch({ type: "stop" }); });
el.top.addEventListener("click", () => act({ type: "home" }));
el.bottom.addEventListener("click", () => act({ type: "end" }));
el.hex.addEventListener("change", () => act({ type: "hex", on: el.hex.checked }));
el.wrap.addEventListener("click", () => file() && file().view.toggleWrap());
el.json.addEventListener("click", () => file() && file().view.toggleJson());
el.fontSmaller.addEventListener("click", () => file() && file().view.fontBigger(-1));
el.fontBigger.addEventListener("click", () => file() && file().view.fontBigger(1));
el.copy.addEventListener("click", () => copySelection());
$("more").addEventListener("click", (ev) => {
  const tools = ev.currentTarget.closest(".tools");
  const open = tools.classList.toggle("more");
  ev.currentTarget.setAttribute("aria-expanded", String(open));
});
el.download.addEventListener("click", () => download());

function searchQuery() {
  return [el.searchText.value, {
    regex: el.searchRegex.getAttribute("aria-pressed") === "true",
    ignoreCase: el.searchCase.getAttribute("aria-pressed") !== "true",
  }];
}
el.search.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = file();
  if (!f) return;
  if (f.filter) {
    // Filtering: a new pattern filters again.
    const [pattern, options] = searchQuery();
    const q = f.filter.query;
    if (pattern !== q.pattern || options.regex !== q.regex || options.ignoreCase !== q.ignoreCase) { f.closeFilter(); if (pattern) f.toggleFilter(); }
    return;
  }
  const changed = f.search.set(...searchQuery());
  if (!changed || f.search.state !== "error") f.search.step(1);
});
el.searchPrev.addEventListener("click", () => {
  const f = file();
  if (!f) return;
  f.search.set(...searchQuery());
  f.search.step(-1);
});
for (const toggle of [el.searchRegex, el.searchCase]) {
  toggle.addEventListener("click", () => {
    toggle.setAttribute("aria-pressed", String(toggle.getAttribute("aria-pressed") !== "true"));
    const f = file();
    if (f && el.searchText.value) f.search.set(...searchQuery());
  });
}
el.searchFilter.addEventListener("click", () => {
  const f = file();
  if (!f) return;
  if (!f.filter && !f.search.wholeFile) return message("Showing only matching lines needs the server's scan (not available on this server).", "info");
  f.toggleFilter();
});
el.searchText.addEventListener("input", () => {
  const f = file();
  if (f && !el.searchText.value) f.search.set("");
});

el.jump.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = file();
  if (!f) return;
  const where = parseJump(el.jumpTo.value);
  if (where.error) return message(where.error, "info");
  message(null);
  f.navigate({ type: "jump", ...where, highlight: where.offset != null });
  el.lines.focus({ preventScroll: true });
});

// ------------------------------------------------------------------ copy and download

async function copySelection() {
  const f = file();
  if (!f) return;
  const range = f.view.selectedRange();
  if (!range) return message("Select lines first: click a line number, shift-click another.", "info");
  let text;
  try {
    text = await f.textOf(range);
  } catch (error) {
    return message(describeError(error));
  }
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard permission: the old way, through a selected text area.
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const lines = text ? text.split("\n").length : 0;
  message(`Copied ${lines} line${lines === 1 ? "" : "s"} (${humanBytes(new Blob([text]).size)}).`, "info");
}

/** The whole file through the collector (every page and the whole stream verified), with progress. */
async function download() {
  const f = file();
  if (!f || f.downloading) return;
  const path = f.path;
  const name = path.split("/").pop() || "download";
  let stream;
  let cancelled = false;
  f.downloading = true;
  el.transfer.hidden = false;
  el.transferBar.value = 0;
  el.transferText.textContent = "starting…";
  el.transferCancel.onclick = () => { cancelled = true; if (stream) stream.cancel(); };
  try {
    const session = await conn.ensure();
    // The end digest too: the user is told the whole file was verified.
    stream = session.pages(path, { pageSize: session.bulkPageSize, digest: true });
    const opened = await stream.opened;
    const total = opened.length;
    const parts = [];
    let batch = [];
    let batchBytes = 0;
    let got = 0;
    let shown = 0;
    for await (const item of stream) {
      if (item.kind !== "page") continue;
      batch.push(item.data);
      batchBytes += item.data.length;
      got += item.data.length;
      // Blobs of 8 MiB: the browser may keep them on disk, not in the tab.
      if (batchBytes >= 8 << 20) { parts.push(new Blob(batch)); batch = []; batchBytes = 0; }
      if (got - shown >= 1 << 20 || got === total) {
        shown = got;
        el.transferBar.value = total ? got / total : 0;
        el.transferText.textContent = `downloading ${humanBytes(got)}${total ? ` of ${humanBytes(total)}` : ""}`;
      }
    }
    if (cancelled) throw new PagebridgeError("cancelled", "the download was cancelled");
    parts.push(new Blob(batch));
    const blob = new Blob(parts, { type: "application/octet-stream" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
    el.transferText.textContent = `downloaded ${humanBytes(got)}, verified (XXH3 per page and for the whole file)`;
    el.transferBar.value = 1;
    window.pagebridgeViewer.lastDownload = { name, bytes: got, verified: true };
  } catch (error) {
    el.transferText.textContent = cancelled ? "download cancelled" : `download failed: ${describeError(error)}`;
    window.pagebridgeViewer.lastDownload = { name, error: error.code || "internal" };
  } finally {
    f.downloading = false;
    el.transferCancel.onclick = () => { el.transfer.hidden = true; };
    el.transferCancel.textContent = "Close";
    setTimeout(() => { if (!f.downloading) { el.transfer.hidden = true; el.transferCancel.textContent = "Cancel"; } }, 8000);
  }
}

// ------------------------------------------------------------------ keys

el.helpButton.addEventListener("click", () => el.help.showModal());

document.addEventListener("keydown", (ev) => {
  const target = ev.target;
  const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement;
  if (ev.key === "Escape") {
    if (typing) { target.blur(); el.lines.focus({ preventScroll: true }); return; }
    const f = file();
    if (f) { f.view.selection = null; f.view.drawn = null; f.model.dispatch({ type: "clearHighlight" }); }
    return;
  }
  if (ev.altKey && !ev.ctrlKey && !ev.metaKey && file()) {
    if (ev.key === "r" || ev.code === "KeyR") { ev.preventDefault(); el.searchRegex.click(); }
    else if (ev.key === "c" || ev.code === "KeyC") { ev.preventDefault(); el.searchCase.click(); }
    return;
  }
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey || el.help.open || el.tokenDialog.open) return;
  if (ev.key === "?") { ev.preventDefault(); el.help.showModal(); return; }
  const f = file();
  if (!f) return;
  const keys = {
    " ": () => el.pause.click(),
    f: () => f.navigate({ type: "follow" }),
    F: () => f.navigate({ type: "follow" }),
    g: () => f.navigate({ type: "home" }),
    G: () => f.navigate({ type: "end" }),
    "/": () => { el.searchText.focus(); el.searchText.select(); },
    ":": () => { el.jumpTo.focus(); el.jumpTo.select(); },
    n: () => f.search.step(1),
    N: () => f.search.step(-1),
    "&": () => el.searchFilter.click(),
    w: () => f.view.toggleWrap(),
    J: () => f.view.toggleJson(),
    x: () => f.navigate({ type: "hex" }),
    "+": () => f.view.fontBigger(1),
    "=": () => f.view.fontBigger(1),
    "-": () => f.view.fontBigger(-1),
    0: () => f.view.fontBigger(0),
    c: () => copySelection(),
    d: () => download(),
  };
  const fn = keys[ev.key];
  if (!fn) return;
  ev.preventDefault();
  fn();
});

// The text takes the keys of its own (PageUp, j/k...) through the view; a click on the pane focuses it.
el.lines.addEventListener("mousedown", (ev) => { if (!ev.target.closest("button")) setTimeout(() => { if (!getSelection().toString()) el.lines.focus({ preventScroll: true }); }); });

// ------------------------------------------------------------------ a read-only hook for tests and the curious

window.pagebridgeViewer = {
  state() {
    const f = file();
    if (!f) return { status: el.conn.dataset.state };
    const m = f.model;
    const c = m.content;
    const top = m.row(m.top);
    return {
      path: m.path, phase: m.phase, reading: stateOf(m), status: el.conn.dataset.state, filter: Boolean(f.filter),
      count: f.filter ? f.filter.count : null,
      start: c ? c.start : null, end: c ? c.end : null, held: m.held, rows: m.rowCount, top: m.top, height: m.height,
      pin: m.pin, size: m.size, lines: m.lines, version: m.version, hex: m.mode === "hex", mode: m.mode,
      paused: m.flow === "paused", flow: m.flow, follow: m.follow, atEnd: m.atEnd, deleted: m.deleted,
      firstLine: c && m.rowCount ? m.row(0).line : null, topLine: top ? top.line : null, topOffset: top ? top.offset : null,
      reads: [...m.reads.values()].map((r) => r.kind), events: c && c.chunks ? c.chunks.filter((k) => k.event).length : 0,
      matches: f.search.total, searching: f.search.state, hash: location.hash, notice: m.notice && m.notice.text,
    };
  },
  /** Every held row as text (text mode), with its line number: [[line, text], ...] (and its offset when asked). */
  rows(withOffsets = false) {
    const f = file();
    if (!f || f.model.mode === "hex") return [];
    const m = f.model;
    const dec = new TextDecoder();
    const out = [];
    for (let i = 0; i < m.rowCount; i++) {
      const r = m.row(i);
      out.push(withOffsets ? [r.line, r.event ? `──── ${r.event.text} ────` : dec.decode(r.bytes), r.offset]
        : [r.line, r.event ? `──── ${r.event.text} ────` : dec.decode(r.bytes)]);
    }
    return out;
  },
  lines() { return this.rows().map((r) => r[1]); },
  visibleText() { const f = file(); return f ? f.view.visibleText() : []; },
  topRow() {
    const f = file();
    const m = f.model;
    const r = m.row(m.top);
    return r ? { line: r.line, offset: r.offset, text: r.bytes ? new TextDecoder().decode(r.bytes) : null, gutter: el.rows.querySelector(".row .gutter")?.textContent.trim() } : null;
  },
  dispatch(action) { const f = file(); if (f) f.navigate(action); },
  lastDownload: null,
  PagebridgeError,
};

route();
