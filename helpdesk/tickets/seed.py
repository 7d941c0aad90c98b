"""Realistic synthetic tickets in bulk (COPY on PostgreSQL, chunked executemany elsewhere).

`seed_tickets(session, n, rng=, progress=)` draws Japanese ticket texts from per-category, per-role
templates, spreads creation over the last year (older tickets mostly closed, recent ones open),
adds replies and internal notes to some, and writes the timeline events a live ticket would have.
One million tickets take about a minute on PostgreSQL.
"""
from __future__ import annotations

import datetime as dt
import random
from typing import Callable

from sqlalchemy import func, insert, select, text

from helpdesk.accounts.models import Organisation, User
from helpdesk.common import PREFECTURES, utcnow
from helpdesk.text import normalize
from helpdesk.tickets.models import Category, Comment, Ticket, TicketEvent
from helpdesk.accounts.passwords import hash_password
from helpdesk.tickets.service import ensure_categories

CHUNK = 20_000

# --- texts ---------------------------------------------------------------------------------

SUBJECTS: dict[str, list[str]] = {
    "login": ["ログインできません", "初期パスワードでログインできない", "ログイン画面でエラーが表示される",
              "IDを入力してもログインできない", "アカウントがロックされました", "二段階認証のコードが届かない",
              "ログイン後に画面が真っ白になる", "担当者変更でログインIDが分からない"],
    "password": ["パスワードを忘れました", "パスワード再設定メールが届かない", "パスワードの有効期限切れ",
                 "パスワード変更ができない", "再設定リンクが無効と表示される"],
    "browser": ["画面が正しく表示されない", "推奨ブラウザを教えてください", "証明書エラーが表示される",
                "LGWAN端末から接続できない", "ボタンを押しても反応しない", "印刷レイアウトが崩れる"],
    "allocation": ["割当数量の確認をお願いします", "ワクチン割当の追加申請について", "割当結果が反映されていない",
                   "割当量の調整方法が分からない", "次回の割当予定を知りたい"],
    "delivery": ["納品予定日が表示されない", "配送先住所の変更について", "納品数量が注文と違う",
                 "配送状況を確認したい", "納品完了の登録ができない", "配送予定の登録方法"],
    "vaccination_records": ["接種記録の入力方法", "接種実績が集計に反映されない", "接種記録を修正したい",
                            "接種回数の入力でエラーになる", "CSVで接種記録を一括登録したい"],
    "disposal": ["廃棄報告の方法を教えてください", "期限切れワクチンの廃棄登録", "廃棄数量を訂正したい",
                 "温度逸脱による廃棄の報告"],
    "data_correction": ["登録内容の修正依頼", "医療機関情報の訂正", "誤って登録したデータの削除",
                        "希望数量を誤入力しました", "担当者情報を更新したい"],
    "system_error": ["システムエラーが発生しました", "保存時にエラーコードが表示される", "画面がタイムアウトする",
                     "CSVアップロードでエラー", "処理中のまま画面が進まない"],
    "other": ["操作マニュアルの入手方法", "問い合わせ窓口の受付時間", "研修会の日程について", "その他のお問い合わせ"],
}

