"""Write bench/data/pii_names.jsonl: labelled Japanese ticket texts with person names (issue 13.11).

Each line: {"text": …, "names": [surface forms that must be masked, every occurrence],
"decoys": [organisation / place / product strings that must stay]}. Names are written the way they
appear in help-desk mail: signatures, 様 / さん / 先生 / 氏, 担当: labels, self-introductions,
variant kanji (髙橋, 山﨑, 渡邊, 齋藤, 濵田, 德永, 𠮷田), names next to organisation names, and
clinics / pharmacies named after a surname (decoys: an organisation, not a person). A fixed seed keeps
the file stable; re-run only to change it, and say so in the commit.

    .venv/bin/python bench/make_pii_names_set.py
"""
from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "pii_names.jsonl"

SURNAMES = ["髙橋", "山﨑", "渡邊", "齋藤", "濵田", "德永", "𠮷田", "佐藤", "鈴木", "田中", "伊藤", "中村", "小林",
            "加藤", "吉田", "山田", "松本", "井上", "木村", "清水", "山口", "池田", "橋本", "阿部", "石川", "前田",
            "藤田", "小川", "岡田", "後藤", "長谷川", "村上", "近藤", "坂本", "遠藤", "青木", "藤井", "西村",
            "福田", "太田", "三浦", "藤原", "岡本", "松田", "中川", "原田", "小野", "田村", "竹内", "金子",
            "和田", "石井", "上田", "森田", "柴田", "酒井", "工藤", "横山", "宮本", "内田", "安藤", "島田",
            "谷口", "大野", "丸山", "今井", "柳澤", "林", "森", "原", "菅野", "五十嵐", "佐々木", "宇佐美"]
GIVEN = ["誠", "太郎", "花子", "一郎", "美咲", "健太", "由美", "翔", "直樹", "陽子", "大輔", "恵", "隆", "裕子",
         "拓也", "明美", "修", "さくら", "ひろみ", "和也", "智子", "浩二", "真由美", "健", "彩", "亮介", "香織"]
ORGS = ["さくら市役所", "みどり町健康福祉課", "あおば市保健センター", "ひかり区役所", "東山村役場",
        "中央医療卸株式会社", "北日本薬品", "こすもす物流", "VDS運用事務局", "はなみずき診療所"]
DEPTS = ["健康推進課", "予防接種係", "総務課", "配送センター", "受付"]
ISSUES = [
    "VDSにログインできません。初期パスワードを入力してもエラーになります。",
    "希望数量の入力画面で保存ボタンが押せません。",
    "納品確認の画面に今週の配送分が表示されていません。",
    "接種記録の一括登録でCSVの取込エラーが出ます。",
    "パスワード再設定のメールが届きません。",
    "アカウントがロックされたので解除をお願いします。",
    "配送先住所の変更手続きを教えてください。",
    "廃棄報告の数量を誤って登録してしまいました。",
    "医療機関の追加登録でコードが重複していると表示されます。",
    "配送予定の登録画面が真っ白になります。",
    "Edgeで証明書エラーが出て画面が開きません。",
    "割当量の調整依頼をしたいのですが、どの画面から行えばよいですか。",
]
TITLES = ["課長", "係長", "主任", "事務長", "看護師長", "薬剤師"]
ORG_SUFFIX_DECOYS = ["クリニック", "医院", "内科クリニック", "薬局", "歯科医院", "薬品株式会社", "整形外科"]

TEMPLATES = [
    # (template, which placeholders are names)
    "お世話になっております。{org}の{s1}です。\n{issue}\n\n{org}\n{s1} {g1}",
    "{s1}様\n\nいつもお世話になっております。ヘルプデスクの{s2}です。\n{issue}\nご確認をお願いいたします。",
    "{issue}\n{s1}さんから電話で問い合わせがありました。",
    "担当：{s1}\n{issue}",
    "氏名：{s1} {g1}\n所属：{org}\n{issue}",
    "{org}の{s1}と申します。{issue}",
    "{issue}\n--\n{org} {dept}\n{title} {s1}{g1}\nTEL 03-1234-5678",
    "{decoy}から問い合わせ。{s1}先生より「{issue}」とのことです。",
    "{s1}（{org}）より：{issue}",
    "{issue}折り返しは{s1}までお願いします。",
    "{s1}様、{s2}様\n{issue}",
    "前回対応した{s1}です。{issue}",
    "{org}{dept}の{s1}{g1}さんから、{issue}",
    "記入者 {s1}\n{issue}",
    "{issue}　{org}　{s1}",
    "Re: {issue}\n{s1}様\nご連絡ありがとうございます。ヘルプデスクの{s2}です。手順をご案内します。",
    "{issue}（報告者：{s1} {g1}）",
    "{decoy}の件で{s1}さんより連絡がありました。{issue}",
    "{s1}{g1}です。{issue}よろしくお願いします。",
    "{org}\n{dept}\n{s1}\n\n{issue}",
    "{issue}なお、{decoy}の{s1}先生にも同じ症状が出ています。",
    "{s1}氏から依頼：{issue}",
    "{issue}\n\n{s1} {g1}（{org}）",
    "{org}の{title}、{s1}様よりお電話。{issue}",
]
NO_NAME_TEMPLATES = [
    "{issue}",
    "{org}からの問い合わせです。{issue}",
    "{decoy}から電話がありました。{issue}",
    "{issue}\n{org} {dept}",
    "担当者様\n{issue}お客様にご案内をお願いします。",
]


def make(rng: random.Random) -> dict:
    s1, s2 = rng.sample(SURNAMES, 2)
    s3 = rng.choice([s for s in SURNAMES if s not in (s1, s2) and len(s) >= 2])
    g1 = rng.choice(GIVEN)
    tpl = rng.choice(TEMPLATES)
    decoy = s3 + rng.choice(ORG_SUFFIX_DECOYS)
    fields = dict(s1=s1, s2=s2, g1=g1, org=rng.choice(ORGS), dept=rng.choice(DEPTS), issue=rng.choice(ISSUES),
                  title=rng.choice(TITLES), decoy=decoy)
    text = tpl.format(**fields)
    names = []
    for key in ("s1", "s2"):
        if "{" + key + "}" in tpl:
            names.append(fields[key])
    if "{g1}" in tpl:
        names.append(g1)
    decoys = [fields["org"]] if "{org}" in tpl else []
    if "{decoy}" in tpl:
        decoys.append(decoy)
    return {"text": text, "names": names, "decoys": decoys}


def make_plain(rng: random.Random) -> dict:
    s3 = rng.choice([s for s in SURNAMES if len(s) >= 2])
    fields = dict(org=rng.choice(ORGS), dept=rng.choice(DEPTS), issue=rng.choice(ISSUES),
                  decoy=s3 + rng.choice(ORG_SUFFIX_DECOYS))
    tpl = rng.choice(NO_NAME_TEMPLATES)
    decoys = [v for k, v in fields.items() if "{" + k + "}" in tpl and k in ("org", "decoy")]
    return {"text": tpl.format(**fields), "names": [], "decoys": decoys}


def main() -> None:
    rng = random.Random(20260113)
    rows = [make(rng) for _ in range(150)] + [make_plain(rng) for _ in range(30)]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} texts, {sum(len(r['names']) for r in rows)} names, "
          f"{sum(len(r['decoys']) for r in rows)} decoys -> {OUT}")


if __name__ == "__main__":
    main()
