"""Demo tickets for the demo organisations, made through the service so every event exists."""
from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import func, select

from helpdesk.accounts.models import Organisation, User
from helpdesk.audit import Actor
from helpdesk.common import utcnow
from helpdesk.tickets import service
from helpdesk.tickets.models import Comment, Macro, Ticket, TicketEvent
from helpdesk.tickets.seed import REPLIES, make_text

#: Hand-written cases first (they show search, escalation, notes); the rest come from the seed templates.
CASES = [
    ("chiyoda@city.example.jp", "login", "ログインができません", "初期パスワードを入力すると「IDまたはパスワードが違います」と表示され、ログインができません。", "P2", "phone"),
    ("clinic@chiyoda-naika.example.jp", "delivery", "納品予定日が表示されない", "希望数量を登録しましたが、納品予定日が空欄のままです。", "P3", "web"),
    ("logistics@east-medical.example.jp", "delivery", "配送先住所の変更について", "医療機関から移転の連絡があり、配送先住所を変更したいです。", "P2", "email"),
    ("minato@hospital.example.jp", "vaccination_records", "接種記録のCSV取込でエラー", "CSVファイルを取り込むと3行目でエラー E1023 になります。", "P2", "web"),
    ("kanda@kodomo.example.jp", "password", "パスワード再設定メールが届かない", "再設定メールが届きません。迷惑メールフォルダも確認しました。", "P3", "phone"),
    ("yokohama@city.example.jp", "allocation", "割当数量の追加申請", "管内の接種希望者が増えたため、割当数量を追加で申請したいです。", "P2", "email"),
    ("naniwa@clinic.example.jp", "system_error", "保存時にシステムエラー", "保存ボタンを押すと500エラーが表示されます。Edge を使っています。", "P1", "phone"),
    ("kansai@yakuhin.example.jp", "delivery", "Delivery completion cannot be saved", "When I record a completed delivery the screen shows an error. Please help.", "P3", "web"),
    ("shibuya@city.example.jp", "browser", "LGWAN端末で画面が崩れる", "LGWAN端末のブラウザで開くとボタンが表示されません。", "P3", "web"),
    ("clinic@chiyoda-naika.example.jp", "disposal", "期限切れワクチンの廃棄報告", "有効期限が切れたバイアルを廃棄したので報告方法を教えてください。", "P4", "web"),
]

MACROS = [
    ("ロック解除のご案内", "{requester_name} 様\n\nお問い合わせ（{ref}）の件、アカウントのロックを解除しました。"
     "再度ログインをお試しください。\n\nVDSヘルプデスク {agent_name}", "resolved", "login"),
    ("パスワード再設定の案内", "{requester_name} 様\n\nパスワード再設定の手順はマニュアル「パスワードを忘れた場合」をご覧ください。\n\n{agent_name}",
     "pending", "password"),
    ("調査中のお知らせ", "{requester_name} 様\n\n{ref} について担当部署で確認しております。今しばらくお待ちください。", None, None),
]


