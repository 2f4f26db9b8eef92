// How one line of a log is shown: ANSI colour codes rendered (and other
// escape sequences removed), log levels recognised, JSON pretty-printed on
// demand, search matches marked.  DOM-free: returns segments, which the
// view turns into spans (tested in Node).

const ESC = "\u001b";
// CSI (ESC [ params final), OSC (ESC ] ... BEL or ESC \), and two-byte escapes.
const ESCAPE = /\u001b(?:\[([0-9;:?]*)([@-~])|\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|[@-Z\\-_])/g;

/**
 * Split ANSI SGR codes out of `text`.  Returns {plain, styles}: `plain` is
 * the text without escape sequences; `styles` is a list of
 * {from, to, fg, bg, bold, dim, italic, underline, inverse} over `plain`,
 * where fg/bg are 0..255 (the xterm palette) or "#rrggbb".
 */
export function parseAnsi(text) {
  if (!text.includes(ESC)) return { plain: text, styles: [] };
  let plain = "";
  const styles = [];
  let cur = {};
  let last = 0;
  let start = 0; // where `cur` began in plain
  const close = () => {
    if (plain.length > start && Object.keys(cur).length) styles.push({ from: start, to: plain.length, ...cur });
    start = plain.length;
  };
  ESCAPE.lastIndex = 0;
  for (let m = ESCAPE.exec(text); m; m = ESCAPE.exec(text)) {
    plain += text.slice(last, m.index);
    last = ESCAPE.lastIndex;
    if (m[2] !== "m") continue; // not a colour: dropped
    close();
    cur = applySgr(cur, (m[1] || "0").split(/[;:]/).map((p) => (p === "" ? 0 : Number(p))));
  }
  plain += text.slice(last);
  close();
  return { plain, styles };
}

function applySgr(state, params) {
  const s = { ...state };
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    if (p === 0) { for (const k of Object.keys(s)) delete s[k]; }
    else if (p === 1) s.bold = true;
    else if (p === 2) s.dim = true;
    else if (p === 3) s.italic = true;
    else if (p === 4) s.underline = true;
    else if (p === 7) s.inverse = true;
    else if (p === 22) { delete s.bold; delete s.dim; }
    else if (p === 23) delete s.italic;
    else if (p === 24) delete s.underline;
    else if (p === 27) delete s.inverse;
    else if (p >= 30 && p <= 37) s.fg = p - 30;
    else if (p >= 90 && p <= 97) s.fg = p - 90 + 8;
    else if (p === 39) delete s.fg;
    else if (p >= 40 && p <= 47) s.bg = p - 40;
    else if (p >= 100 && p <= 107) s.bg = p - 100 + 8;
    else if (p === 49) delete s.bg;
    else if (p === 38 || p === 48) {
      const key = p === 38 ? "fg" : "bg";
      if (params[i + 1] === 5 && params[i + 2] !== undefined) { s[key] = params[i + 2] & 255; i += 2; }
      else if (params[i + 1] === 2 && params[i + 4] !== undefined) {
        const hex = params.slice(i + 2, i + 5).map((v) => (v & 255).toString(16).padStart(2, "0")).join("");
        s[key] = `#${hex}`;
        i += 4;
      }
    }
  }
  return s;
}

/** The xterm colour of palette entry 16..255 as #rrggbb (0..15 are themed by CSS classes). */
export function paletteColor(n) {
  if (n < 232) {
    const v = n - 16;
    const level = (x) => (x === 0 ? 0 : 55 + x * 40);
    const rgb = [Math.floor(v / 36), Math.floor(v / 6) % 6, v % 6].map(level);
    return "#" + rgb.map((x) => x.toString(16).padStart(2, "0")).join("");
  }
  const g = 8 + (n - 232) * 10;
  return "#" + g.toString(16).padStart(2, "0").repeat(3);
}

