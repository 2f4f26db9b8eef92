// The file view: draws a DocModel and turns wheel, touch, keys and the
// position gauge into model actions.  It holds no document state of its
// own: only how things look (wrap, font size, JSON, the sub-row scroll
// offset) and the row selection for copying.
//
// There is no native vertical scrolling: the rows on screen are drawn from
// the model's `top`, so a window of four million two-byte lines needs no
// 75-million-pixel spacer (Chromium stops at 33.5 M), and nothing the model
// does to its rows (dropping, prepending) can move a scrollbar under the
// reader's hand.  The gauge on the right spans the whole file.

import { levelOf, matchRanges, paletteColor, parseAnsi, prettyJson, segments } from "./decorate.js";
import { readingState } from "./model.js";

const utf8 = new TextDecoder("utf-8");

export function humanBytes(n) {
  if (n == null || !Number.isFinite(n)) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  if (i === 0) return `${Math.round(v)} B`;
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function humanCount(n) {
  // Thin spaces between thousands (toLocaleString is slow enough to show in a profile at 60 frames a second).
  return n == null ? "" : String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, "\u2009");
}

function percent(part, whole) {
  if (!whole) return "";
  const p = (100 * part) / whole;
  return p >= 99.95 && part < whole ? "99.9%" : `${p.toFixed(p < 10 && p > 0 ? 1 : 0)}%`;
}

/** Settings that belong to the reader, not the document: kept across files and reloads. */
export class Settings {
  constructor(storage) {
    this.storage = storage;
    const saved = (() => { try { return JSON.parse(storage.getItem("pagebridge-view") || "{}"); } catch { return {}; } })();
    this.wrap = Boolean(saved.wrap);
    this.json = Boolean(saved.json);
    this.fontSize = Number(saved.fontSize) || 13;
  }
  save() {
    try { this.storage.setItem("pagebridge-view", JSON.stringify({ wrap: this.wrap, json: this.json, fontSize: this.fontSize })); } catch { /* private mode */ }
  }
}

export class DocView {
  /**
   * @param {import("./model.js").DocModel} model
   * @param {object} dom  elements: lines, rows, gauge, thumb, band, marks, status, follow, pause, hex, wrap, json
   * @param {object} options  settings (Settings), reader (for the rate), onChange (after each drawn change),
   *                          onCutMore(row) (a cut row's "show in hex"), onPick(row) (a filter row clicked)
   */
  constructor(model, dom, { settings, reader, onChange = () => {}, onCutMore = () => {}, onPick = null }) {
    this.model = model;
    this.dom = dom;
    this.settings = settings;
    this.reader = reader;
    this.onChange = onChange;
    this.onCutMore = onCutMore;
    this.onPick = onPick; // filter mode: a click on a row's text goes to that line
    this.search = null; // {pattern, regex, ignoreCase}: matches marked on screen
    this.currentMatch = null; // {version, offset}: the match moved to last
    this.selection = null; // {anchor: {version, offset, line}, head: {...}}
    this.shift = 0; // pixels of the top row scrolled out of view
    this.rowHeight = 18;
    this.cache = new Map(); // "version:offset:len" -> decoded line
    this.drawn = null; // what was drawn last (to skip identical frames)
    this.queued = false;
    this.rate = { bytes: 0, at: performance.now(), value: 0 };
    this.disposers = [];
    this.closed = false;
    this.applySettings();
    this.listen();
    this.unsubscribe = model.subscribe(() => this.schedule());
    this.rateTimer = setInterval(() => this.sampleRate(), 500);
    this.schedule();
  }

  close() {
    this.closed = true;
    this.unsubscribe();
    clearInterval(this.rateTimer);
    clearTimeout(this.statusTimer);
    for (const d of this.disposers) d();
    this.dom.rows.replaceChildren();
  }

  on(target, type, fn, options) {
    target.addEventListener(type, fn, options);
    this.disposers.push(() => target.removeEventListener(type, fn, options));
  }

  dispatch(action) { this.model.dispatch(action); }

  // ------------------------------------------------------------ settings

  applySettings() {
    const s = this.settings;
    this.dom.lines.style.setProperty("--font-size", `${s.fontSize}px`);
    this.dom.lines.classList.toggle("wrap", s.wrap);
    this.dom.wrap && this.dom.wrap.setAttribute("aria-pressed", String(s.wrap));
    this.dom.json && this.dom.json.setAttribute("aria-pressed", String(s.json));
    this.rowHeight = 0; // measure again
    this.drawn = null;
    this.schedule();
  }