def load_demo_tickets(session) -> int:
    """Create ~80 demo tickets with replies, notes, escalations, a merge and links (once)."""
    if session.scalar(select(func.count(Ticket.id))):
        return 0
    service.ensure_categories(session)
    rng = random.Random(7)
    users = {u.email: u for u in session.scalars(select(User))}
    agents = [u for u in users.values() if u.has_role("agent")]
    specialist = next((u for u in users.values() if u.has_role("specialist")), agents[0] if agents else None)
    requesters = [u for u in users.values() if u.organisation_id is not None]
    if not agents or not requesters:
        return 0
    for title, body, status, category in MACROS:
        cat = service.category_by_code(session, category) if category else None
        session.add(Macro(title=title, body=body, set_status=status, set_category_id=cat.id if cat else None))
    session.commit()
    now = utcnow()
    made: list[Ticket] = []
    cases = list(CASES)
    while len(cases) < 80:
        requester = rng.choice(requesters)
        org = session.get(Organisation, requester.organisation_id)
        category = rng.choice(["login", "password", "browser", "allocation", "delivery", "vaccination_records",
                               "disposal", "data_correction", "system_error", "other"])
        subject, body = make_text(rng, category, org.kind, org.name)
        cases.append((requester.email, category, subject, body, rng.choice(["P2", "P3", "P3", "P4"]),
                      rng.choice(["phone", "web", "email"])))
    for i, (email, category, subject, body, priority, channel) in enumerate(cases):
        requester = users[email]
        created = now - dt.timedelta(days=rng.uniform(0.05, 30) if i >= len(CASES) else i * 0.3 + 0.1)
        ticket = service.create_ticket(session, actor=Actor(requester.id, requester.email), subject=subject,
                                       body=body, channel=channel, requester_id=requester.id,
                                       category=category, priority=priority, created_at=created)
        agent = rng.choice(agents)
        actor = Actor.for_user(agent)
        fate = i % 8 if i >= len(CASES) else [1, 0, 2, 3, 4, 3, 5, 1, 0, 6][i]
        if fate >= 1:
            service.assign(session, ticket.id, agent.id, actor)
            service.add_comment(session, ticket.id, rng.choice(REPLIES), actor, public=True)
        if fate in (2, 5):
            service.add_comment(session, ticket.id, "先方に電話で状況を確認済み。再現手順を記録。", actor, public=False)
        if fate == 3 and specialist:
            service.escalate(session, ticket.id, "L2", "設定の確認が必要なため専門担当へ", actor)
            service.add_comment(session, ticket.id, "L2で調査します。", Actor.for_user(specialist), public=False)
        if fate == 4:
            service.change_status(session, ticket.id, "pending", actor)
            service.add_comment(session, ticket.id, "ありがとうございます。試してみます。",
                                Actor(requester.id, requester.email), public=True)
        if fate in (5, 6):
            service.change_status(session, ticket.id, "resolved", actor)
        if fate == 7:
            service.change_status(session, ticket.id, "resolved", actor)
            service.change_status(session, ticket.id, "closed", actor)
        if rng.random() < 0.15:
            service.add_tag(session, ticket.id, rng.choice(["障害", "要フォロー", "FAQ候補"]), actor)
        _spread_times(session, ticket, created, now)
        made.append(ticket)
    # One duplicate merged into the first ticket, and a pair of related tickets.
    first = made[0]
    dup = service.create_ticket(session, actor=Actor.system("demo"), subject="ログインできない（再度の電話）",
                                body="先ほど電話した件です。まだログインできません。", channel="phone",
                                requester_id=first.requester_id, category="login", priority="P2",
                                created_at=now - dt.timedelta(hours=2))
    service.merge_tickets(session, dup.id, first.id, Actor.for_user(agents[0]))
    service.link_tickets(session, made[1].id, made[2].id, Actor.for_user(agents[0]))
    session.commit()
    return len(made) + 1


def _spread_times(session, ticket: Ticket, created: dt.datetime, now: dt.datetime) -> None:
    """Space the ticket's events and comments after its creation time (they were made just now)."""
    events = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)).all()
    comments = {c.id: c for c in session.scalars(select(Comment).where(Comment.ticket_id == ticket.id))}
    # A desk answers within hours and settles most cases within a day or three, not over the ticket's
    # whole age: otherwise every demo ticket would miss its SLA and the monthly report would read 0 %.
    age = (now - created).total_seconds()
    span = max(min(age * 0.8, 3600 * (2 + 18 * (ticket.id % 7) / 6)), 60)
    step = span / max(len(events), 1)
    for n, event in enumerate(events):
        event.at = created + dt.timedelta(seconds=step * n)
        comment_id = (event.detail or {}).get("comment_id")
        if comment_id in comments:
            comments[comment_id].created_at = event.at
    staff_replies = [c.created_at for c in comments.values()
                     if c.is_public and c.author_id is not None and c.author_id != ticket.requester_id]
    if ticket.first_response_at and staff_replies:
        ticket.first_response_at = min(staff_replies)
    if ticket.resolved_at:
        ticket.resolved_at = max(e.at for e in events if e.kind == "status") if any(
            e.kind == "status" for e in events) else ticket.resolved_at
    session.commit()
