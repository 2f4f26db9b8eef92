// The URL fragment names what is on screen (DOM-free, tested in Node):
//
//   #/                    the root folder
//   #/logs/               a folder (ends with /)
//   #/logs/app.log        a file, from its top
//   #/logs/app.log:120    a file at line 120 (highlighted)
//   #/logs/app.log:end    a file at its end, following
//
// Each path segment is percent-encoded (encodeURIComponent), so a ":" or a
// "/" inside a name is never taken for a separator: the position suffix is
// the text after the last raw ":".

/** Parse a location.hash. Returns {path, folder, line, end} (path without leading slash). */
export function parseHash(hash) {
  let rest = String(hash || "").replace(/^#/, "");
  if (rest.startsWith("/")) rest = rest.slice(1);
  let line = null;
  let end = false;
  const colon = rest.lastIndexOf(":");
  if (colon !== -1) {
    const suffix = rest.slice(colon + 1);
    if (/^\d+$/.test(suffix) && Number(suffix) >= 1) { line = Number(suffix); rest = rest.slice(0, colon); }
    else if (suffix === "end") { end = true; rest = rest.slice(0, colon); }
  }
  const folder = rest === "" || rest.endsWith("/");
  const segments = rest.split("/").filter((s) => s !== "");
  let path;
  try {
    path = segments.map((s) => decodeURIComponent(s)).join("/");
  } catch {
    path = segments.join("/"); // a malformed escape: take it literally
  }
  if (folder && path) path += "/";
  return { path, folder, line: folder ? null : line, end: folder ? false : end };
}

/** The fragment for a path (folders end with "/"), optionally at a line or at the end. */
export function formatHash(path, { line = null, end = false } = {}) {
  const folder = path === "" || path.endsWith("/");
  const segments = path.split("/").filter((s) => s !== "");
  let hash = "#/" + segments.map(encodeURIComponent).join("/");
  if (folder) return segments.length ? hash + "/" : hash;
  if (end) return hash + ":end";
  if (line !== null && line >= 1) return `${hash}:${line}`;
  return hash;
}

/**
 * What the jump box accepts: `120` (line), `50%` (of the file), `@4096` or
 * `@0x1000` or `0x1000` (byte offset), `end` / `$`.  Returns {line} |
 * {percent} | {offset} | {end: true} | {error}.
 */
export function parseJump(text) {
  const t = String(text).trim().replace(/[\s_,]/g, "");
  if (t === "") return { error: "Type a line number, a percentage (50%), or a byte offset (@4096, 0x1000)." };
  if (/^(end|\$)$/i.test(t)) return { end: true };
  let m = /^(\d+(?:\.\d+)?)%$/.exec(t);
  if (m) {
    const percent = Number(m[1]);
    if (percent > 100) return { error: `${percent}% is beyond the end of the file.` };
    return { percent };
  }
  m = /^@?0x([0-9a-f]+)$/i.exec(t);
  if (m) return { offset: parseInt(m[1], 16) };
  m = /^@(\d+)$/.exec(t);
  if (m) return { offset: Number(m[1]) };
  m = /^(\d+)$/.exec(t);
  if (m) {
    const line = Number(m[1]);
    return line >= 1 ? { line } : { error: "Lines are numbered from 1." };
  }
  return { error: `"${text}" is not a line number, a percentage (50%) or a byte offset (@4096, 0x1000).` };
}