DETAILS: dict[str, list[str]] = {
    "login": ["初期パスワードを入力すると「IDまたはパスワードが違います」と表示されます。",
              "何度か試したところアカウントがロックされてしまいました。", "昨日まではログインできていました。",
              "ログインボタンを押しても同じ画面に戻ってしまいます。", "ログインができません。至急対応をお願いします。"],
    "password": ["パスワード再設定のメールが届きません。迷惑メールフォルダも確認しました。",
                 "パスワードを変更しようとすると条件を満たしていないと表示されます。",
                 "パスワードの有効期限が切れたと表示され、先に進めません。"],
    "browser": ["Edgeで開くとレイアウトが崩れて入力欄が表示されません。", "Chromeでは問題ありませんが、庁内端末のIEモードでは動きません。",
                "証明書の警告が出て画面が開けません。", "印刷プレビューで表が途中で切れてしまいます。"],
    "allocation": ["今回の割当数量が想定より少ないため、追加の申請方法を教えてください。",
                   "割当結果の画面に前回の数量が表示されたままです。", "管内医療機関への配分方法を確認したいです。"],
    "delivery": ["本日納品予定でしたがまだ届いていません。", "納品された箱数が登録内容と一致しません。",
                 "配送先の住所が移転前のままになっています。", "納品完了を登録しようとするとエラーになります。"],
    "vaccination_records": ["接種記録を入力しても一覧に表示されません。", "接種日を誤って登録してしまいました。",
                            "CSVファイルを取り込むと3行目でエラーになります。", "集計画面の接種回数が実績と合いません。"],
    "disposal": ["有効期限切れのバイアルを廃棄したので報告したいです。", "冷蔵庫の故障で温度逸脱があり、廃棄が必要です。",
                 "廃棄報告の数量を間違えて登録しました。"],
    "data_correction": ["医療機関の所在地が誤って登録されています。", "希望数量を100のところ1000と入力してしまいました。",
                        "退職した担当者のアカウントを削除したいです。"],
    "system_error": ["保存ボタンを押すとエラーコード E{code} が表示されます。", "画面が固まり、しばらくするとタイムアウトします。",
                     "500エラーが表示されました。", "処理中の表示のまま10分以上経過しています。"],
    "other": ["操作説明会の資料はどこで入手できますか。", "問い合わせの受付時間を教えてください。", "マニュアルの最新版を確認したいです。"],
}

ROLE_OPENINGS = {
    "municipality": ["{org}の予防接種担当です。", "{org}健康推進課よりお問い合わせします。", "{org}でVDSを担当しております。"],
    "clinic": ["{org}の事務担当です。", "{org}の看護師です。", "{org}で接種を担当しています。"],
    "wholesaler": ["{org}物流部の者です。", "{org}の配送管理担当です。", "{org}営業所よりご連絡します。"],
}
CLOSINGS = ["よろしくお願いいたします。", "ご確認をお願いします。", "至急ご対応いただけますと幸いです。", "折り返しご連絡ください。", ""]
REPLIES = ["お問い合わせありがとうございます。マニュアルの該当ページをご案内いたします。",
           "ご不便をおかけしております。担当部署にて確認いたします。",
           "アカウントのロックを解除しました。再度ログインをお試しください。",
           "パスワード再設定のご案内をお送りしました。", "ご指摘の不具合を確認し、開発チームに連絡しました。",
           "データを修正いたしました。画面を更新してご確認ください。"]
REQUESTER_REPLIES = ["ありがとうございます。解決しました。", "まだエラーが出ます。", "確認しました。引き続きよろしくお願いします。"]
NOTES = ["L2に確認中。再現手順を共有済み。", "同様の問い合わせが今週多い。", "先方担当者へ電話で確認済み。", "開発チケット起票済み。"]

MUNICIPALITY_NAMES = ["中央市", "北町", "南市", "東村", "西区", "青葉市", "桜町", "緑区", "若葉市", "港町", "山田村", "川辺市"]
CLINIC_SUFFIXES = ["内科クリニック", "こどもクリニック", "診療所", "医院", "総合病院", "ファミリークリニック"]
CLINIC_PREFIXES = ["さくら", "あおば", "ひかり", "みどり", "中央", "駅前", "山手", "ひまわり", "つばさ", "けやき"]
WHOLESALER_NAMES = ["メディカル流通", "薬品販売", "医薬品卸", "ヘルスケア物流", "ファーマ"]
FAMILY = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山口"]
GIVEN = ["健一", "恵子", "誠", "直子", "大輔", "明美", "翔太", "拓也", "さやか", "由美", "陽子", "浩"]

CATEGORY_WEIGHTS = {"login": 22, "password": 14, "browser": 9, "allocation": 10, "delivery": 12,
                    "vaccination_records": 12, "disposal": 4, "data_correction": 7, "system_error": 6, "other": 4}
