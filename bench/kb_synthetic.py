"""Synthetic manual articles for benchmarks (written to a temp dir at run time, never into manuals/)."""
from __future__ import annotations

import random
import shutil
from pathlib import Path

_JA_NOUNS = ["ワクチン", "医療機関", "希望量", "割当", "配送", "納品", "接種記録", "廃棄", "在庫", "冷凍庫", "バイアル",
             "帳票", "CSV", "ログイン", "パスワード", "利用者", "権限", "締切", "数量", "予約", "住所", "請求", "集計",
             "確認画面", "一覧画面", "検索条件", "登録ボタン", "エラーメッセージ", "通知", "担当者", "自治体", "卸業者"]
_JA_VERBS = ["登録します", "確認します", "修正します", "削除します", "出力します", "入力します", "検索します", "承認します",
             "取り消します", "保存します", "印刷します", "送信します"]
_EN_NOUNS = ["vaccine", "clinic", "quantity", "allocation", "delivery", "record", "disposal", "stock", "freezer", "vial",
             "report", "CSV file", "login", "password", "user", "permission", "deadline", "reservation", "address",
             "invoice", "summary", "confirmation screen", "list screen", "search filter", "Register button",
             "error message", "notification", "municipality", "wholesaler"]
_EN_VERBS = ["register", "confirm", "correct", "delete", "export", "enter", "search", "approve", "cancel", "save",
             "print", "send"]
ROLES = ["municipality", "clinic", "wholesaler", "common"]


def _ja_sentence(rng: random.Random) -> str:
    a, b = rng.sample(_JA_NOUNS, 2)
    return f"{a}の{b}を{rng.choice(_JA_VERBS)}。"


def _en_sentence(rng: random.Random) -> str:
    a, b = rng.sample(_EN_NOUNS, 2)
    return f"{rng.choice(_EN_VERBS).capitalize()} the {a} on the {b} screen."


def _write(path: Path, meta: dict, body: str) -> None:
    tags = ", ".join(meta["tags"])
    path.write_text(
        f"---\nslug: {meta['slug']}\nrole: {meta['role']}\ntitle: \"{meta['title']}\"\nlang: {meta['lang']}\n"
        f"tags: [{tags}]\nversion: 1\nupdated: 2026-11-01\n---\n{body}", encoding="utf-8")


def build_corpus(real_manuals: Path, target: Path, extra: int = 190, seed: int = 7) -> int:
    """Copy the real manuals into `target` and add `extra` synthetic slugs (ja + en). Returns slug count."""
    rng = random.Random(seed)
    if real_manuals.is_dir():
        shutil.copytree(real_manuals, target, dirs_exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    for n in range(extra):
        role = ROLES[n % 4]
        slug = f"synthetic-{n:03d}"
        folder = target / role
        folder.mkdir(exist_ok=True)
        ja_nouns = rng.sample(_JA_NOUNS, 3)
        en_nouns = rng.sample(_EN_NOUNS, 3)
        ja_body = f"# {ja_nouns[0]}と{ja_nouns[1]}の操作\n\n" + "".join(
            f"## {rng.choice(_JA_NOUNS)}について\n\n" + "\n".join(f"{i}. {_ja_sentence(rng)}" for i in range(1, 7)) + "\n\n"
            for _ in range(4))
        en_body = f"# Working with {en_nouns[0]} and {en_nouns[1]}\n\n" + "".join(
            f"## About the {rng.choice(_EN_NOUNS)}\n\n" + "\n".join(f"{i}. {_en_sentence(rng)}" for i in range(1, 7)) + "\n\n"
            for _ in range(4))
        _write(folder / f"{slug}.ja.md", {"slug": slug, "role": role, "lang": "ja", "tags": ja_nouns,
                                            "title": f"{ja_nouns[0]}の{ja_nouns[2]}を管理する"}, ja_body)
        _write(folder / f"{slug}.en.md", {"slug": slug, "role": role, "lang": "en", "tags": en_nouns,
                                            "title": f"Managing the {en_nouns[0]} {en_nouns[2]}"}, en_body)
    return len({p.name.split(".")[0] for p in target.glob("*/*.md")})


SAMPLE_TICKETS = [
    "お世話になっております。〇〇市健康課の山田です。パスワードを忘れてしまいログインできません。至急対応をお願いします。",
    "ワクチンが届いたのですが、納品確認の画面で受領ボタンが押せません。よろしくお願いいたします。",
    "希望量を入力しようとしたところ、締切を過ぎていますと表示されました。どうすればよいでしょうか。",
    "期限切れのワクチンを廃棄したので報告したいのですが、画面がわかりません。",
    "配送先の住所が変わったので変更したいです。医療機関が移転しました。",
    "Hello, I cannot log in because my account is locked after several attempts. Please help.",
    "The vaccines arrived today but the delivery confirmation screen shows an error. Thanks in advance.",
    "接種記録を入力しても反映されません。ブラウザはEdgeです。画面が真っ白になることもあります。",
]
