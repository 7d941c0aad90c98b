"""Helpers for messages that are rendered in the reader's language when they are turned into text.

Services raise errors carrying `lazy_gettext` strings (`_l("…%(name)s…", name=value)`): `str(exc)`
renders them in the current locale (the request's language; Japanese in CLI commands and jobs).
"""
from __future__ import annotations

from typing import Iterable

from flask_babel import gettext
from flask_babel.speaklater import LazyString


def _join(separator, parts: tuple) -> str:
    return str(separator).join(str(part) for part in parts)


def lazy_join(separator, parts: Iterable) -> LazyString:
    """`separator.join(parts)` rendered only when used, so lazy parts keep the reader's language."""
    return LazyString(_join, separator, tuple(parts))


def dump(message) -> str | dict:
    """A message as JSON data that can be shown later in the reader's language.

    A `lazy_gettext` string becomes {"msgid": …, "params": {…}} (parameters as text); anything else
    becomes its text. `render()` turns either back into text.
    """
    if isinstance(message, LazyString) and message._func is gettext and len(message._args) == 1:
        return {"msgid": message._args[0], "params": {k: str(v) for k, v in message._kwargs.items()}}
    return str(message)


def render(stored) -> str:
    """The text of a message kept by `dump()` (or a plain string kept before), in the current locale."""
    if isinstance(stored, dict) and "msgid" in stored:
        return gettext(stored["msgid"], **(stored.get("params") or {}))
    return str(stored)