const LEVEL = /\b(FATAL|PANIC|EMERG(?:ENCY)?|ALERT|CRIT(?:ICAL)?|SEVERE|ERROR|ERR|EXCEPTION|WARN(?:ING)?|NOTICE|INFO|DEBUG|DBG|TRACE|FINE[RST]?)\b/i;
const LEVEL_CLASS = {
  fatal: "fatal", panic: "fatal", emerg: "fatal", emergency: "fatal", alert: "fatal", crit: "fatal", critical: "fatal",
  severe: "error", error: "error", err: "error", exception: "error",
  warn: "warn", warning: "warn", notice: "info", info: "info",
  debug: "debug", dbg: "debug", trace: "trace", fine: "trace", finer: "trace", finest: "trace",
};

/** The log level a line announces near its start ("error", "warn", "info", "debug", "trace", "fatal"), or null. */
export function levelOf(plain) {
  const head = plain.slice(0, 160);
  const m = LEVEL.exec(head);
  if (!m) return null;
  const word = m[1];
  // Lower-case words count only in the usual key positions ("level=info", "[info]", "\"level\":\"info\"").
  if (word !== word.toUpperCase()) {
    const before = head.slice(Math.max(0, m.index - 12), m.index);
    if (!/(level|lvl|severity)["']?\s*[=:]\s*["']?$|[[<(]$/i.test(before)) return null;
  }
  return LEVEL_CLASS[word.toLowerCase()] || null;
}

/** The line pretty-printed when it is a JSON object or array (optionally after a prefix such as a timestamp), else null. */
export function prettyJson(plain) {
  if (plain.length > 256 << 10) return null;
  const brace = plain.search(/[{[]/);
  if (brace === -1 || brace > 80) return null;
  const body = plain.slice(brace).trimEnd();
  if (!/[}\]]$/.test(body)) return null;
  try {
    const value = JSON.parse(body);
    if (value === null || typeof value !== "object") return null;
    return plain.slice(0, brace) + JSON.stringify(value, null, 2);
  } catch {
    return null;
  }
}

/**
 * Ranges of `plain` that match the search: [{from, to}].  `query` is
 * {pattern, regex, ignoreCase}; an invalid regex matches nothing.
 */
export function matchRanges(plain, query) {
  if (!query || !query.pattern) return [];
  const out = [];
  let re;
  try {
    re = query.regex
      ? new RegExp(query.pattern, query.ignoreCase ? "gi" : "g")
      : new RegExp(query.pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), query.ignoreCase ? "gi" : "g");
  } catch {
    return out;
  }
  for (let m = re.exec(plain); m && out.length < 1000; m = re.exec(plain)) {
    if (m[0].length === 0) { re.lastIndex++; continue; }
    out.push({ from: m.index, to: m.index + m[0].length });
  }
  return out;
}

/**
 * Segments to draw for one line: [{text, style, mark}] where `style` is an
 * ANSI style (or null) and `mark` true inside a search match.  Control
 * characters other than tab are shown as visible symbols.
 */
export function segments(plain, styles, marks) {
  const cuts = new Set([0, plain.length]);
  for (const s of styles) { cuts.add(s.from); cuts.add(s.to); }
  for (const m of marks) { cuts.add(m.from); cuts.add(m.to); }
  const points = [...cuts].filter((x) => x >= 0 && x <= plain.length).sort((a, b) => a - b);
  const out = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const from = points[i], to = points[i + 1];
    if (from === to) continue;
    const style = styles.find((s) => s.from <= from && s.to >= to) || null;
    const mark = marks.some((m) => m.from <= from && m.to >= to);
    out.push({ text: visible(plain.slice(from, to)), style, mark });
  }
  return out;
}

/** Control characters (but tab) as their visible Unicode pictures, so nothing invisible changes the layout. */
export function visible(text) {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => (c === "\u007f" ? "\u2421" : String.fromCharCode(0x2400 + c.charCodeAt(0))));
}
