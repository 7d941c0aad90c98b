"""Text normalisation shared by search, suggestions and clustering."""
from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")


def normalize(text: str | None) -> str:
    """NFKC (full-width/half-width forms match), lower-case, collapse whitespace."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).lower()
    return _SPACE.sub(" ", text).strip()


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text):
    """Show control characters as escapes ("\n" → "\\n", ESC → "\\x1b", U+2028 → "\\u2028", bidi overrides
    → "\\u202e"), so a value cannot start a fake line or hide text in an audit trail or a log file.
    Non-strings are returned unchanged."""
    if not isinstance(text, str):
        return text
    if text.isprintable():  # the common case, checked in C
        return text
    out = []
    for ch in text:
        if ch in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[ch])
        elif unicodedata.category(ch) in ("Cc", "Zl", "Zp") or (unicodedata.category(ch) == "Cf" and
                                                                 ch in _BIDI_CONTROLS):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def escape_controls_deep(value):
    """escape_controls() over the strings (and keys) inside dicts / lists / tuples (audit details)."""
    if isinstance(value, str):
        return escape_controls(value)
    if isinstance(value, dict):
        return {escape_controls(k): escape_controls_deep(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(escape_controls_deep(v) for v in value)
    return value


#: Bidirectional embedding/override/isolate marks: they reorder how a line reads (log spoofing).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")

#: Line and paragraph separators besides the ASCII controls: mail and log readers break lines on them too.
_LINE_BREAKING = {"Zl", "Zp"}


def one_line(text: str | None, max_len: int | None = None) -> str:
    """A single-line value (subject, title, header): every control character and line separator becomes a
    space, runs of spaces collapse, the ends are trimmed. "件名\r\nBcc: x@evil" → "件名 Bcc: x@evil"."""
    if text is None:
        return ""
    text = "".join(" " if (unicodedata.category(ch) == "Cc" or unicodedata.category(ch) in _LINE_BREAKING) else ch
                   for ch in str(text))
    text = re.sub(r" {2,}", " ", text).strip()
    return text[:max_len] if max_len else text


def clean_input(text: str | None, max_len: int | None = None) -> str:
    """Strip NUL and other control characters (keeping newlines/tabs) from user input."""
    if text is None:
        return ""
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    text = text.replace("\r\n", "\n").strip()
    return text[:max_len] if max_len else text