ROLE_CATEGORY_BIAS = {"wholesaler": {"delivery": 5.0, "vaccination_records": 0.05, "disposal": 0.2},
                      "clinic": {"allocation": 0.4, "vaccination_records": 1.8},
                      "municipality": {"allocation": 2.5, "delivery": 0.5}}
RESPONSE_HOURS = {"P1": 1, "P2": 4, "P3": 8, "P4": 24}
RESOLUTION_HOURS = {"P1": 4, "P2": 24, "P3": 72, "P4": 120}


def _ensure_people(session, rng: random.Random) -> tuple[list[tuple], list[int]]:
    """(organisations with their requester ids, staff ids); creates a small population if none exists."""
    if not session.scalar(select(func.count(Organisation.id))):
        _create_orgs(session, rng)
    staff = [u.id for u in session.scalars(select(User).where(
        or_roles(("agent", "specialist", "supervisor")))).all()]
    if not staff:
        from helpdesk.accounts.passwords import hash_password

        hashed = hash_password("Seed-Passw0rd!")
        for i in range(30):
            roles = "specialist" if i < 5 else ("supervisor agent" if i < 7 else "agent")
            session.add(User(email=f"seed-agent{i + 1}@helpdesk.example.jp",
                             name=f"{rng.choice(FAMILY)} {rng.choice(GIVEN)}", roles=roles,
                             password_hash=hashed, must_change_password=False, state="activated"))
        session.flush()
        staff = [u.id for u in session.scalars(select(User).where(
            or_roles(("agent", "specialist", "supervisor")))).all()]
    orgs = session.execute(select(Organisation.id, Organisation.kind, Organisation.name)).all()
    requesters: dict[int, list[int]] = {}
    for user_id, org_id in session.execute(select(User.id, User.organisation_id)
                                           .where(User.organisation_id.is_not(None))):
        requesters.setdefault(org_id, []).append(user_id)
    if not requesters:
        _create_requesters(session, orgs, rng)
        for user_id, org_id in session.execute(select(User.id, User.organisation_id)
                                               .where(User.organisation_id.is_not(None))):
            requesters.setdefault(org_id, []).append(user_id)
    session.commit()
    return [(o.id, o.kind, o.name, requesters.get(o.id, [])) for o in orgs], staff


def or_roles(roles):
    from sqlalchemy import or_

    return or_(*[User.roles.contains(r) for r in roles])


def _create_orgs(session, rng: random.Random, municipalities: int = 120, clinics_each: int = 8,
                 wholesalers: int = 30) -> None:
    rows = []
    for m in range(municipalities):
        pref_no = m % 47
        code = f"{pref_no + 1:02d}{m:03d}{rng.randint(0, 9)}"
        rows.append(dict(code=code, name=f"{PREFECTURES[pref_no]}{rng.choice(MUNICIPALITY_NAMES)}{m}",
                         kind="municipality", prefecture=PREFECTURES[pref_no]))
    session.execute(insert(Organisation), rows)
    cities = session.execute(select(Organisation.id, Organisation.code, Organisation.prefecture)
                             .where(Organisation.kind == "municipality")).all()
    rows = []
    for city in cities:
        for c in range(clinics_each):
            rows.append(dict(code=f"{city.code}{c + 1:04d}", kind="clinic", prefecture=city.prefecture,
                             name=f"{rng.choice(CLINIC_PREFIXES)}{rng.choice(CLINIC_SUFFIXES)}{c + 1}",
                             parent_id=city.id))
    for w in range(wholesalers):
        rows.append(dict(code=f"W{w + 1:05d}", kind="wholesaler", prefecture=rng.choice(PREFECTURES),
                         name=f"{rng.choice(['東日本', '西日本', '中部', '九州', '北海道'])}{rng.choice(WHOLESALER_NAMES)}{w + 1}株式会社"))
    session.execute(insert(Organisation), rows)
    session.flush()


