"""Remove personal data from ticket text before it leaves the desk (evidence packs, the dev tracker).

`scrub(text, names=(), detect_names=False)` replaces, in this order: person names found in the text
(with detect_names), dates of birth, postal addresses, e-mail addresses, 12-digit My Number-like
numbers, phone numbers and the given person names with placeholders. Patterns accept full-width digits/letters and the many dashes Japanese text uses,
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


def scrub(text: str | None, names: Iterable[str] = (), *, detect_names: bool = False) -> str:
    """Replace personal data in `text` with placeholders such as [氏名] and [電話番号].

    `detect_names` also masks person names found in the text itself (MeCab 人名 tags, honorifics,
    signature labels; see person_name_spans) — for what leaves the desk (evidence, the tracker).
    """
    if not text:
        return ""
    if detect_names:
        text = mask_person_names(text)
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


# --- person names found in the text itself ------------------------------------------------------
#
# `scrub(..., detect_names=True)` (evidence packs and the tracker webhook) also masks names nobody
# listed: a signature 「髙橋 誠」, 「佐藤様」, 「担当：山﨑」. MeCab (fugashi + unidic-lite) tags proper
# nouns as 人名 (姓/名); that is combined with honorifics (様, さん, 先生, 氏, …) and signature labels
# (担当, 氏名, 記入者, …). Variant kanji the dictionary lacks (髙 → 高, 﨑 → 崎, 邊 → 辺 …) are tagged
# through a same-length normalised copy. A name directly followed by an organisation word (田中クリニック,
# 佐藤薬局) is an organisation's name and stays. Measured by bench/pii_names.py on bench/data/pii_names.jsonl.

#: Variant kanji → the form UniDic knows (one character each, so offsets stay the same).
_VARIANTS = str.maketrans({"髙": "高", "﨑": "崎", "邊": "辺", "邉": "辺", "齋": "斎", "齊": "斉", "濵": "浜",
                           "濱": "浜", "德": "徳", "𠮷": "吉", "槗": "橋", "嵜": "崎", "曻": "昇", "隆": "隆",
                           "神": "神", "祐": "祐", "淸": "清", "廣": "広", "眞": "真", "澤": "沢", "櫻": "桜"})
_HONORIFICS = ("様", "さま", "さん", "先生", "氏", "殿", "君", "くん", "ちゃん")
#: Words before an honorific that are roles, not names (お客様, 担当者様, 皆様, 医師の先生 …).
_NOT_NAMES = frozenset(("お客", "客", "担当", "担当者", "皆", "皆さん", "各位", "利用者", "職員", "患者", "医師",
                        "先生", "御中", "会員", "ご担当", "ご担当者", "業者", "お医者", "薬剤師", "看護師", "事務",
                        "本人", "ご本人", "相手", "先方", "上司", "部長", "課長", "係長", "主任", "所長", "院長",
                        "社長", "店長", "受付", "窓口", "市長", "町長", "村長", "区長", "皆様", "各"))
_LABEL_RE = re.compile(r"(?:担当者?|氏名|お名前|名前|記入者|報告者|差出人|依頼者|連絡者|発信者|作成者|対応者)"
                       r"(?:[ \u3000]*[:：][ \u3000]*|[ \u3000]+)")
#: After a self-introduction or a "call back" request the proper noun before it is a name:
#: 「さくら市役所の山口です」「島田と申します」「折り返しは林までお願いします」.
_INTRO_AFTER = ("です", "と申します", "と申し", "でございます", "までお願い", "まで連絡", "までご連絡")
#: Words after a name that make it an organisation's or a place's name.
_ORG_WORDS = ("クリニック", "医院", "病院", "薬局", "内科", "外科", "整形", "歯科", "眼科", "皮膚科", "小児科",
              "耳鼻", "診療所", "調剤", "薬品", "商事", "産業", "物流", "株式会社", "メディカル", "ファーマ",
              "記念", "市", "町", "村", "区", "郡", "県", "駅", "地区", "通り", "医療", "センター", "会")
_NAME_CHARS = re.compile(r"^[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002ffff々〆ヶ\u30a0-\u30ff\u3041-\u3096]+$")

_tagger = None


def _get_tagger():
    global _tagger
    if _tagger is None:
        import fugashi  # late: only evidence/tracker paths need it (CLI start-up stays fast)

        _tagger = fugashi.Tagger()
    return _tagger


def _tokens(text: str):
    """(start, end, surface, pos1, pos2, pos3, pos4) per token, offsets into `text`."""
    out, pos = [], 0
    for word in _get_tagger()(text):
        pos += len(word.white_space)
        surface = word.surface
        found = text.find(surface, pos)
        if found < 0:  # whitespace MeCab dropped without reporting it
            continue
        pos = found
        f = word.feature
        out.append((pos, pos + len(surface), surface, f.pos1, f.pos2, f.pos3, f.pos4))
        pos += len(surface)
    return out


def _is_person(tok) -> bool:
    return tok[4] == "固有名詞" and tok[5] == "人名"


def _org_follows(text: str, end: int) -> bool:
    rest = text[end:end + 8].lstrip(" \u3000")
    return rest.startswith(_ORG_WORDS)


def person_name_spans(text: str) -> list[tuple[int, int]]:
    """Spans of `text` that are person names (merged, sorted)."""
    if not text:
        return []
    norm = text.translate(_VARIANTS)
    toks = _tokens(norm)
    spans: list[list[int]] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        if _is_person(tok):
            start, end, j = tok[0], tok[1], i + 1
            # 姓 + 名 may be split by a space (not a line break): 「髙橋 誠」.
            while j < len(toks) and (_is_person(toks[j]) or (toks[j][5] == "人名")) and \
                    norm[end:toks[j][0]].strip(" \u3000") == "" and "\n" not in norm[end:toks[j][0]]:
                end = toks[j][1]
                j += 1
            # A given name the dictionary tags as a common noun right after a 姓: 「髙橋 誠」「遠藤明美」.
            if tok[6] == "姓" and j < len(toks) and toks[j][3] == "名詞" and toks[j][4] == "普通名詞" and \
                    _NAME_CHARS.match(toks[j][2]) and len(toks[j][2]) <= 3 and toks[j][2] not in _NOT_NAMES and \
                    norm[end:toks[j][0]] in ("", " ", "\u3000") and not _org_follows(norm, toks[j][1]) and \
                    (j + 1 >= len(toks) or toks[j + 1][3] != "名詞"):
                if toks[j][2] not in _ORG_WORDS and not toks[j][2].startswith(_ORG_WORDS):
                    end = toks[j][1]
                    j += 1
            if not _org_follows(norm, end) and not norm[max(0, start - 4):start].endswith(("株式会社", "(株)", "（株）")):
                spans.append([start, end])
            i = j
            continue
        i += 1
    # Honorifics: the noun run right before 様 / さん / 先生 … is a name unless it is a role word.
    for k, tok in enumerate(toks):
        if tok[2] not in _HONORIFICS or k == 0:
            continue
        j, start = k - 1, None
        while j >= 0 and toks[j][3] == "名詞" and toks[j][4] in ("固有名詞", "普通名詞") and \
                _NAME_CHARS.match(toks[j][2]) and k - j <= 2 and \
                toks[j][2] not in _NOT_NAMES and norm[toks[j][1]:toks[j + 1][0]] in ("", " ", "\u3000"):
            start = toks[j][0]
            j -= 1
        if start is not None:
            word = norm[start:tok[0]].strip()
            if word and word not in _NOT_NAMES and not word.endswith(_ORG_WORDS) and len(word.replace(" ", "")) <= 6:
                spans.append([start, tok[0]])
    # Self-introductions: a proper noun (MeCab often reads surnames as places: 山口, 清水, 島田) or a
    # one-character noun (林, 森, 原) between "の" / a line start and です / と申します / までお願い.
    for k, tok in enumerate(toks):
        if not (tok[3] == "名詞" and _NAME_CHARS.match(tok[2])):
            continue
        if not (tok[4] == "固有名詞" or (len(tok[2]) == 1 and tok[4] == "普通名詞")):
            continue
        if not norm[tok[1]:tok[1] + 8].lstrip(" \u3000").startswith(_INTRO_AFTER):
            continue
        before = norm[:tok[0]].rstrip(" \u3000")
        if len(tok[2]) == 1 and tok[4] == "普通名詞" and not (
                (before.endswith("は") and norm[tok[1]:].startswith("まで"))
                or re.search(r"(?:課|係|所|局|部|室|センター|デスク|役場|役所|院|社|店)の$", before)):
            continue  # 「1行です」「5分です」 are not names; 「林までお願いします」「受付の林です」 are
        if before == "" or before.endswith(("\n", "の", "は", "、", "。", "：", ":")):
            if tok[2] not in _NOT_NAMES and not _org_follows(norm, tok[1]):
                spans.append([tok[0], tok[1]])
    # A signature line: proper noun + space + given name 「山口 花子」 (the 名 is tagged, the 姓 read as a place).
    for k in range(len(toks) - 1):
        a, b = toks[k], toks[k + 1]
        if a[4] == "固有名詞" and b[4] == "固有名詞" and b[5] == "人名" and \
                norm[a[1]:b[0]] in (" ", "\u3000", "") and _NAME_CHARS.match(a[2]) and not _org_follows(norm, b[1]):
            spans.append([a[0], b[1]])
    # Labels: 「担当：山﨑」「氏名：髙橋 誠」 — the name-like run after the label, up to the line's end.
    for m in _LABEL_RE.finditer(norm):
        run = re.match(r"[^\s、。,，（）()「」:：]{1,6}(?:[ \u3000][^\s、。,，（）()「」:：]{1,4})?", norm[m.end():])
        if run and _NAME_CHARS.match(run.group(0).replace(" ", "").replace("\u3000", "")) and \
                not _org_follows(norm, m.end() + run.end()) and run.group(0) not in _NOT_NAMES:
            spans.append([m.end(), m.end() + run.end()])
    spans.sort()
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def mask_person_names(text: str) -> str:
    """`text` with every detected person name replaced by [氏名]."""
    spans = person_name_spans(text)
    if not spans:
        return text
    out, last = [], 0
    for s, e in spans:
        out.append(text[last:s])
        out.append(NAME)
        last = e
    out.append(text[last:])
    return "".join(out)
