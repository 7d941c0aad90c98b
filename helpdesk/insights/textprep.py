"""Ticket text → the words that describe the problem (boilerplate, personal data and clutter removed).

Steps: NFKC + lower case; drop greeting, closing, self-introduction, signature and contact lines;
scrub personal data; delete order numbers, lot numbers, codes, dates and times; tokenize with
MeCab (fugashi + unidic-lite) and keep the dictionary forms of content words (nouns, verbs,
adjectives, plus a negation marker, since 届く and 届かない are different problems); map a small
domain thesaurus (synonyms and the English words tickets use) onto one form. Pure Python, no Flask.
"""
from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

from helpdesk.insights.pii import scrub

#: Part of the cache key of prepared texts (insights/service.py): bump it whenever the output changes.
PREP_VERSION = "2"

_LINE_DROP = re.compile(
    r"^(?:"
    r"お世話にな|いつも(?:大変)?お世話|平素より|お疲れ様|お疲れさま|お忙しいところ|失礼いたします|ご担当者?|"
    r"ヘルプデスク(?:\s*ご担当|\s*御中)|.*御中$|"
    r"(?:何卒|どうぞ)?よろしく|宜しく|以上[、。です]|以上$|ご確認のほど|お手数(?:ですが|を?おかけ)|回答お待ち|すみませんがお願い|"
    r"(?:画面|写真|画像|スクリーンショット)(?:の写真)?(?:は|を)?(?:添付|送)(?:の通りです|します|ります)|"
    r"(?:tel|fax|mail|e-?mail|phone|電話|携帯|連絡先|折り?返し先)\s*[:：]|(?:tel|fax|電話|携帯)\s*[0-9(+]|"
    r"hello|hi,|hi$|dear |to whom|thanks|thank you|best regards|kind regards|regards|sincerely|"
    r"[-―ー=＝_~〜*＊.・]{3,}"
    r")",
    re.IGNORECASE,
)
# "〇〇市 健康推進課の山田です。" / "山田と申します" / "佐藤でございます": who is writing, not what is wrong.
# A "…です" line is an introduction only when "…の" or a space and then a name or title (at most 12
# characters) come right before です and no particle が/を/は/も/に is in it: "…届いて紛らわしいです",
# "…になるそうです", "在庫が未着です" and "接種券のPDFは白紙です" describe the problem and are kept.
_SELF_INTRO = re.compile(r"^(?:[^。\n]{0,40}?(?:と申します|でございます|と言います)"
                         r"|[^。\nがをはもに]{0,40}?[の\s][^。\nがをはもにの\s]{1,12}です)[。.]?$")
_SELF_INTRO_INLINE = re.compile(r"[^。\n]{0,40}?(?:と申します|でございます)。")
_MEMO_HEAD = re.compile(r"^[^。\n]{0,50}?(?:様|さん)?より(?:入電|電話|受電)?[。.]?|^[^。\n]{0,40}?から電話あり[。.]?")
_MEMO_TAIL = re.compile(r"(?:折り?返し(?:希望|先)?|対応依頼|要折返し|至急折り?返し|回答期限は本日中|"
                        r"l2へエスカレーション検討|回答は後ほどメールで)[。.]?")
# A line that only names an organisation or a person (signatures, letterheads).
_ORG_LINE = re.compile(r"^[^。、,.!?？！]{0,30}(?:市|町|村|区|課|係|室|センター|医院|クリニック|診療所|病院|支店|"
                       r"株式会社|会社|薬局|役場|部|所|会)(?:\s*[^\s。、]{1,8}){0,2}$")
_CLUTTER = re.compile(
    r"(?:発注番号|注文番号|伝票番号|問い?合わせ番号|受付番号|医療機関コード|ロット(?:番号)?|lot(?: no\.?)?)\s*[:：]?\s*[a-z0-9\-]+"
    r"|\bpo-\d{4}-\d+|\bhd-\d+"
    r"|\d{4}[/年.\-]\d{1,2}[/月.\-]\d{1,2}日?"
    r"|\d{1,2}月\d{1,2}日(?:分)?"
    r"|\d{1,2}[:：]\d{2}(?:頃)?"
    r"|\[(?:氏名|電話番号|メール|個人番号|住所|生年月日)\]"
    r"|[a-z]*\d[a-z0-9\-]{3,}"
)

