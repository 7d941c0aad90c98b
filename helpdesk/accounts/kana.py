"""Readings (yomi) of Japanese names, for finding a caller by how the name sounds.

A reading is stored as full-width katakana without spaces (「田中 太郎」 → 「タナカタロウ」). What an
agent types — hiragana, katakana or half-width katakana — is folded the same way by `fold`, so
タナカ / たなか / ﾀﾅｶ all find 田中. When the import file gives no reading, `guess` takes the
tokenizer's (MeCab via fugashi + unidic-lite) reading of each word; it is a guess (names have many
readings), which is why an explicit reading in the CSV wins.
"""
from __future__ import annotations

import functools
import re
import unicodedata

from flask_babel import lazy_gettext as _l
from helpdesk.accounts.models import Organisation, User

_HIRAGANA = re.compile(r"[\u3041-\u3096]")
#: Katakana, the prolonged sound mark and the middle dot: what a folded reading may contain.
_READING = re.compile(r"^[\u30a1-\u30fa\u30fc\u30fb]+$")
_KANA_CHAR = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u30fc\uff66-\uff9f]")


def fold(text: str | None) -> str:
    """NFKC (half-width → full-width), hiragana → katakana, spaces and middle dots removed."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    text = _HIRAGANA.sub(lambda m: chr(ord(m.group(0)) + 0x60), text)
    return re.sub(r"[\s\u30fb・]+", "", text)


def is_kana(text: str | None) -> bool:
    """True when `text` is nothing but kana (after folding): a query to match against readings."""
    folded = fold(text)
    return bool(folded) and bool(_READING.match(folded))


def has_kana(text: str | None) -> bool:
    return bool(text) and bool(_KANA_CHAR.search(unicodedata.normalize("NFKC", text)))


def normalize_reading(value: str | None) -> str | None:
    """A reading given by a person (CSV, form): folded; None when empty; ValueError when not kana."""
    folded = fold(value)
    if not folded:
        return None
    if not _READING.match(folded):
        raise ValueError(_l("読み（カナ）はひらがなかカタカナで入力してください。"))
    return folded[:200]


@functools.lru_cache(maxsize=1)
def _tagger():
    import fugashi  # late: only when a reading must be guessed (import-users, new contacts)

    return fugashi.Tagger()


def guess(name: str | None) -> str | None:
    """The tokenizer's reading of `name` in katakana, or None when a word has no known reading."""
    text = unicodedata.normalize("NFKC", name or "").strip()
    if not text:
        return None
    try:
        tagger = _tagger()
    except Exception:  # fugashi / the dictionary missing: no guess, the name search still works
        return None
    parts = []
    for word in tagger(text):
        surface = word.surface
        if not surface.strip():
            continue
        kana = getattr(word.feature, "kana", None)
        if kana and kana != "*":
            parts.append(kana)
        elif has_kana(surface) and is_kana(surface):
            parts.append(surface)
        elif re.fullmatch(r"[\W_]+", surface):
            continue
        else:
            return None  # a word without a reading (Latin letters, an unknown kanji): no partial guesses
    reading = fold("".join(parts))
    return reading[:200] if reading and _READING.match(reading) else None


def fill_missing(session, batch: int = 1000) -> int:
    """Guess the readings of users and organisations that have none; returns how many were filled.

    For databases filled before readings existed (`helpdesk accounts fill-kana`) and for the demo data.
    Names without a guessable reading stay NULL and are tried again on the next run.
    """
    from sqlalchemy import select, update

    filled = 0
    for model in (User, Organisation):
        last_id = 0
        while True:
            rows = session.execute(select(model.id, model.name).where(model.name_kana.is_(None), model.id > last_id)
                                   .order_by(model.id).limit(batch)).all()
            if not rows:
                break
            last_id = rows[-1].id
            changes = [{"id": r.id, "name_kana": reading} for r in rows if (reading := guess(r.name))]
            if changes:
                session.execute(update(model), changes)
                filled += len(changes)
    return filled
