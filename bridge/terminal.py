"""Text from a server, made safe to print on a terminal.

File names and messages come from the peer: a name holding ``ESC [ 2 J``
or an OSC sequence would clear or retitle the user's terminal, a U+202E
would print a name backwards.  :func:`printable` writes every character
that is not printable (C0 and C1 controls, DEL, bidi and other format
characters, line and paragraph separators...) as a Python-style escape,
so what a command prints is inert text.  Backslashes are kept as they are:
pagebridge servers already write the bytes of odd names as ``\\xNN``
(docs/protocol.md section 5), and a name printed by ``ls`` is then exactly
the name to pass to ``get``.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with every non-printable character written as ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN``."""
    if text.isprintable():
        return text  # the usual case, and cheap
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
            continue
        code = ord(ch)
        out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                   else f"\\U{code:08x}")
    return "".join(out)


__all__ = ["printable"]
