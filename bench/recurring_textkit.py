"""Shared helpers of the recurring-set generators: voices, boilerplate, names, typos, dates.

Used by `make_recurring_set.py` (labelled set), `recurring_make_holdout.py` (held-out set) and
`recurring_speed.py` (100,000 synthetic tickets). Only wording around the problem lives here;
the problems themselves are written per set.
"""
from __future__ import annotations

import datetime as dt
import random

SURNAMES = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山田",
            "佐々木", "山口", "松本", "井上", "木村", "林", "斎藤", "清水", "山崎", "森", "池田", "橋本",
            "阿部", "石川", "山下", "中島", "石井", "小川", "前田", "岡田", "長谷川", "藤田", "後藤", "近藤"]
GIVEN = ["太郎", "花子", "一郎", "美咲", "健太", "由美", "翔", "陽子", "大輔", "恵", "誠", "真由美",
         "拓也", "直子", "和也", "裕子", "浩", "さくら", "亮", "智子"]
ROMAJI = ["Sato", "Suzuki", "Takahashi", "Tanaka", "Ito", "Watanabe", "Yamamoto", "Nakamura",
          "Kobayashi", "Kato", "Nguyen", "Garcia", "Smith", "Kim"]
CITIES = ["札幌", "盛岡", "仙台", "秋田", "前橋", "川越", "柏", "八王子", "横浜", "新潟", "金沢", "甲府", "松本",
          "岐阜", "浜松", "豊田", "津", "大津", "堺", "姫路", "奈良", "岡山", "福山", "松山", "高知", "久留米",
          "佐世保", "熊本", "大分", "宮崎", "那覇", "旭川", "いわき", "宇都宮", "船橋"]
CLINIC_TYPES = ["内科クリニック", "医院", "診療所", "こどもクリニック", "内科・小児科", "病院", "ファミリークリニック"]
WHOLESALERS = ["東邦薬品", "メディセオ", "スズケン", "アルフレッサ", "バイタルネット", "中北薬品", "フォレストメディカル"]
DEPTS = ["健康推進課", "保健センター", "健康福祉部 予防接種係", "保健所 感染症対策課", "健康づくり課"]

GREET_KEIGO = ["お世話になっております。", "いつも大変お世話になっております。", "お忙しいところ恐れ入ります。",
               "平素よりお世話になっております。", "お疲れ様です。"]
GREET_POLITE = ["こんにちは。", "お問い合わせします。", "すみません、質問です。", "", "", "ご担当者様"]
CLOSE_KEIGO = ["何卒よろしくお願い申し上げます。", "よろしくお願いいたします。", "お手数ですがよろしくお願いいたします。",
               "ご確認のほどよろしくお願いいたします。"]
CLOSE_POLITE = ["よろしくお願いします。", "お願いします。", "以上です。", ""]
POLITE_JOIN = ["{c}のですが、{a}", "{c}ので困っています。{a}", "{c}という状況です。{a}", "{c}件でご連絡しました。{a}",
               "{c}ようです。{a}"]
CASUAL_JOIN = ["{c}んだけど、どうしたらいい？", "{c}。急ぎで見てもらえますか", "{c}んですけど…", "{c}。なんとかしてほしい",
               "{c}んだが、どうなってるの？"]
MEMO_JOIN = ["{c}とのこと。", "{c}との申し出。", "{c}との問い合わせ。"]
MEMO_TAIL = ["折り返し希望。", "対応依頼。", "至急折り返し。", "L2へエスカレーション検討。", "回答は後ほどメールで。"]


def trend_weights(trend: str, weeks: int) -> list[float]:
    if trend == "rising":
        return [1 + 0.6 * i for i in range(weeks)]
    if trend == "falling":
        return [1 + 0.6 * (weeks - 1 - i) for i in range(weeks)]
    if trend == "burst":
        return [0.3] * (weeks - 3) + [4, 6, 5]
    return [1.0] * weeks