def _create_requesters(session, orgs, rng: random.Random) -> None:
    hashed = hash_password("Seed-Passw0rd!")
    rows = []
    for org_id, kind, name in orgs:
        for i in range(2):
            rows.append(dict(email=f"seed-{org_id}-{i}@org.example.jp", name=f"{rng.choice(FAMILY)} {rng.choice(GIVEN)}",
                             organisation_id=org_id, roles="requester", password_hash=hashed,
                             must_change_password=False, state="activated"))
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(User), rows[start:start + CHUNK])
    session.flush()


def _pick_category(rng: random.Random, role: str) -> str:
    bias = ROLE_CATEGORY_BIAS.get(role, {})
    codes = list(CATEGORY_WEIGHTS)
    weights = [CATEGORY_WEIGHTS[c] * bias.get(c, 1.0) for c in codes]
    return rng.choices(codes, weights)[0]


def make_text(rng: random.Random, category: str, role: str, org_name: str) -> tuple[str, str]:
    """A subject and body a requester of `role` might write about `category`."""
    subject = rng.choice(SUBJECTS[category])
    detail = rng.choice(DETAILS[category]).replace("{code}", str(rng.randint(1000, 9999)))
    opening = rng.choice(ROLE_OPENINGS.get(role, ["{org}です。"])).format(org=org_name)
    body = "\n".join(p for p in (opening, detail, rng.choice(CLOSINGS)) if p)
    return subject, body


def _status_for(rng: random.Random, age_days: float) -> str:
    if age_days > 14:
        return rng.choices(["closed", "resolved", "open", "pending", "escalated"], [90, 5, 2, 2, 1])[0]
    return rng.choices(["new", "open", "pending", "escalated", "resolved", "closed"], [20, 30, 12, 8, 22, 8])[0]


TICKET_COLUMNS = ("id", "subject", "body", "requester_id", "organisation_id", "role", "channel", "category_id",
                  "priority", "status", "tier", "assignee_id", "first_response_due_at", "resolution_due_at",
                  "first_response_at", "resolved_at", "closed_at", "sla_state", "handle_seconds",
                  "resolved_on_first_contact", "csat_score", "search_text", "version", "created_at", "updated_at")
COMMENT_COLUMNS = ("id", "ticket_id", "author_id", "body", "is_public", "via", "created_at")
EVENT_COLUMNS = ("id", "ticket_id", "at", "actor_id", "actor_label", "kind", "before", "after")


