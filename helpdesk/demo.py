"""The demo data set: a few prefectures' municipalities with their clinics, wholesalers, users in every role."""
from __future__ import annotations

from sqlalchemy import func, select

from helpdesk import audit
from helpdesk.accounts.models import Organisation, User
from helpdesk.accounts.passwords import hash_password
from helpdesk.audit import Actor

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


def load_demo(session) -> list[tuple[str, str]]:
    """Insert the demo organisations and users if the database has no users; return (role, login) pairs."""
    logins = [(roles.split()[0], email) for email, _, _, roles in USERS]
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
    for email, name, org_code, roles in USERS:
        session.add(User(email=email, name=name, organisation_id=by_code[org_code].id if org_code else None,
                         roles=roles, password_hash=password_hash, must_change_password=False))
    audit.record(session, Actor.system("demo"), "demo.loaded", "database", None,
                 {"organisations": len(ORGS), "users": len(USERS)})
    session.commit()
    extra = _optional_demo_tickets()
    if extra is not None:
        extra(session)
    return logins


def _optional_demo_tickets():
    from helpdesk._optional import import_optional

    module = import_optional("helpdesk.tickets.demo")
    return getattr(module, "load_demo_tickets", None) if module else None
