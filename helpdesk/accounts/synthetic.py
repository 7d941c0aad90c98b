"""Realistic synthetic organisations and people (Japanese names), shared by `seed` and the import benchmark."""
from __future__ import annotations

import random
from dataclasses import dataclass

from helpdesk.common import PREFECTURES

SURNAMES = ("佐藤 鈴木 高橋 田中 伊藤 渡辺 山本 中村 小林 加藤 吉田 山田 佐々木 山口 松本 井上 木村 林 斎藤 清水 "
            "山崎 森 池田 橋本 阿部 石川 山下 中島 石井 小川 前田 岡田 長谷川 藤田 後藤 近藤 村上 遠藤 青木 坂本 "
            "斉藤 福田 太田 西村 藤井 金子 岡本 藤原 中野 三浦 原田 中川 松田 竹内 小野 田村 中山 和田 石田 森田").split()
GIVEN = ("翔太 大輔 健一 誠 拓也 直樹 和也 達也 浩二 隆 亮 悠斗 陽翔 蓮 湊 健太 修 博之 剛 真一 "
         "恵子 直子 明美 さやか 由美 陽子 美咲 愛 結衣 葵 真由美 久美子 智子 裕子 麻衣 彩 千尋 舞 優子 京子").split()
TOWN_STEMS = ("青葉 桜台 緑ヶ丘 東山 西原 南野 北浜 中央 若松 朝日 富士見 松原 泉 川口 小松 白石 高松 大和 "
              "豊田 清水 本町 栄 旭 日向 美原 港 山手 花園 城南 城北 浜松 大野 長浜 高田 新田 上野 下川 平和").split()
CLINIC_SUFFIX = ("内科クリニック", "こどもクリニック", "医院", "診療所", "ファミリークリニック", "総合病院", "整形外科",
                 "耳鼻科クリニック", "レディースクリニック", "在宅クリニック")
WHOLESALER_STEMS = ("東日本", "西日本", "中部", "九州", "北海道", "東北", "関西", "四国", "中国", "関東", "北陸", "沖縄")
WHOLESALER_SUFFIX = ("メディカル流通株式会社", "薬品株式会社", "医薬品卸株式会社", "ファーマ株式会社", "薬業株式会社")
ROMAN = ("sato suzuki takahashi tanaka ito watanabe yamamoto nakamura kobayashi kato yoshida yamada sasaki "
         "yamaguchi matsumoto inoue kimura hayashi saito shimizu").split()


@dataclass(frozen=True)
class Org:
    code: str
    name: str
    kind: str
    prefecture: str
    parent_code: str | None = None


def jis_code(prefecture_index: int, serial: int) -> str:
    """A 6-digit code shaped like a JIS local-government code: 2-digit prefecture, 3 digits, check digit."""
    body = f"{prefecture_index + 1:02d}{serial:03d}"
    total = sum(int(d) * w for d, w in zip(body, (6, 5, 4, 3, 2)))
    return body + str((11 - total % 11) % 10)


def make_orgs(n: int, rng: random.Random) -> list[Org]:
    """About 10% municipalities (spread over the 47 prefectures), 85% clinics under them, 5% wholesalers."""
    n = max(n, 3)
    n_muni = max(1, min(n // 10, len(PREFECTURES) * 899))
    n_whole = max(1, n // 20)
    n_clinic = max(1, n - n_muni - n_whole)
    orgs: list[Org] = []
    municipalities: list[Org] = []
    for i in range(n_muni):
        pref_index = i % len(PREFECTURES)
        serial = 100 + i // len(PREFECTURES)  # unique within the prefecture
        prefecture = PREFECTURES[pref_index]
        stem = TOWN_STEMS[(i * 7 + pref_index) % len(TOWN_STEMS)]
        suffix = ("市", "町", "村", "区")[rng.randrange(4)] if i >= len(PREFECTURES) else "市"
        org = Org(jis_code(pref_index, serial), f"{prefecture}{stem}{suffix}", "municipality", prefecture)
        municipalities.append(org)
    for j in range(n_clinic):
        parent = municipalities[j % len(municipalities)]
        serial = j // len(municipalities) + 1
        name = f"{rng.choice(TOWN_STEMS)}{rng.choice(SURNAMES)}{rng.choice(CLINIC_SUFFIX)}"
        orgs.append(Org(f"{parent.code}{serial:04d}", name, "clinic", parent.prefecture, parent.code))
    wholesalers = [Org(f"W{k + 1:05d}", f"{rng.choice(WHOLESALER_STEMS)}{rng.choice(SURNAMES)}"
                                        f"{rng.choice(WHOLESALER_SUFFIX)}", "wholesaler",
                       PREFECTURES[rng.randrange(len(PREFECTURES))]) for k in range(n_whole)]
    return municipalities + orgs + wholesalers


def person_name(rng: random.Random) -> str:
    return f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}"


def email_for(i: int, org: Org, rng: random.Random) -> str:
    domain = {"municipality": "city", "clinic": "clinic", "wholesaler": "med"}[org.kind]
    return f"{rng.choice(ROMAN)}.{i:06d}@{org.code.lower()}.{domain}.example.jp"


def staff_roles(i: int) -> str:
    """Roles for the i-th synthetic help-desk staff member: mostly agents, some specialists and supervisors."""
    return ("supervisor agent", "specialist", "agent", "agent", "agent", "agent", "agent", "agent")[i % 8]