# A small domain thesaurus: one form for words that tickets use interchangeably, and the
# English words that English tickets use for the same things. Keys are dictionary forms.
SYNONYMS = {
    "凍結": "ロック", "lock": "ロック", "locked": "ロック", "unlock": "ロック",
    "ワンタイム": "認証コード", "otp": "認証コード", "2fa": "認証コード", "passcode": "認証コード",
    "確認コード": "認証コード", "認証番号": "認証コード", "コード": "認証コード", "code": "認証コード",
    "二段階": "二段階", "2段階": "二段階", "二要素": "二段階", "two-factor": "二段階", "factor": "二段階",
    "sms": "ショートメール",
    "password": "パスワード", "パスワ-ド": "パスワード",
    "仮": "初期", "temporary": "初期", "initial": "初期", "初回": "初期", "はじめて": "初期", "初めて": "初期",
    "first": "初期",
    "login": "ログイン", "log": "ログイン", "サインイン": "ログイン", "account": "アカウント", "id": "アカウント",
    "納品": "配送", "配達": "配送", "入荷": "配送", "delivery": "配送", "deliver": "配送", "shipped": "出荷",
    "arrive": "届く", "arrived": "届く", "receive": "届く", "received": "届く", "未着": "届く",
    "schedule": "予定", "計画": "予定", "register": "登録", "registration": "登録",
    "save": "保存", "stock": "在庫", "inventory": "在庫",
    "error": "エラー", "e500": "エラー", "500": "エラー", "不具合": "エラー",
    "upload": "アップロード", "取込": "アップロード", "取り込む": "アップロード", "取り込み": "アップロード",
    "csv": "csv", "record": "記録", "records": "記録", "実績": "記録", "vaccination": "接種",
    "maintenance": "メンテナンス", "email": "メール", "e-mail": "メール", "mail": "メール",
    "reissue": "再発行", "quantity": "数量", "本数": "数量", "数": "数量",
    "タイムアウト": "セッション", "timeout": "セッション", "session": "セッション",
    "フリーズ": "固まる", "freeze": "固まる",
    "ipad": "タブレット", "safari": "ブラウザ",
    # issue 16.2: loan words written in katakana or latin letters, and the noun/verb of one word
    "エクセル": "excel", "化け": "化ける", "受信": "届く", "残数": "数量", "残量": "数量",
}

_KEEP_POS = {"名詞", "動詞", "形容詞", "形状詞", "接頭辞"}
_DROP_POS2 = {"数詞", "人名", "地名"}
_NEGATION = {"ない", "ず", "ぬ", "無い"}
STOP_LEMMAS = frozenset("""
為る 居る 有る 成る 行く 来る 言う 思う 見る 貰う 呉れる 頂く 下さる 致す 申す 御座る 出来る
そう 事 物 方 件 様 さん 時 所 為 中 際 的 御 お ご 度 回 今 後 前 上 下 日 月 年 本日 今日 昨日 明日 今週 先週
願う お願い 教える 確認 対応 問い合わせ 問い 合わせ 連絡 質問 相談 困る 助かる 依頼 申し出 状況 状態
ヘルプ デスク ヘルプデスク 担当 担当者 ご担当者 メモ 電話 受付 入電 折り返し 返す 至急 急ぎ 早急 用件 内容 件名
どう 何 いつ 此れ 其れ 彼 これ それ あれ 分かる 分かり 知る
the a an to of and or is are be was were it i we our my me you your for on in at this that
please can could would will not no but with from by as have has get got when what how does do
""".split())
#: Words nearly every help-desk ticket uses whatever its problem: the screen, an error, a failure to log
#: in, enter, register, save, show or open something, and what this system is about (接種, ワクチン). They stay in the vectors, but a recurring group is
#: never recognised by them alone: a group's core words (clustering._core_words) leave them out, so two
#: tickets sharing only "ログインできない" or "画面にエラーが表示される" are not the same problem. (ログアウト is
#: not generic: being logged out unexpectedly is a symptom of its own.)
GENERIC_WORDS = frozenset("""
ログ イン ログイン 画面 表示 表示_ない エラー 出る 出る_ない 入力 入力_ない 登録 登録_ない
保存 保存_ない 押す ボタン 欄 新しい 良い 悪い 使う 使える 使える_ない 入れる 入れる_ない 開く 開く_ない 見る_ない
仕舞う 操作 方法 場合 必要 利用 システム 出来る_ない 行う 分かる_ない 変える 変わる 変更 分 今回 毎回 何度 全部 一部
職員 他 同じ
""".split())
_TOKEN_FIX = re.compile(r"(?<=[^\x00-\x7f])-.+$")  # パソコン-personal computer, そう-伝聞: the sense tag goes
#: Loan words the dictionary splits in two (ログ + イン): joined back for display ("ログイン", not "ログ・イン").
#: The features keep the split, which is what the clustering constants were chosen with.
JOINED_WORDS = {("ログ", "イン"): "ログイン", ("ログ", "アウト"): "ログアウト", ("再", "設定"): "再設定",
                ("医療", "機関"): "医療機関"}


