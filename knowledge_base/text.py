"""Japanese-aware text handling: normalisation, language detection, tokenizers.

Three tokenizers are available and were measured on bench/data/kb_queries.jsonl (see bench/kb_quality.py):
`ngram` (CJK character 2-grams + Latin words), `morph` (fugashi + unidic-lite content-word lemmas + Latin
words) and `combo` (both, in separate token spaces). DEFAULT_TOKENIZER is the best one measured.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

DEFAULT_TOKENIZER = "reading"

_CJK = r"\u3041-\u309f\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u3006\u30fc"
_KANA_KANJI_RE = re.compile(r"[\u3041-\u309f\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_RUN_RE = re.compile(rf"[{_CJK}]+|[a-z0-9][a-z0-9_.@+-]*[a-z0-9]|[a-z0-9]")
_HIRA_RE = re.compile(r"^[\u3041-\u309f]+$")
_SPACE_RE = re.compile(r"\s+")
_DIGIT_RE = re.compile(r"\d")

#: Latin words that carry no meaning for retrieval.
EN_STOPWORDS = frozenset("""
a an the and or but if then else of to in on at by for with from into onto about as is are was were be been being
am do does did done have has had having i me my we our us you your he she it its they them their this that these those
there here what which who whom whose when where why how can could should would will shall may might must not no nor
so than too very just also any some all each every more most other such only own same again further once both few
please hello hi dear thanks thank regards best kind sincerely get got getting im ive dont cant cannot doesnt didnt
wont isnt arent wasnt one still even now today yesterday tomorrow up down out over under help need want trying tried
""".split())

#: Politeness and greeting phrases of ticket texts (NFKC-normalised, lower-case); removed before tokenizing.
STOP_PHRASES = tuple(sorted({
    "お世話になっております", "お世話になります", "いつもお世話になっております", "よろしくお願いいたします",
    "よろしくお願いします", "宜しくお願いいたします", "宜しくお願いします", "よろしくお願い致します", "お願いいたします",
    "お願い致します", "お願いします", "お手数ですが", "お手数をおかけしますが", "恐れ入りますが", "恐れ入ります",
    "申し訳ありませんが", "申し訳ございませんが", "すみませんが", "すみません", "失礼いたします", "失礼します",
    "ご確認ください", "ご教示ください", "教えてください", "教えて下さい", "助けてください", "至急", "お疲れ様です",
    "お忙しいところ", "ありがとうございます", "どうすればいいですか", "どうすればよいですか", "どうしたらいいですか",
    "どうしたらよいでしょうか", "でしょうか", "ですか", "ください",
}, key=len, reverse=True))
_STOP_PHRASE_RE = re.compile("|".join(re.escape(p) for p in STOP_PHRASES))
#: Name-like lines ("〇〇市 健康課 山田です") in ticket texts.
#: Self-introductions: "…と申します", and a kanji name after の ("健康課の山田です"); symptom words such as
#: "エラーです" are not names and stay.
_SIGNATURE_RE = re.compile(r"[^\s。、!?]{1,20}と申します|(?<=の)[\u4e00-\u9fff]{1,4}(?:です|でございます)(?=$|[。、\s!！])")

#: A small general list of domain synonyms (both directions); used to expand queries at a lower weight.
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("パスワード", "password", "暗証番号", "pw"),
    ("ログイン", "login", "サインイン", "ログオン", "sign"),
    ("ロック", "locked", "lock", "凍結"),
    ("ブラウザ", "browser", "edge", "chrome"),
    ("証明書", "certificate"),
    ("割当", "割り当て", "配分", "allocation"),
    ("納品", "配送", "delivery", "届", "到着"),
    ("廃棄", "破棄", "disposal", "期限切れ", "expired"),
    ("接種", "vaccination", "予防接種"),
    ("医療機関", "clinic", "病院", "クリニック"),
    ("住所", "address", "届け先", "配送先"),
    ("アカウント", "account", "利用者", "ユーザー"),
    # added with the reading space (tuned on bench/data/kb_queries_tuning.jsonl only)
    ("エクセル", "excel", "csv"),
    ("二段階認証", "2段階認証", "two-factor", "2fa", "ワンタイム", "認証コード"),
    ("取り込み", "取込", "インポート", "import", "アップロード", "upload"),
    ("受領", "受け取り", "受取", "receipt"),
    ("削除", "消したい", "消す", "delete", "remove"),
    ("問い合わせ", "問合せ", "連絡先", "サポート", "contact"),
    ("在庫", "stock", "inventory"),
)


def normalize(text: str | None) -> str:
    """NFKC (half-width katakana and full-width digits fold), lower-case, collapse whitespace."""
    if not text:
        return ""
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def detect_lang(text: str) -> str:
    """`ja` when the text contains kana or kanji, else `en`."""
    return "ja" if _KANA_KANJI_RE.search(unicodedata.normalize("NFKC", text or "")) else "en"


def strip_noise(text: str) -> str:
    """Remove greetings, politeness formulas and self-introductions from normalised ticket text."""
    text = _STOP_PHRASE_RE.sub(" ", text)
    return _SIGNATURE_RE.sub(" ", text)


@lru_cache(maxsize=50000)
def _latin_token(word: str) -> str | None:
    word = word.strip("._-+@")
    if not word or word in EN_STOPWORDS:
        return None
    if len(word) == 1 and not word.isdigit():
        return None
    if _DIGIT_RE.search(word):
        return word  # codes such as e1001 stay as typed
    return _stem(word)


@lru_cache(maxsize=20000)
def _stem(word: str) -> str:
    """English Snowball stem ("allocated", "allocation" -> "alloc"), with a plural fold as fallback."""
    stemmer = _stemmer()
    if stemmer is not None:
        return stemmer.stemWord(word)
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


@lru_cache(maxsize=1)
def _stemmer():
    try:
        import snowballstemmer
    except ImportError:  # pragma: no cover - declared dependency; the fold above keeps working without it
        return None
    return snowballstemmer.stemmer("english")


#: Hiragana that, after a kanji/katakana, is a particle or an auxiliary rather than okurigana
#: ("予定を", "登録し"): such pairs straddle a word boundary and only add noise.
_BOUNDARY_KANA = frozenset("をのがはにでともへやかしすさせまなだてた")


def _is_hira(ch: str) -> bool:
    return "\u3041" <= ch <= "\u309f"


def _ngrams(run: str) -> list[str]:
    if len(run) == 1:
        return [run] if not _is_hira(run) else []
    grams = []
    for i in range(len(run) - 1):
        a, b = run[i], run[i + 1]
        if _is_hira(a):  # hiragana-first pairs are inflections and particles ("した", "を登")
            continue
        if _is_hira(b) and b in _BOUNDARY_KANA:
            continue
        grams.append(a + b)
    return grams


def tokens_ngram(text: str) -> list[str]:
    out: list[str] = []
    for run in _RUN_RE.findall(normalize(text)):
        if _KANA_KANJI_RE.match(run) or run[0] in "ー々〆":
            out.extend(_ngrams(run))
        else:
            tok = _latin_token(run)
            if tok:
                out.append(tok)
    return out


@lru_cache(maxsize=1)
def _tagger():
    import fugashi  # optional (test extra): only the `morph`/`combo` tokenizers measured in bench/kb_quality.py

    return fugashi.Tagger()


_CONTENT_POS = frozenset(("名詞", "動詞", "形容詞", "形状詞", "接頭辞", "副詞"))
_WEAK_LEMMAS = frozenset(("する", "為る", "ある", "有る", "居る", "いる", "なる", "成る", "出来る", "できる", "こと", "事",
                          "もの", "物", "ない", "無い", "よう", "様", "いう", "言う", "思う", "これ", "それ", "ため", "為", "時"))


def tokens_morph(text: str) -> list[str]:
    out: list[str] = []
    norm = normalize(text)
    for run in re.split(rf"([{_CJK}]+)", norm):
        if not run:
            continue
        if _KANA_KANJI_RE.search(run) or run[0] in "ー々〆":
            for word in _tagger()(run):
                feat = word.feature
                if getattr(feat, "pos1", None) not in _CONTENT_POS:
                    continue
                lemma = getattr(feat, "lemma", None) or word.surface
                lemma = normalize(lemma.split("-", 1)[0]) or word.surface
                if lemma in _WEAK_LEMMAS or _HIRA_RE.match(lemma) and len(lemma) < 2:
                    continue
                out.append(lemma)
        else:
            for w in _RUN_RE.findall(run):
                tok = _latin_token(w)
                if tok:
                    out.append(tok)
    return out


def tokens_combo(text: str) -> list[str]:
    # Morphological tokens live in their own space ("~" prefix) so they never collide with 2-grams.
    return tokens_ngram(text) + ["~" + t for t in tokens_morph(text) if _KANA_KANJI_RE.search(t)]


# --- readings: ひらがな↔カタカナ and kanji↔kana in one space ----------------------------------------
#: Reading tokens live in their own space ("@" prefix): bigrams of the hiragana reading of each CJK run,
#: long-vowel marks dropped. 「のうひんかくにん」, 「納品確認」 and 「ノウヒン確認」 share them, and so do
#: okurigana variants (割当 / 割り当て → わりあて, 取消 / 取り消し → とりけし) and ブラウザ / ブラウザー / ぶらうざ.
READING_PREFIX = "@"
_KATA_TO_HIRA = {c: c - 0x60 for c in range(0x30A1, 0x30F7)}
_KANA_RUN_RE = re.compile(r"^[\u3041-\u309f\u30a0-\u30ffー]+$")


def to_hiragana(text: str) -> str:
    return text.translate(_KATA_TO_HIRA)


@lru_cache(maxsize=1)
def _reading_tagger():
    """fugashi + unidic-lite, imported on first use; None when not installed (kana-only fallback)."""
    try:
        import fugashi

        return fugashi.Tagger()
    except Exception:  # noqa: BLE001 - missing package or dictionary: readings of kana runs still work
        return None


@lru_cache(maxsize=20000)
def reading_of(run: str) -> str:
    """The hiragana reading of one CJK run (long-vowel marks removed); kanji unread without fugashi."""
    tagger = _reading_tagger()
    if _KANA_RUN_RE.match(run) or tagger is None:
        out = to_hiragana(run) if tagger is not None or _KANA_RUN_RE.match(run) else ""
    else:
        parts = []
        for word in tagger(run):
            kana = getattr(word.feature, "kana", None)
            parts.append(kana if kana and kana != "*" else word.surface)
        out = to_hiragana("".join(parts))
    return out.replace("ー", "")


def tokens_reading(text: str) -> list[str]:
    out: list[str] = []
    for run in _RUN_RE.findall(normalize(text)):
        if not (_KANA_KANJI_RE.match(run) or run[0] in "ー々〆"):
            continue
        r = reading_of(run)
        if len(r) == 1 and not _is_hira(run[0]):
            out.append(READING_PREFIX + r)
        out.extend(READING_PREFIX + r[i:i + 2] for i in range(len(r) - 1))
    return out


def tokens_ngram_reading(text: str) -> list[str]:
    return tokens_ngram(text) + tokens_reading(text)


TOKENIZERS = {"ngram": tokens_ngram, "morph": tokens_morph, "combo": tokens_combo, "reading": tokens_ngram_reading}


def get_tokenizer(name: str | None = None):
    try:
        return TOKENIZERS[name or DEFAULT_TOKENIZER]
    except KeyError:
        raise ValueError(f"unknown tokenizer {name!r}; choose one of {', '.join(TOKENIZERS)}") from None


def synonym_expansions(text: str) -> list[str]:
    """Synonyms of domain words present in the (normalised) text that are not already present."""
    norm = normalize(text)
    extra: list[str] = []
    for group in SYNONYM_GROUPS:
        present = [w for w in group if _contains_word(norm, w)]
        if present:
            extra.extend(w for w in group if w not in present)
    return extra


def _contains_word(norm: str, word: str) -> bool:
    if _KANA_KANJI_RE.search(word):
        return word in norm
    return re.search(rf"(?<![a-z0-9]){re.escape(word)}", norm) is not None
