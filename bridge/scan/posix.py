"""GNU grep's pattern syntaxes, turned into RE2's.

``pagebridge grep`` takes patterns the way GNU grep does: basic regular
expressions by default, extended ones with ``-E``.  RE2 speaks neither
exactly, so the command translates, on the client, before sending:

* BRE: ``\\(`` ``\\)`` ``\\{`` ``\\}`` ``\\|`` ``\\+`` ``\\?`` are the operators
  and their bare forms are literal; a ``*`` that starts the pattern (or a
  group, or follows ``^``) is literal;
* both: bracket expressions are POSIX (a backslash inside is itself, ``]``
  first is literal, ``[:alpha:]`` classes pass through); ``\\<`` and ``\\>``
  (word start and end) become ``\\b``; ``\\w \\W \\s \\S \\b \\B`` pass through;
* ERE: a ``{`` that starts no interval is literal; a ``*`` or an interval
  with nothing to repeat is ignored (GNU grep warns and does the same);
* back-references (``\\1``...) have no RE2 equivalent: refused with a sentence.
"""

from __future__ import annotations

_BRE_OPERATORS = {"(": "(", ")": ")", "{": "{", "}": "}", "|": "|", "+": "+", "?": "?"}
_PASS = set("wWsSbB")
_RE2_SPECIAL = set("\\.+*?()|[]{}^$")


class TranslationError(ValueError):
    """The pattern uses something RE2 cannot do (a back-reference) or is malformed."""


def posix_to_re2(pattern: str, *, extended: bool) -> str:
    """Translate a GNU grep pattern (BRE, or ERE with ``extended``) to RE2 syntax."""
    out: list[str] = []
    i = 0
    n = len(pattern)
    # Where a '*' is literal in a BRE: at the start, after '^', after '\(' or '\|'.
    atom_start = True
    while i < n:
        c = pattern[i]
        if c == "[":
            end, text = _bracket(pattern, i)
            out.append(text)
            i = end
            atom_start = False
            continue
        if c == "\\":
            if i + 1 >= n:
                raise TranslationError("trailing backslash")
            d = pattern[i + 1]
            i += 2
            if d.isdigit() and d != "0":
                raise TranslationError(f"back-references (\\{d}) are not supported by the RE2 engine")
            if d in "<>":
                out.append(r"\b")
                continue
            if not extended and d in _BRE_OPERATORS:
                out.append(_BRE_OPERATORS[d])
                atom_start = d in "(|"
                continue
            if d in _PASS:
                out.append("\\" + d)
            elif d in _RE2_SPECIAL:
                out.append("\\" + d)
            else:
                out.append(_literal(d))  # GNU: an escaped ordinary character is itself
            atom_start = False
            continue
        if not extended:
            if c in "+?(){}|":
                out.append("\\" + c)
                atom_start = False
            elif c == "*" and atom_start:
                out.append(r"\*")
                atom_start = False
            else:
                out.append(c)
                atom_start = c == "^" and atom_start
            i += 1
            continue
        if c == "{" and atom_start and _is_interval(pattern, i):
            i = pattern.index("}", i) + 1  # GNU ERE: nothing to repeat, ignored (with a warning)
            continue
        if c == "{" and not _is_interval(pattern, i):
            out.append(r"\{")  # GNU ERE: a '{' that starts no interval is literal
        elif c == "*" and atom_start:
            pass  # GNU ERE ignores a '*' with nothing to repeat (with a warning)
        else:
            out.append(c)
        atom_start = c in "(|" or (c == "^" and atom_start)
        i += 1
    return "".join(out)


def _literal(ch: str) -> str:
    return "\\" + ch if ch in _RE2_SPECIAL else ch


def _is_interval(pattern: str, i: int) -> bool:
    end = pattern.find("}", i)
    if end < 0:
        return False
    body = pattern[i + 1:end]
    low, _, high = body.partition(",")
    return bool(body) and (low.isdigit() or (low == "" and "," in body)) and (high == "" or high.isdigit())


def _bracket(pattern: str, start: int) -> tuple[int, str]:
    """A POSIX bracket expression at ``start``: (index after it, RE2 text)."""
    i = start + 1
    n = len(pattern)
    out = ["["]
    if i < n and pattern[i] == "^":
        out.append("^")
        i += 1
    first = True
    while i < n:
        c = pattern[i]
        if c == "]" and not first:
            out.append("]")
            return i + 1, "".join(out)
        if c == "[" and i + 1 < n and pattern[i + 1] in ":.=":
            close = pattern.find(pattern[i + 1] + "]", i + 2)
            if close < 0:
                raise TranslationError("unterminated character class")
            out.append(pattern[i:close + 2])
            i = close + 2
        elif c in "\\]":
            out.append("\\" + c)  # literal in POSIX brackets, escaped for RE2
            i += 1
        elif c == "[":
            out.append(r"\[")
            i += 1
        else:
            out.append(c)
            i += 1
        first = False
    raise TranslationError("unmatched [ or [^")


__all__ = ["TranslationError", "posix_to_re2"]