def to_fullwidth(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


_HALF_KANA = {}
for _code in range(0xFF66, 0xFF9E):
    import unicodedata as _ud

    _full = _ud.normalize("NFKC", chr(_code))
    if len(_full) == 1:
        _HALF_KANA[_full] = chr(_code)


def to_halfwidth_kana(text: str) -> str:
    return "".join(_HALF_KANA.get(ch, ch) for ch in text)


class Writer:
    """Turn hand-written problem clauses into tickets in many voices, with realistic clutter."""

    def __init__(self, rng: random.Random, *, end: dt.date, weeks: int, prefix: str):
        self.rng = rng
        self.end = end
        self.weeks = weeks
        self.prefix = prefix
        self.counter = 0
        self.orgs = {kind: [self._make_org(kind) for _ in range(25)] for kind in ("municipality", "clinic", "wholesaler")}

    # -- people and organisations -------------------------------------------------------
    def _make_org(self, kind: str) -> tuple[str, str]:
        r = self.rng
        if kind == "municipality":
            return f"{r.randint(1, 47):02d}{r.randint(1000, 9999)}", f"{r.choice(CITIES)}市 {r.choice(DEPTS)}"
        if kind == "clinic":
            return f"C{r.randint(10**8, 10**9 - 1)}", f"{r.choice(SURNAMES)}{r.choice(CLINIC_TYPES)}"
        return f"W{r.randint(10000, 99999)}", f"{r.choice(WHOLESALERS)}株式会社 {r.choice(CITIES)}支店"

    def person(self) -> tuple[str, str]:
        return self.rng.choice(SURNAMES), self.rng.choice(GIVEN)

    def phone(self) -> str:
        r = self.rng
        form = r.choice(["03-{a}-{b}", "0{c}-{d}-{b}", "090-{a}-{b}", "080{a}{b}", "+81-90-{a}-{b}"])
        text = form.format(a=r.randint(1000, 9999), b=r.randint(1000, 9999), c=r.randint(11, 99), d=r.randint(100, 999))
        return to_fullwidth(text) if r.random() < 0.25 else text

    def clutter(self) -> str:
        """An order number, date, lot number or ticket number that has nothing to do with the problem."""
        r = self.rng
        options = [f"発注番号：PO-{r.randint(2025, 2026)}-{r.randint(100000, 999999)}",
                   f"（{r.randint(9, 11)}月{r.randint(1, 28)}日分）",
                   f"ロット番号 {r.choice('ABCFKMT')}{r.choice('ABCFKMT')}{r.randint(1000, 9999)}",
                   f"医療機関コード {r.randint(1000000, 9999999)}",
                   f"{r.randint(2025, 2026)}/{r.randint(1, 12)}/{r.randint(1, 28)} {r.randint(8, 18)}:{r.randint(0, 59):02d}頃",
                   f"問い合わせ番号 HD-{r.randint(1, 999999):06d}"]
        return r.choice(options)

    # -- text noise ----------------------------------------------------------------------
    def typo(self, text: str) -> str:
        r = self.rng
        if len(text) < 8 or r.random() > 0.18:
            return text
        i = r.randrange(2, len(text) - 2)
        if r.random() < 0.5:
            return text[:i] + text[i + 1:]  # dropped character
        return text[:i] + text[i] + text[i:]  # doubled character

    def widths(self, text: str) -> str:
        r = self.rng.random()
        if r < 0.2:
            return to_fullwidth(text)
        if r < 0.3:
            return to_halfwidth_kana(text)
        return text

    # -- tickets -------------------------------------------------------------------------
    def created_at(self, trend: str) -> str:
        r = self.rng
        week = r.choices(range(self.weeks), weights=trend_weights(trend, self.weeks))[0]
        start = self.end - dt.timedelta(days=7 * (self.weeks - week))
        day = start + dt.timedelta(days=r.choice([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 6]))
        moment = dt.datetime(day.year, day.month, day.day, r.randint(8, 19), r.randint(0, 59), r.randint(0, 59),
                             tzinfo=dt.timezone(dt.timedelta(hours=9)))
        return moment.isoformat()

    def next_id(self) -> str:
        self.counter += 1
        return f"{self.prefix}-{self.counter:05d}"

    def compose(self, kind: str, clause: str, details: list[str], asks: list[str] | None,
                subject: str) -> tuple[str, str, str]:
        """Return (channel, subject, body) for one ticket in a random voice; asks=None: clause is a full text."""
        r = self.rng
        raw = asks is None
        code, org_name = r.choice(self.orgs[kind])
        self._last_org = (kind, code)
        sur, given = self.person()
        clause = self.typo(clause)
        detail = " ".join(r.sample(details, k=min(len(details), r.choice([0, 1, 1, 2])))) if details else ""
        ask = r.choice(asks) if asks else ""
        polite = (lambda: clause) if raw else (lambda: r.choice(POLITE_JOIN).format(c=clause, a=ask))
        clutter = self.clutter() if r.random() < 0.4 else ""
        voice = r.choices(["keigo", "polite", "casual", "memo"], weights=[3, 4, 2, 3])[0]
        if voice == "keigo":
            channel = "email"
            sep = r.choice(["", " ", "　"])
            lines = [f"{org_name}", f"ヘルプデスク ご担当者様", "", r.choice(GREET_KEIGO),
                     f"{org_name}の{sur}{sep}{given}でございます。" if r.random() < 0.5 else f"{org_name}の{sur}です。",
                     "", polite()]
            if detail:
                lines.append(detail)
            if clutter:
                lines.append(clutter)
            lines += ["", r.choice(CLOSE_KEIGO), "", "――――――――――", f"{org_name}", f"{sur}{sep}{given}",
                      f"TEL：{self.phone()}", f"Mail: {r.choice(['info', 'kenko', 'yobou', 'staff'])}{r.randint(1, 99)}@example.lg.jp"]
            body = "\n".join(lines[2:] if r.random() < 0.5 else lines)
        elif voice == "polite":
            channel = r.choice(["web", "web", "web", "api"])
            parts = [r.choice(GREET_POLITE), polite(), detail, clutter,
                     r.choice(CLOSE_POLITE)]
            if r.random() < 0.4:
                parts.append(f"{org_name} {sur}")
            body = "\n".join(p for p in parts if p)
        elif voice == "casual":
            channel = "web"
            parts = [clause if raw else r.choice(CASUAL_JOIN).format(c=clause), clutter, r.choice(["", f"{sur}", f"連絡先 {self.phone()}"])]
            body = "\n".join(p for p in parts if p)
        else:
            channel = "phone"
            parts = [r.choice(["【電話受付】", "[入電]", "電話メモ：", ""]) + f"{org_name}の{sur}様より入電。",
                     ("用件：" + clause) if raw else r.choice(MEMO_JOIN).format(c=clause), detail, clutter,
                     r.choice(MEMO_TAIL), f"折り返し先：{self.phone()}"]
            body = "\n".join(p for p in parts if p)
            subject = r.choice([subject, f"【電話】{subject}", f"{org_name}より：{subject}"])
        return channel, self.widths(subject) if r.random() < 0.3 else subject, self.widths(body) if r.random() < 0.15 else body

    def compose_english(self, kind: str, text: str) -> tuple[str, str, str]:
        r = self.rng
        name = r.choice(ROMAJI)
        code, org_name = r.choice(self.orgs[kind])
        self._last_org = (kind, code)
        body = "\n".join([r.choice(["Hello,", "Hi,", "Dear help desk,", "To whom it may concern,"]), "", text, "",
                          r.choice(["Thanks.", "Best regards,", "Kind regards,", "Thank you in advance."]),
                          f"{name} ({org_name})", f"Phone: {self.phone()}"])
        subject = text.split(".")[0].split(":")[0][:70]
        return r.choice(["email", "web"]), subject, body

    def ticket(self, group: str | None, kind: str, channel: str, subject: str, body: str, trend: str) -> dict:
        last = getattr(self, "_last_org", None)
        code = last[1] if last and last[0] == kind else self.rng.choice(self.orgs[kind])[0]
        return {"external_id": self.next_id(), "subject": subject, "body": body, "org_code": code,
                "org_kind": kind, "channel": channel, "created_at": self.created_at(trend), "group": group}

    def group_tickets(self, name: str, spec: dict) -> list[dict]:
        r = self.rng
        kinds = [k for k, w in spec["roles"].items() if w > 0]
        weights = [spec["roles"][k] for k in kinds]
        english = list(spec.get("english") or [])
        rows = []
        for i in range(spec["size"]):
            kind = r.choices(kinds, weights=weights)[0]
            if english and i % 9 == 4:
                channel, subject, body = self.compose_english(kind, english.pop(0))
            else:
                clause = spec["clauses"][i % len(spec["clauses"])] if i < len(spec["clauses"]) else r.choice(spec["clauses"])
                if r.random() < 0.25 and len(spec["clauses"]) > 1:  # two ways of saying it in one ticket
                    other = r.choice([c for c in spec["clauses"] if c != clause])
                    clause = clause + "。" + other
                channel, subject, body = self.compose(kind, clause, spec["details"], spec["asks"],
                                                      r.choice(spec["subjects"]))
            rows.append(self.ticket(name, kind, channel, subject, body, spec["trend"]))
        return rows

    def noise_ticket(self, subject: str, body: str, kind: str) -> dict:
        r = self.rng
        if body.isascii():
            channel, _, text = self.compose_english(kind, body)
            return self.ticket(None, kind, channel, subject, text, "stable")
        channel, subj, text = self.compose(kind, body, [], None, subject)
        return self.ticket(None, kind, channel, subj, text, "stable")
