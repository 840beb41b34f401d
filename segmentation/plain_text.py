"""Text from a file (a model's name, say) made safe to show: no terminal escapes, no fake lines, no hidden text.

A weights file's name is untrusted: with a newline it could print a fake ``error: all good`` line, with ANSI escape
sequences it could recolour or rewrite the terminal, and with bidirectional overrides it could read differently
than it is. :func:`plain_text` removes escape sequences, turns line breaks and tabs into spaces and every other
control or bidirectional-formatting character into U+FFFD, so what is shown is one plain line. (The GUI also shows
such text in plain-text labels, never as rich text.)
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["plain_text"]

# ANSI/VT100 escape sequences: CSI (ESC [ ... final byte), OSC (ESC ] ... BEL or ESC \), and two-byte ESC X.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
_SPACES = re.compile(r"[\r\n\t\v\f\x85\u2028\u2029]+")
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def plain_text(text: object, limit: int = 200) -> str:
    """One printable line of at most ``limit`` characters (``…`` marks a cut)."""
    text = _SPACES.sub(" ", _ESCAPES.sub("", str(text)))
    cleaned = "".join(
        "\ufffd" if char in _BIDI or unicodedata.category(char) in ("Cc", "Cs") else char for char in text
    )
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