  toggleWrap() { this.settings.wrap = !this.settings.wrap; this.settings.save(); this.shift = 0; this.applySettings(); }
  toggleJson() { this.settings.json = !this.settings.json; this.settings.save(); this.shift = 0; this.applySettings(); }
  fontBigger(step) {
    const s = this.settings;
    s.fontSize = step === 0 ? 13 : Math.max(8, Math.min(32, s.fontSize + step));
    s.save();
    this.applySettings();
  }

  /** Search hits on the gauge: `fractions` of the file (0..1), at most a few hundred. */
  setMarks(fractions) {
    const box = this.dom.marks;
    if (!box) return;
    const key = fractions.join(",");
    if (key === this.marksKey) return;
    this.marksKey = key;
    box.replaceChildren(...fractions.map((f) => {
      const i = document.createElement("i");
      i.style.top = `${(100 * f).toFixed(3)}%`; // through the CSSOM: the CSP forbids style attributes, not this
      return i;
    }));
  }

  setSearch(query, current = null) {
    this.search = query && query.pattern ? query : null;
    this.currentMatch = current;
    this.drawn = null;
    this.schedule();
  }

  // ------------------------------------------------------------ input

  listen() {
    const lines = this.dom.lines;
    this.on(lines, "wheel", (e) => this.onWheel(e), { passive: false });
    this.on(lines, "keydown", (e) => this.onKey(e));
    this.on(lines, "touchstart", (e) => { this.touchY = e.touches[0].clientY; }, { passive: true });
    this.on(lines, "touchmove", (e) => {
      const y = e.touches[0].clientY;
      const dy = this.touchY - y;
      this.touchY = y;
      if (Math.abs(dy) > 0) { e.preventDefault(); this.scrollPixels(dy); }
    }, { passive: false });
    this.on(lines, "click", (e) => this.onClick(e));
    this.on(this.dom.gauge, "pointerdown", (e) => this.onGauge(e));
    const resize = new ResizeObserver(() => { this.rowHeight = 0; this.schedule(); });
    resize.observe(lines);
    this.disposers.push(() => resize.disconnect());
  }

  onWheel(e) {
    if (e.ctrlKey) return; // the browser's zoom
    const vertical = Math.abs(e.deltaY) >= Math.abs(e.deltaX);
    if (!vertical || e.shiftKey) return; // horizontal: the native scroll of long lines
    e.preventDefault();
    const unit = e.deltaMode === 1 ? this.rowHeight : e.deltaMode === 2 ? this.dom.lines.clientHeight : 1;
    this.scrollPixels(e.deltaY * unit);
  }

  /** Scroll by pixels: whole rows go to the model, the rest stays here as the top row's offset. */
  scrollPixels(px) {
    const m = this.model;
    let shift = this.shift + px;
    let rows = 0;
    const height = (i) => this.heightOf(i);
    if (m.pin === "bottom" && px < 0) {
      // Leaving the bottom: start from the top row on screen.
      shift = 0;
      rows = Math.min(-1, Math.round(px / this.rowHeight));
    } else {
      while (shift >= height(m.top + rows) && m.top + rows < m.rowCount - 1) { shift -= height(m.top + rows); rows++; }
      while (shift < 0 && m.top + rows > 0) { rows--; shift += height(m.top + rows); }
    }
    if (m.top + rows <= 0 && shift < 0) shift = 0;
    this.shift = Math.max(0, shift);
    if (rows) this.dispatch({ type: "scroll", rows });
    else this.schedule();
    if (m.pin === "top" && m.top >= Math.max(0, m.rowCount - m.height)) this.shift = 0; // nothing below the last row
  }

  heightOf(i) {
    const el = this.dom.rows.querySelector(`[data-row="${i}"]`);
    return el ? el.getBoundingClientRect().height || this.rowHeight : this.rowHeight;
  }

