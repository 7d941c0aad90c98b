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