class _Tagger(threading.local):
    def __init__(self):
        import fugashi  # late: only where tokenising happens

        self.tagger = fugashi.Tagger()


_local = _Tagger.__new__(_Tagger)


def _tagger():
    if not hasattr(_local, "tagger"):
        _Tagger.__init__(_local)
    return _local.tagger


_INTRO_ENDINGS = ("です", "申します", "ございます", "言います")


def _is_intro(text: str) -> bool:
    """`_SELF_INTRO`, with a cheap look at the ending first (the pattern is costly on long lines)."""
    return text.rstrip("。. ").endswith(_INTRO_ENDINGS) and bool(_SELF_INTRO.match(text))


def _drop_sentences(line: str) -> str:
    """Drop the greeting, closing and self-introduction sentences of a line that goes on with the problem
    ("お世話になっております。予約確認メールのリンクが…"): only those sentences go, not the rest of the line."""
    if "。" not in line.rstrip("。"):
        return line
    parts = [p for p in re.split(r"(?<=。)", line) if p.strip()]
    kept = [p for p in parts if not _LINE_DROP.match(p.strip()) and not _is_intro(p.strip())]
    return "".join(kept).strip() if kept else ""


def strip_boilerplate(text: str) -> str:
    """Drop greetings, closings, signatures, contact lines and personal data; keep the problem."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    kept = []
    for number, raw in enumerate(text.split("\n")):
        line = _drop_sentences(raw.strip())
        if not line or _LINE_DROP.match(line):
            continue
        if number > 0 and (_ORG_LINE.match(line) or (len(line) <= 8 and not re.search(r"[。、!?？！]", line))):
            continue
        line = _MEMO_HEAD.sub("", line).strip()
        if not line or _is_intro(line):
            continue
        line = _SELF_INTRO_INLINE.sub("", line)
        line = _MEMO_TAIL.sub("", line)
        kept.append(line)
    text = scrub("\n".join(kept))
    return _CLUTTER.sub(" ", text)


def _lemma(surface: str, lemma: str, pos: list[str]) -> str | None:
    pos1 = pos[0]
    if surface in _NEGATION or (pos1 == "助動詞" and lemma in _NEGATION):
        return "ない"
    if pos1 not in _KEEP_POS or any(p in _DROP_POS2 for p in pos[1:3]):
        return None
    lemma = _TOKEN_FIX.sub("", lemma) if lemma and lemma != "*" else surface
    if lemma.isascii():
        lemma = surface.lower()
    lemma = SYNONYMS.get(lemma, SYNONYMS.get(surface, lemma))
    if lemma in STOP_LEMMAS or len(lemma) == 1 and lemma.isascii() or lemma.isdigit():
        return None
    return lemma


_KEEP_NEGATABLE = frozenset({"ログイン", "ロック", "表示", "保存", "登録"})


@lru_cache(maxsize=200_000)
def tokens(text: str) -> tuple[str, ...]:
    """Content-word dictionary forms of the text (after `strip_boilerplate`)."""
    out: list[str] = []
    previous: str | None = None  # the kept verb/adjective right before, if the last morpheme was one
    # The tagger's text output (surface, reading, kana, lemma, pos-pos-pos, …) is much faster to
    # read than its node objects.
    for line in _tagger().parse(text.replace("\t", " ")).split("\n"):
        fields = line.split("\t")
        if len(fields) < 5:
            continue
        surface, lemma, pos = fields[0], fields[3], fields[4].split("-")
        word = _lemma(surface, lemma, pos)
        if word == "ない":
            if previous:
                out.append(previous + "_ない")  # 届く_ない: the negated verb as one feature
            previous = None
            continue
        if word is None:
            # 出来る / れる / ます between a verb and its negation keep the verb in reach
            if pos[0] not in ("助動詞", "動詞"):
                previous = None
            continue
        out.append(word)
        # A verb, an adjective or a noun that takes する (受信, 反映, 送信) can be negated: 受信できない.
        negatable = pos[0] in ("動詞", "形容詞") or word in _KEEP_NEGATABLE or (pos[0] == "名詞" and "サ変可能" in pos)
        previous = word if negatable else None
    return tuple(out)


def prepare(subject: str, body: str) -> str:
    """Return the cleaned token string of a ticket (space-separated), ready for a vectoriser."""
    cleaned = strip_boilerplate(f"{subject or ''}\n{body or ''}")
    return " ".join(tokens(cleaned))