  /** Keys that move through the text; they work as soon as the text has focus. */
  onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const m = this.model;
    const page = Math.max(1, m.height - 1);
    const act = {
      ArrowDown: () => this.scrollRows(1), j: () => this.scrollRows(1),
      ArrowUp: () => this.scrollRows(-1), k: () => this.scrollRows(-1),
      PageDown: () => this.scrollRows(page), PageUp: () => this.scrollRows(-page),
      Home: () => this.dispatch({ type: "home" }), End: () => this.dispatch({ type: "end" }),
    }[e.key];
    if (!act) return;
    e.preventDefault();
    e.stopPropagation();
    act();
  }

  scrollRows(rows) {
    this.shift = 0;
    this.dispatch({ type: "scroll", rows });
  }

  onClick(e) {
    const more = e.target.closest && e.target.closest(".cut-more");
    if (more) {
      const i = Number(more.closest(".row").dataset.row);
      const row = this.model.row(i);
      if (row) this.onCutMore(row);
      return;
    }
    const gutter = e.target.closest && e.target.closest(".gutter");
    if (!gutter && this.model.kind === "filter" && this.onPick) {
      const rowEl = e.target.closest && e.target.closest(".row");
      const row = rowEl ? this.model.row(Number(rowEl.dataset.row)) : null;
      if (row && !row.event && !getSelection().toString()) this.onPick(row);
      return;
    }
    if (!gutter) return;
    const i = Number(gutter.closest(".row").dataset.row);
    const row = this.model.row(i);
    if (!row || row.event || this.model.mode === "hex") return;
    const point = { version: row.version, offset: row.offset, line: row.line, end: row.lineEnd ?? row.offset + row.bytes.length + 1 };
    if (e.shiftKey && this.selection && this.selection.anchor.version === point.version) this.selection.head = point;
    else this.selection = { anchor: point, head: point };
    this.drawn = null;
    this.schedule();
  }

  /** The selected rows, first to last: {from: point, to: point} (points carry version, offset, line, end). */
  selectedRange() {
    const s = this.selection;
    if (!s) return null;
    const [from, to] = s.anchor.offset <= s.head.offset ? [s.anchor, s.head] : [s.head, s.anchor];
    return { from, to };
  }

  onGauge(e) {
    const m = this.model;
    if (m.stream || m.size == null) return;
    e.preventDefault();
    const gauge = this.dom.gauge;
    gauge.setPointerCapture(e.pointerId);
    const rect = gauge.getBoundingClientRect();
    const at = (ev) => Math.max(0, Math.min(1, (ev.clientY - rect.top) / rect.height));
    const preview = (ev) => { gauge.dataset.preview = percent(at(ev) * m.size, m.size); };
    preview(e);
    const move = (ev) => preview(ev);
    const up = (ev) => {
      gauge.removeEventListener("pointermove", move);
      gauge.removeEventListener("pointerup", up);
      delete gauge.dataset.preview;
      const fraction = at(ev);
      this.shift = 0;
      if (ev.clientY >= rect.bottom - 3) this.dispatch({ type: "end" }); // the bottom edge is the end
      else this.dispatch({ type: "jump", offset: Math.floor(fraction * m.size) });
      this.dom.lines.focus({ preventScroll: true });
    };
    gauge.addEventListener("pointermove", move);
    gauge.addEventListener("pointerup", up);
  }

  // ------------------------------------------------------------ drawing

  schedule() {
    if (this.queued || this.closed) return;
    this.queued = true;
    requestAnimationFrame(() => { this.queued = false; if (!this.closed) this.draw(); });
  }

  measure() {
    if (this.rowHeight) return;
    const probe = document.createElement("div");
    probe.className = "row";
    probe.textContent = "0";
    this.dom.rows.append(probe);
    this.rowHeight = probe.getBoundingClientRect().height || 18;
    probe.remove();
  }

  draw() {
    const m = this.model;
    this.measure();
    const height = Math.max(1, Math.floor(this.dom.lines.clientHeight / this.rowHeight));
    if (height !== m.height) { m.dispatch({ type: "viewport", height }); return; }
    const key = `${m.revision}|${m.top}|${m.pin}|${this.shift}|${this.dom.lines.clientHeight}`;
    if (this.drawn !== key) {
      this.drawn = key;
      this.drawRows();
    }
    this.drawGauge();
    this.drawStatus();
    this.onChange();
  }

  /**
   * Draw the rows on screen.  Row elements are kept from one frame to the
   * next by the row's identity (and rebuilt when how rows look changed), and
   * the DOM is changed as little as possible: while following, a frame
   * usually drops rows at the top and appends new ones.
   */
  drawRows() {
    const m = this.model;
    const n = m.rowCount;
    const bottom = m.pin === "bottom";
    const first = bottom ? Math.max(0, n - m.height - 1) : m.top;
    const last = Math.min(n, bottom ? n : m.top + m.height + 2);
    const hex = m.mode === "hex";
    let widest = "";
    if (!hex && n) {
      const lastRow = m.row(n - 1);
      widest = String((lastRow && lastRow.line) || (m.lines || 0) || 0);
    }
    const gutterChars = String(hex ? 8 : Math.max(3, widest.length));
    if (this.gutterChars !== gutterChars) {
      this.gutterChars = gutterChars;
      this.dom.lines.style.setProperty("--gutter-chars", gutterChars);
    }
    const look = this.lookKey();
    if (look !== this.look) { this.look = look; this.pool = new Map(); }
    const pool = this.pool || new Map();
    const next = new Map();
    const els = [];
    for (let i = first; i < last; i++) {
      const row = m.row(i);
      if (!row) continue;
      const key = `${row.event ? "e" : ""}${row.version}:${row.offset}:${hex ? "" : row.bytes.length}:${row.line}:${row.tailCut ? 1 : 0}:${row.partial ? 1 : 0}`;
      let el = pool.get(key);
      if (!el) el = hex ? this.hexRow(row, i) : this.textRow(row, i);
      else el.dataset.row = String(i);
      next.set(key, el);
      els.push(el);
    }
    this.pool = next;
    this.place(els);
    const box = this.dom.rows;
    box.classList.toggle("bottom", bottom);
    if (bottom) this.shift = 0;
    const transform = bottom ? "" : `translateY(${-this.shift}px)`;
    if (box.style.transform !== transform) box.style.transform = transform;
    if (this.cache.size > 4000) this.cache.clear();
  }

  /** Put `els` in the rows box with as few DOM changes as possible. */
  place(els) {
    const box = this.dom.rows;
    const old = [...box.children];
    const same = (a, b, from, count) => { for (let k = 0; k < count; k++) if (a[from + k] !== b[k]) return false; return true; };
    // Scrolled or followed down: the old rows from j on start the new list.
    const j = els.length ? old.indexOf(els[0]) : -1;
    if (j >= 0 && same(old, els, j, Math.min(old.length - j, els.length))) {
      for (let k = 0; k < j; k++) old[k].remove();
      for (let k = old.length - j; k < els.length; k++) box.append(els[k]);
      for (let k = j + els.length; k < old.length; k++) old[k].remove();
      return;
    }
    // Scrolled up: the new list ends with the old rows' beginning.
    const i = old.length ? els.indexOf(old[0]) : -1;
    if (i > 0 && same(els, old, i, Math.min(els.length - i, old.length))) {
      for (let k = i + old.length; k < els.length; k++) box.append(els[k]);
      for (let k = els.length - i; k < old.length; k++) old[k].remove();
      box.prepend(...els.slice(0, i));
      return;
    }
    box.replaceChildren(...els);
  }

  /** What every row's look depends on besides the row: when it changes, rows are built again. */
  lookKey() {
    const m = this.model;
    const sel = this.selectedRange();
    const hl = m.highlight;
    const cur = this.currentMatch;
    return JSON.stringify([this.search, cur && [cur.version, cur.offset], hl && [hl.version, hl.offset],
      sel && [sel.from.version, sel.from.offset, sel.to.offset], this.settings.json, m.follow, m.mode]);
  }

  decoded(row) {
    const key = `${row.version}:${row.offset}:${row.bytes.length}`;
    let d = this.cache.get(key);
    if (!d) {
      let text = utf8.decode(row.bytes);
      if (text.endsWith("\r")) text = text.slice(0, -1);
      const { plain, styles } = parseAnsi(text);
      d = { plain, styles, level: levelOf(plain), json: undefined };
      this.cache.set(key, d);
    }
    if (this.settings.json && d.json === undefined) d.json = prettyJson(d.plain);
    return d;
  }

  textRow(row, i) {
    const m = this.model;
    const div = document.createElement("div");
    div.className = "row";
    div.dataset.row = String(i);
    const gutter = document.createElement("span");
    gutter.className = "gutter";
    const text = document.createElement("span");
    text.className = "text";
    div.append(gutter, text);
    if (row.event) {
      div.classList.add("event", `event-${row.event.kind}`);
      text.textContent = `──── ${row.event.text} ────`;
      return div;
    }
    gutter.textContent = row.line !== null ? String(row.line) : "\u00a0"; // not known yet: shown blank, still clickable
    if (row.line === null) gutter.title = `byte ${row.offset}`;
    const d = this.decoded(row);
    if (d.level) div.classList.add(`lvl-${d.level}`);
    const shown = this.settings.json && d.json ? { plain: d.json, styles: [] } : d;
    if (this.settings.json && d.json) div.classList.add("json");
    if (row.headCut) text.append(this.badge("…", "the line begins before this"));
    const marks = this.search ? matchRanges(shown.plain, this.search) : [];
    for (const seg of segments(shown.plain, shown.styles, marks)) {
      let node;
      if (seg.style || seg.mark) {
        node = document.createElement(seg.mark ? "mark" : "span");
        if (seg.style) this.styleSpan(node, seg.style);
        node.textContent = seg.text;
      } else {
        node = document.createTextNode(seg.text);
      }
      text.append(node);
    }
    if (row.tailCut && m.kind === "filter") {
      text.append(this.badge(" …", "the line goes on (the filter shows its start)"));
    } else if (row.tailCut) {
      const more = document.createElement("button");
      more.type = "button";
      more.className = "cut-more";
      const rest = row.lineEnd != null ? row.lineEnd - row.offset - row.bytes.length - 1 : null;
      more.textContent = rest != null ? `… ${humanBytes(rest)} more — show in hex` : "… line continues — show in hex";
      text.append(more);
    }
    if (row.partial && m.follow) div.classList.add("partial");
    const hl = m.highlight;
    if (hl && hl.version === row.version && hl.offset === row.offset) div.classList.add("hl");
    const cur = this.currentMatch;
    if (cur && cur.version === row.version && cur.offset === row.offset) div.classList.add("current");
    const sel = this.selectedRange();
    if (sel && sel.from.version === row.version && row.offset >= sel.from.offset && row.offset <= sel.to.offset) div.classList.add("selected");
    return div;
  }

  badge(text, title) {
    const b = document.createElement("span");
    b.className = "badge";
    b.textContent = text;
    b.title = title;
    return b;
  }

  styleSpan(node, s) {
    const cls = [];
    let fg = s.fg, bg = s.bg;
    if (s.inverse) [fg, bg] = [bg ?? "default-bg", fg ?? "default-fg"];
    const color = (v, kind) => {
      if (v === undefined) return;
      if (v === "default-bg" || v === "default-fg") { cls.push(`ansi-${kind}-${v}`); return; }
      if (typeof v === "number" && v < 16) { cls.push(`ansi-${kind}${v}`); return; }
      // 256-colour and true-colour codes: set through the CSSOM (allowed by the CSP; style attributes are not).
      node.style[kind === "fg" ? "color" : "backgroundColor"] = typeof v === "number" ? paletteColor(v) : v;
    };
    color(fg, "fg");
    color(bg, "bg");
    if (s.bold) cls.push("ansi-bold");
    if (s.dim) cls.push("ansi-dim");
    if (s.italic) cls.push("ansi-italic");
    if (s.underline) cls.push("ansi-underline");
    if (cls.length) node.className = cls.join(" ");
  }

  hexRow(row, i) {
    const div = document.createElement("div");
    div.className = "row hex";
    div.dataset.row = String(i);
    const gutter = document.createElement("span");
    gutter.className = "gutter";
    gutter.textContent = row.offset.toString(16).padStart(8, "0");
    const text = document.createElement("span");
    text.className = "text";
    let hexPart = "";
    let ascii = "";
    row.values.forEach((v, k) => {
      hexPart += (v === null ? "  " : v.toString(16).padStart(2, "0")) + (k === 7 ? "  " : " ");
      ascii += v === null ? " " : v >= 32 && v < 127 ? String.fromCharCode(v) : "·";
    });
    text.textContent = `${hexPart} ${ascii}`;
    div.append(gutter, text);
    const cur = this.currentMatch;
    if (cur && cur.version === row.version && cur.offset >= row.offset && cur.offset < row.offset + 16) div.classList.add("current");
    const hl = this.model.highlight;
    if (hl && hl.offset >= row.offset && hl.offset < row.offset + 16) div.classList.add("hl");
    return div;
  }

  /** The gauge spans the whole file: the thumb is what is on screen, the band what is held. */
  drawGauge() {
    const m = this.model;
    const c = m.content;
    const size = m.size;
    const { thumb, band } = this.dom;
    if (!c || !size || m.stream || !m.rowCount) {
      thumb.hidden = true;
      band.hidden = true;
      return;
    }
    const topRow = m.row(m.top);
    const lastRow = m.row(Math.min(m.rowCount - 1, m.top + m.height - 1));
    const from = topRow && topRow.version === m.version ? topRow.offset : 0;
    const to = lastRow && lastRow.version === m.version ? lastRow.offset + (lastRow.bytes ? lastRow.bytes.length + 1 : 16) : from;
    const pct = (x) => `${Math.max(0, Math.min(100, (100 * x) / size))}%`;
    thumb.hidden = false;
    thumb.style.top = pct(from);
    thumb.style.height = `max(6px, ${pct(Math.max(0, to - from))})`;
    band.hidden = false;
    const start = c.startVersion === m.version ? c.start : 0;
    band.style.top = pct(start);
    band.style.height = pct(Math.max(0, c.end - start));
  }

  sampleRate() {
    const now = performance.now();
    const bytes = this.reader ? this.reader.bytesIn : 0;
    const dt = (now - this.rate.at) / 1000;
    if (dt > 0) {
      const inst = (bytes - this.rate.bytes) / dt;
      this.rate.value = this.rate.value * 0.5 + inst * 0.5;
      if (this.rate.value < 1) this.rate.value = 0;
    }
    this.rate.bytes = bytes;
    this.rate.at = now;
    this.drawStatus();
  }

  /** The status line: what is being done (always the follow state), where, how fast. */
  drawStatus() {
    const m = this.model;
    const { status, follow, pause, hex } = this.dom;
    const state = m.readingState ? m.readingState() : readingState(m);
    // While following, the numbers (line, rate) change with every frame: at most four times a
    // second for them; a change of state shows at once.
    const now = performance.now();
    if (m.follow && state === status.dataset.state && now - (this.statusAt || 0) < 250) {
      clearTimeout(this.statusTimer);
      this.statusTimer = setTimeout(() => this.drawStatus(), 260);
      return;
    }
    this.statusAt = now;
    const rate = this.rate.value ? ` · ${humanBytes(this.rate.value)}/s` : "";
    const words = {
      failed: "could not open",
      offline: "offline — reading resumes when the connection is back",
      stopped: "stopped — Resume reads on",
      paused: "paused — nothing is acknowledged, so the server has stopped sending",
      reloading: "the file changed — reloading",
      following: `following live${rate}`,
      "following-scrolled": `following — scrolled up, ${humanCount(Math.max(0, m.rowCount - m.top - m.height))} newer lines below: End (or G) returns to them`,
      deleted: "following — the file was deleted; waiting for it to come back",
      ended: "the stream ended",
      "at-end": m.size !== null && m.content && m.size > m.content.end ? `the file grew by ${humanBytes(m.size - m.content.end)} — scroll down, or f to follow` : "end of file — f follows it as it grows",
      "window-full": "window full — reading on as you scroll",
      "long-line": "a line longer than the window: the rest of it is not read (show it in hex, or go further on)",
      idle: "not following — f follows the file",
      reading: `reading${rate}`,
      filtering: `filter: ${humanCount(m.count)} matching lines so far — scanning`,
      "filter-done": `filter: ${humanCount(m.count)} matching lines`,
      "filter-following": `filter, following live: ${humanCount(m.count)} matching lines`,
    };
    const parts = [words[state] || state];
    const c = m.content;
    const topRow = m.row(m.top);
    if (m.kind === "filter" && m.size) parts.push(`scanned ${percent(m.scanned, m.size) || "0%"} of ${humanBytes(m.size)}`);
    else if (topRow && !m.stream && m.mode !== "hex") {
      const line = topRow.line;
      if (line !== null) parts.push(`line ${humanCount(line)}${m.lines ? ` of ${humanCount(m.lines)}` : ""}`);
    }
    if (m.kind === "filter") { /* said above */ } else if (m.stream) parts.push(`${humanBytes(this.reader ? this.reader.bytesIn : 0)} received`);
    else if (m.size !== null && c) {
      const at = topRow && topRow.version === m.version ? topRow.offset : c.end;
      parts.push(`${humanBytes(m.size)} · at ${percent(at, m.size) || "0%"}`);
    }
    if (c && c.skipping) parts.push(`reading through a long line (${humanBytes(c.skipped)} so far)`);
    const text = parts.join(" · ");
    if (status.textContent !== text) status.textContent = text;
    status.dataset.state = state;
    follow.setAttribute("aria-pressed", String(m.follow));
    follow.textContent = m.follow ? "Following" : "Follow";
    const paused = m.flow !== "running";
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (hex) hex.checked = m.mode === "hex";
  }

  /** Plain text of the rows on screen (for tests and copying what is visible). */
  visibleText() {
    return [...this.dom.rows.querySelectorAll(".row")].map((r) => r.textContent);
  }
}

