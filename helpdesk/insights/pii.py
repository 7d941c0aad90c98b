"""Remove personal data from ticket text before it leaves the desk (evidence packs, the dev tracker).

`scrub(text, names=())` replaces, in this order: dates of birth, postal addresses, e-mail
addresses, 12-digit My Number-like numbers, phone numbers and the given person names with
placeholders. Patterns accept full-width digits/letters and the many dashes Japanese text uses,
and the text outside the matches is kept exactly as written. Pure Python, no Flask.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Iterable

NAME = "[氏名]"
PHONE = "[電話番号]"
EMAIL = "[メール]"
MY_NUMBER = "[個人番号]"
ADDRESS = "[住所]"
BIRTH = "[生年月日]"

D = "[0-9０-９]"
DASH = "[-‐‑‒–—―−ｰー－]"
SEP = rf"(?:{DASH}|[ \u3000])"
_SP = r"[ \t\u3000]*"

PREFECTURES = (
    "北海道|青森県|岩手県|宮城県|秋田県|山形県|福島県|茨城県|栃木県|群馬県|埼玉県|千葉県|東京都|神奈川県|"
    "新潟県|富山県|石川県|福井県|山梨県|長野県|岐阜県|静岡県|愛知県|三重県|滋賀県|京都府|大阪府|兵庫県|"
    "奈良県|和歌山県|鳥取県|島根県|岡山県|広島県|山口県|徳島県|香川県|愛媛県|高知県|福岡県|佐賀県|"
    "長崎県|熊本県|大分県|宮崎県|鹿児島県|沖縄県"
)
_KANJI_NUM = "[一二三四五六七八九十〇]"

_DATE = (
    rf"(?:(?:明治|大正|昭和|平成|令和|[MTSHRmtshr]\.?){_SP}(?:{D}{{1,2}}|元){_SP}年{_SP}{D}{{1,2}}{_SP}月{_SP}{D}{{1,2}}{_SP}日?"
    rf"|{D}{{4}}{_SP}[年/.\-－]{_SP}{D}{{1,2}}{_SP}[月/.\-－]{_SP}{D}{{1,2}}{_SP}日?"
    rf"|{D}{{1,2}}/{D}{{1,2}}/{D}{{4}}"
    rf"|{D}{{1,2}}{_SP}(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?{_SP}{D}{{4}})"
)
_BIRTH_LABEL = r"(?:生年月日|誕生日|生まれ|DOB|D\.O\.B\.?|[Dd]ate of [Bb]irth|[Bb]irth ?[Dd]ate|[Bb]orn(?: on)?)"
_BIRTH_RE = re.compile(rf"{_BIRTH_LABEL}{_SP}(?:[:：は]|は、)?{_SP}{_DATE}", re.IGNORECASE)
# Era dates before 令和 (昭和, 平成, 大正, 明治) are birth dates in this domain; 令和 dates are not.
_ERA_RE = re.compile(rf"(?:明治|大正|昭和|平成){_SP}(?:{D}{{1,2}}|元){_SP}年(?:{_SP}{D}{{1,2}}{_SP}月(?:{_SP}{D}{{1,2}}{_SP}日?)?)?")

_POSTAL = rf"(?:〒|郵便番号[:：]?|[Pp]ostal [Cc]ode:?|ZIP:?|Zip:?){_SP}{D}{{3}}{DASH}?{D}{{4}}"
_STREET = (rf"(?:{PREFECTURES})[^\s、。,，「」()（）\[\]]{{1,30}}?(?:{D}+|{_KANJI_NUM}+)"
           rf"(?:{_SP}(?:丁目|番地|番|号|{DASH}|の){_SP}(?:{D}+|{_KANJI_NUM}+)?)+(?:[^\s、。,，「」()（）]{{0,20}}?(?:{D}+号室|{D}+[FＦ階]))?")
_POSTAL_RE = re.compile(rf"{_POSTAL}(?:{_SP}(?:{_STREET}))?")
_STREET_RE = re.compile(_STREET)

_EMAIL_RE = re.compile(r"[A-Za-z0-9Ａ-Ｚａ-ｚ０-９._%+\-＿．]+[@＠][A-Za-z0-9Ａ-Ｚａ-ｚ０-９\-．.]+[.．][A-Za-zＡ-Ｚａ-ｚ]{2,}")
_MY_NUMBER_RE = re.compile(rf"(?<![0-9０-９]){D}{{4}}{SEP}?{D}{{4}}{SEP}?{D}{{4}}(?![0-9０-９])")
_PHONE_RE = re.compile(
    rf"(?<![0-9０-９])(?:(?:\+|＋){_SP}[8８][1１]{_SP}{SEP}?{_SP}[(（]?[0０]?[)）]?{_SP}{D}{{1,4}}|[(（]?[0０]{D}{{1,4}}[)）]?)"
    rf"{_SP}{SEP}?{_SP}{D}{{1,4}}{_SP}{SEP}?{_SP}{D}{{4}}(?![0-9０-９])"
)


def _digits(text: str) -> int:
    return sum(1 for ch in text if unicodedata.normalize("NFKC", ch).isdigit())


def _phone(match: re.Match) -> str:
    # 10–11 national digits (plus the 81); anything else is a code or a count, not a phone number.
    n = _digits(match.group(0))
    return PHONE if 10 <= n <= 13 else match.group(0)


def _char_class(ch: str) -> str:
    forms = {ch, unicodedata.normalize("NFKC", ch)}
    if "!" <= ch <= "~":
        forms.add(chr(ord(ch) + 0xFEE0))
    if ch.isalpha() and ch.isascii():
        forms |= {ch.upper(), ch.lower(), chr(ord(ch.upper()) + 0xFEE0), chr(ord(ch.lower()) + 0xFEE0)}
    return "[" + "".join(re.escape(f) for f in sorted(forms)) + "]"


def _name_pattern(name: str) -> str | None:
    chars = [ch for ch in unicodedata.normalize("NFKC", name) if not ch.isspace()]
    if len(chars) < 2:
        return None
    # Spaces (ASCII, full-width, several) may sit anywhere between the characters of a name.
    return rf"[ \u3000]*".join(_char_class(ch) for ch in chars)


def _name_regex(names: Iterable[str]) -> re.Pattern | None:
    variants: set[str] = set()
    for name in names:
        if not name or not name.strip():
            continue
        name = unicodedata.normalize("NFKC", name).strip()
        variants.add(name)
        parts = [p for p in re.split(r"[ \u3000,]+", name) if p]
        if len(parts) > 1:
            variants.add(" ".join(reversed(parts)))  # "Taro Yamada" / "Yamada Taro"
            variants.update(p for p in parts if len(p) >= 2)  # a surname alone: 「山田です」
    patterns = [p for p in (_name_pattern(v) for v in sorted(variants, key=len, reverse=True)) if p]
    if not patterns:
        return None
    ascii_edge = r"(?<![A-Za-z])(?:{})(?![a-z])"
    return re.compile(ascii_edge.format("|".join(patterns)), re.IGNORECASE)


def scrub(text: str | None, names: Iterable[str] = ()) -> str:
    """Replace personal data in `text` with placeholders such as [氏名] and [電話番号]."""
    if not text:
        return ""
    out = _BIRTH_RE.sub(BIRTH, text)
    out = _ERA_RE.sub(BIRTH, out)
    out = _POSTAL_RE.sub(ADDRESS, out)
    out = _STREET_RE.sub(ADDRESS, out)
    out = _EMAIL_RE.sub(EMAIL, out)
    out = _MY_NUMBER_RE.sub(MY_NUMBER, out)
    out = _PHONE_RE.sub(_phone, out)
    name_re = _name_regex(names)
    if name_re is not None:
        out = name_re.sub(NAME, out)
    return out