def seed_tickets(session, n: int, *, rng: random.Random | None = None,
                 progress: Callable[[str], None] | None = None, days: int = 365) -> int:
    """Insert `n` synthetic tickets with comments and events; returns the number inserted."""
    rng = rng or random.Random(1)
    say = progress or (lambda _msg: None)
    ensure_categories(session)
    session.commit()
    orgs, staff = _ensure_people(session, rng)
    orgs = [o for o in orgs if o[3]] or orgs
    categories = {c.code: c.id for c in session.scalars(select(Category))}
    dialect = session.get_bind().dialect.name
    next_ids = {name: (session.scalar(select(func.max(model.id))) or 0) + 1
                for name, model in (("tickets", Ticket), ("comments", Comment), ("ticket_events", TicketEvent))}
    now = utcnow()
    # Older tickets are rarer: the rollout grew over the year.
    done = 0
    while done < n:
        size = min(CHUNK, n - done)
        tickets, comments, events = [], [], []
        for _ in range(size):
            tid = next_ids["tickets"]
            next_ids["tickets"] += 1
            org_id, role, org_name, requesters = orgs[rng.randrange(len(orgs))]
            age_days = days * (rng.random() ** 1.6)
            created = now - dt.timedelta(days=age_days, seconds=rng.randrange(3600))
            category = _pick_category(rng, role)
            subject, body = make_text(rng, category, role, org_name)
            priority = rng.choices(("P1", "P2", "P3", "P4"), (3, 15, 60, 22))[0]
            channel = rng.choices(("phone", "web", "email", "api"), (45, 35, 18, 2))[0]
            status = _status_for(rng, age_days)
            assignee = rng.choice(staff) if status != "new" or rng.random() < 0.2 else None
            tier = "L1"
            if status == "escalated" or (status in ("resolved", "closed") and rng.random() < 0.08):
                tier = rng.choices(("L2", "dev"), (4, 1))[0]
            first_due = created + dt.timedelta(hours=RESPONSE_HOURS[priority])
            res_due = created + dt.timedelta(hours=RESOLUTION_HOURS[priority])
            first_resp = created + dt.timedelta(minutes=rng.randint(1, 600)) if status != "new" else None
            resolved = closed = None
            if status in ("resolved", "closed"):
                resolved = created + dt.timedelta(hours=rng.uniform(0.1, 96))
                if resolved > now:
                    resolved = now
                if status == "closed":
                    closed = min(now, resolved + dt.timedelta(days=rng.uniform(0, 7)))
            sla_state = None
            if status in ("new", "open", "escalated"):
                sla_state = "breached" if now > res_due else (
                    "at_risk" if now > res_due - (res_due - created) * 0.2 else "ok")
            requester = rng.choice(requesters) if requesters and rng.random() > 0.03 else None
            texts = [subject, body]
            last = created
            if status != "new" and rng.random() < 0.45:
                for k in range(rng.randint(1, 3)):
                    last = last + dt.timedelta(minutes=rng.randint(5, 900))
                    if last > now:
                        last = now
                    if k == 1 and requester:
                        author, c_body, public = requester, rng.choice(REQUESTER_REPLIES), True
                    elif rng.random() < 0.3:
                        author, c_body, public = assignee or rng.choice(staff), rng.choice(NOTES), False
                    else:
                        author, c_body, public = assignee or rng.choice(staff), rng.choice(REPLIES), True
                    cid = next_ids["comments"]
                    next_ids["comments"] += 1
                    comments.append((cid, tid, author, c_body, public, "web", last))
                    texts.append(c_body)
                    events.append((next_ids["ticket_events"], tid, last, author, "seed",
                                   "reply" if public else "note", None, None))
                    next_ids["ticket_events"] += 1
            events.append((next_ids["ticket_events"], tid, created, requester, "seed", "created", None, channel))
            next_ids["ticket_events"] += 1
            if status != "new":
                events.append((next_ids["ticket_events"], tid, first_resp or created, assignee, "seed",
                               "status", "new", "open" if status in ("open", "pending", "escalated") else status))
                next_ids["ticket_events"] += 1
            tickets.append((tid, subject, body, requester, org_id, role, channel, categories.get(category),
                            priority, status, tier, assignee, first_due, res_due, first_resp, resolved, closed,
                            sla_state, rng.randint(60, 900) if channel == "phone" else None,
                            bool(channel == "phone" and status in ("resolved", "closed") and rng.random() < 0.4),
                            rng.choice((3, 4, 4, 5, 5)) if status == "closed" and rng.random() < 0.2 else None,
                            normalize("\n".join(texts)), 1, created, max(last, closed or resolved or created)))
        _write(session, dialect, "tickets", TICKET_COLUMNS, tickets)
        _write(session, dialect, "comments", COMMENT_COLUMNS, comments)
        _write(session, dialect, "ticket_events", EVENT_COLUMNS, events)
        session.commit()
        done += size
        say(f"tickets {done:,}/{n:,}")
    if dialect == "postgresql":
        for table in ("tickets", "comments", "ticket_events"):
            session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                 f"(SELECT max(id) FROM {table}))"))
        session.commit()
        session.execute(text("ANALYZE tickets"))
        session.commit()
    return done


def _write(session, dialect: str, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    if not rows:
        return
    if dialect == "postgresql":
        raw = session.connection().connection.dbapi_connection
        with raw.cursor() as cur:
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    model_table = {"tickets": Ticket, "comments": Comment, "ticket_events": TicketEvent}[table].__table__
    session.execute(insert(model_table), [dict(zip(columns, row)) for row in rows])

