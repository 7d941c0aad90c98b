"""The demo data set: a few prefectures' municipalities with their clinics, wholesalers, users in every role."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from helpdesk import audit
from helpdesk.accounts.models import Organisation, User
from helpdesk.accounts.passwords import hash_password
from helpdesk.audit import Actor
from helpdesk.common import utcnow
from helpdesk.tickets.demo import load_demo_tickets
from helpdesk.accounts.kana import fill_missing
from helpdesk.insights import service as insights, trends
from helpdesk.insights.jobs import refresh_all
from helpdesk.insights.models import Problem

DEMO_PASSWORD = "Demo-Passw0rd!"

ORGS = [
    # code, name, kind, prefecture, parent code
    ("131016", "東京都千代田区", "municipality", "東京都", None),
    ("131130", "東京都渋谷区", "municipality", "東京都", None),
    ("141003", "神奈川県横浜市", "municipality", "神奈川県", None),
    ("271004", "大阪府大阪市", "municipality", "大阪府", None),
    ("011002", "北海道札幌市", "municipality", "北海道", None),
    ("1310160001", "千代田内科クリニック", "clinic", "東京都", "131016"),
    ("1310160002", "神田こども医院", "clinic", "東京都", "131016"),
    ("1311300001", "渋谷さくら診療所", "clinic", "東京都", "131130"),
    ("1410030001", "横浜みなと病院", "clinic", "神奈川県", "141003"),
    ("1410030002", "港北ファミリークリニック", "clinic", "神奈川県", "141003"),
    ("2710040001", "なにわ中央医院", "clinic", "大阪府", "271004"),
    ("0110020001", "札幌北クリニック", "clinic", "北海道", "011002"),
    ("W0001", "東日本メディカル流通株式会社", "wholesaler", "東京都", None),
    ("W0002", "関西薬品販売株式会社", "wholesaler", "大阪府", None),
    ("W0003", "北海道医薬品卸株式会社", "wholesaler", "北海道", None),
    # More of the four prefectures; several have only invited users (the outreach list is not empty).
    ("131041", "東京都新宿区", "municipality", "東京都", None),
    ("141305", "神奈川県川崎市", "municipality", "神奈川県", None),
    ("142042", "神奈川県鎌倉市", "municipality", "神奈川県", None),
    ("271403", "大阪府堺市", "municipality", "大阪府", None),
    ("272078", "大阪府高槻市", "municipality", "大阪府", None),
    ("012025", "北海道函館市", "municipality", "北海道", None),
    ("1310410001", "新宿よつや内科", "clinic", "東京都", "131041"),
    ("1310410002", "西新宿ファミリークリニック", "clinic", "東京都", "131041"),
    ("1413050001", "川崎中央病院", "clinic", "神奈川県", "141305"),
    ("1420420001", "鎌倉ゆいがはま診療所", "clinic", "神奈川県", "142042"),
    ("2714030001", "堺みなみクリニック", "clinic", "大阪府", "271403"),
    ("2720780001", "高槻こども医院", "clinic", "大阪府", "272078"),
    ("0120250001", "函館ベイサイドクリニック", "clinic", "北海道", "012025"),
    ("W0004", "中部ファーマ物流株式会社", "wholesaler", "神奈川県", None),
]

USERS = [
    # email, name, org code (None = BPO staff), roles
    ("admin@helpdesk.example.jp", "管理 太郎", None, "admin supervisor"),
    ("supervisor@helpdesk.example.jp", "監督 花子", None, "supervisor agent"),
    ("agent1@helpdesk.example.jp", "受付 一郎", None, "agent"),
    ("agent2@helpdesk.example.jp", "応対 美咲", None, "agent"),
    ("l2@helpdesk.example.jp", "専門 健", None, "specialist"),
    ("po@helpdesk.example.jp", "企画 由美", None, "product_owner"),
    ("chiyoda@city.example.jp", "佐藤 健一", "131016", "requester"),
    ("shibuya@city.example.jp", "鈴木 恵子", "131130", "requester"),
    ("yokohama@city.example.jp", "高橋 誠", "141003", "requester"),
    ("clinic@chiyoda-naika.example.jp", "田中 直子", "1310160001", "requester"),
    ("kanda@kodomo.example.jp", "伊藤 大輔", "1310160002", "requester"),
    ("minato@hospital.example.jp", "渡辺 明美", "1410030001", "requester"),
    ("naniwa@clinic.example.jp", "山本 翔太", "2710040001", "requester"),
    ("logistics@east-medical.example.jp", "中村 拓也", "W0001", "requester"),
    ("kansai@yakuhin.example.jp", "小林 さやか", "W0002", "requester"),
]

#: Demo users who have not logged in yet (no password: they activate through a reset link).
INVITED = [
    ("shinjuku@city.example.jp", "加藤 由美子", "131041", "03-5273-0001"),
    ("yotsuya@naika.example.jp", "吉田 浩二", "1310410001", "03-3351-0002"),
    ("nishishinjuku@family.example.jp", "山田 千尋", "1310410002", "03-3342-0003"),
    ("kawasaki@city.example.jp", "佐々木 隆", "141305", "044-200-0004"),
    ("kawasaki-chuo@hospital.example.jp", "山口 舞", "1413050001", "044-222-0005"),
    ("kamakura@city.example.jp", "松本 亮", "142042", "0467-23-0006"),
    ("yuigahama@clinic.example.jp", "井上 葵", "1420420001", "0467-24-0007"),
    ("sakai@city.example.jp", "木村 剛", "271403", "072-228-0008"),
    ("sakai-minami@clinic.example.jp", "林 結衣", "2714030001", "072-229-0009"),
    ("takatsuki@city.example.jp", "清水 修", "272078", "072-674-0010"),
    ("hakodate@city.example.jp", "森 彩", "012025", "0138-21-0011"),
    ("chubu@pharma.example.jp", "池田 直樹", "W0004", "045-300-0012"),
]

#: A user locked out after repeated failures (shows on the user page and the dashboard).
LOCKED = ("locked@takatsuki-kodomo.example.jp", "阿部 真一", "2720780001", "072-675-0013")
#: Demo users who have not logged in yet although they have a password (e.g. a letter not yet opened).
NEVER_LOGGED_IN = {"kanda@kodomo.example.jp", "naniwa@clinic.example.jp", "kansai@yakuhin.example.jp"}


def load_demo(session) -> list[tuple[str, str]]:
    """Insert the demo organisations and users if the database has no users; return (role, login) pairs."""
    logins = [(roles.split()[0], email) for email, _, _, roles in USERS] + [("locked", LOCKED[0])]
    if session.scalar(select(func.count(User.id))):
        return logins
    by_code: dict[str, Organisation] = {}
    for code, name, kind, prefecture, parent in ORGS:
        org = Organisation(code=code, name=name, kind=kind, prefecture=prefecture,
                           parent_id=by_code[parent].id if parent else None)
        session.add(org)
        session.flush()
        by_code[code] = org
    password_hash = hash_password(DEMO_PASSWORD)
    now = utcnow()
    for i, (email, name, org_code, roles) in enumerate(USERS):
        seen = None if email in NEVER_LOGGED_IN else now - dt.timedelta(days=1 + i % 9, hours=i)
        session.add(User(email=email, name=name, organisation_id=by_code[org_code].id if org_code else None,
                         roles=roles, password_hash=password_hash, must_change_password=False,
                         state="activated" if seen else "invited", last_login_at=seen,
                         activated_at=seen - dt.timedelta(days=3) if seen else None,
                         phone=f"03-0000-{i + 1:04d}" if org_code else None))
    for email, name, org_code, phone in INVITED:
        session.add(User(email=email, name=name, organisation_id=by_code[org_code].id, roles="requester",
                         password_hash=None, must_change_password=True, phone=phone,
                         created_at=now - dt.timedelta(days=14)))
    email, name, org_code, phone = LOCKED
    session.add(User(email=email, name=name, organisation_id=by_code[org_code].id, roles="requester",
                     password_hash=password_hash, must_change_password=False, phone=phone, failed_logins=5,
                     locked_at=now - dt.timedelta(minutes=5), locked_until=None))
    fill_missing(session)  # name readings (カナ) for the caller search
    audit.record(session, Actor.system("demo"), "demo.loaded", "database", None,
                 {"organisations": len(ORGS), "users": len(USERS) + len(INVITED) + 1})
    session.commit()
    load_demo_tickets(session)
    return logins


def prepare_insights(session) -> dict:
    """Compute what the product owner's pages show, so the first visit meets data, not "press 再集計".

    Runs the nightly insights pass (recurring groups, trend rollup) when it has never run, and turns
    the largest recurring group into a candidate problem when there is none yet. A second demo start
    on the same database finds both and does nothing.
    """
    done = {"refreshed": False, "problem": None}
    if trends.rollup_state(session) is None or not insights.list_groups(session):
        refresh_all()
        done["refreshed"] = True
    if not session.scalar(select(func.count(Problem.id))):
        groups = insights.list_groups(session)
        if groups:
            problem = insights.promote_group(session, groups[0].id, Actor.system("demo"))
            done["problem"] = problem.id
    return done
