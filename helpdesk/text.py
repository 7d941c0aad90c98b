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


def clean_input(text: str | None, max_len: int | None = None) -> str:
    """Strip NUL and other control characters (keeping newlines/tabs) from user input."""
    if text is None:
        return ""
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    text = text.replace("\r\n", "\n").strip()
    return text[:max_len] if max_len else text
