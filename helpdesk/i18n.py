"""Helpers for messages that are rendered in the reader's language when they are turned into text.

Services raise errors carrying `lazy_gettext` strings (`_l("…%(name)s…", name=value)`): `str(exc)`
renders them in the current locale (the request's language; Japanese in CLI commands and jobs).
"""
from __future__ import annotations

from typing import Iterable

from flask_babel.speaklater import LazyString


def _join(separator, parts: tuple) -> str:
    return str(separator).join(str(part) for part in parts)


def lazy_join(separator, parts: Iterable) -> LazyString:
    """`separator.join(parts)` rendered only when used, so lazy parts keep the reader's language."""
    return LazyString(_join, separator, tuple(parts))
