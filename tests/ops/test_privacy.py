"""APPI duties: disclosure export, anonymisation on request, retention — dry runs change nothing."""
from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

from sqlalchemy import func, select

from helpdesk.audit import Actor

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32


def _person(make_org, make_user):
    org = make_org(kind="clinic", name="さくら内科クリニック")
    return make_user(org=org, name="山田 太郎", email="yamada@clinic.example.jp", phone="03-1234-5678",
                     name_kana="ヤマダ タロウ")


def _setup(db, app, make_org, make_user, make_ticket):
    from helpdesk.tickets import attachments, service

    person = _person(make_org, make_user)
    agent = make_user(roles="agent", name="受付 花子")
    own = make_ticket(requester=person, subject="山田です。ログインできません",
                      body="山田太郎です。折り返しは03-1234-5678 か yamada@clinic.example.jp へ。")
    service.add_comment(db.session, own.id, "山田様、再設定しました。", Actor(agent.id, agent.email), public=True)
    attachments.save_bytes(db.session, own, "画面.png", PNG, Actor(person.id, person.email), commit=True)
    other_user = make_user(name="佐藤 次郎")
    other = make_ticket(requester=other_user, subject="同僚の件",
                        body="山田 太郎さん（03-1234-5678）も同じ症状です。山田さんとは別の山田花子さんもです。")
    return person, own, other


def _storage(app):
    from helpdesk.ops.storage import storage_for

    return storage_for(app)


def test_anonymise_dry_run_then_real_then_idempotent(db, app, make_org, make_user, make_ticket):
    from helpdesk.accounts.models import AuditLog, User
    from helpdesk.ops import privacy
    from helpdesk.tickets.models import Attachment, Comment, Ticket

    person, own, other = _setup(db, app, make_org, make_user, make_ticket)
    stored = db.session.scalar(select(Attachment.stored_name).where(Attachment.ticket_id == own.id))
    admin = Actor(None, "admin@helpdesk.example.jp")

    report = privacy.anonymise_person(db.session, _storage(app), person.id, admin, dry_run=True)
    assert report.counts["ticket.body"] >= 2 and report.counts["attachment.deleted"] == 1
    assert set(report.tickets) == {own.ref, other.ref}
    assert all("03-1234" not in p["after"] and "山田太郎" not in p["after"] for p in report.previews)
    db.session.expire_all()
    assert db.session.get(User, person.id).name == "山田 太郎"
    assert "山田太郎" in db.session.get(Ticket, own.id).body
    assert _storage(app).read(stored) == PNG

    report = privacy.anonymise_person(db.session, _storage(app), person.id, admin)
    db.session.expire_all()
    user = db.session.get(User, person.id)
    assert user.name.startswith("匿名化済み") and user.phone is None and user.name_kana is None
    assert user.email.endswith(".invalid") and user.state == "disabled" and user.password_hash is None
    mine = db.session.get(Ticket, own.id)
    assert "山田" not in mine.subject + mine.body and "1234" not in mine.body and "yamada@" not in mine.body
    assert mine.requester_id == person.id and mine.channel == "web"  # kept for statistics
    assert all("山田" not in c.body for c in db.session.scalars(select(Comment).where(Comment.ticket_id == own.id)))
    assert "山田" not in mine.search_text
    assert _storage(app).read(stored) is None
    assert db.session.scalar(select(Attachment.filename).where(Attachment.ticket_id == own.id)) == privacy.DELETED_FILE
    theirs = db.session.get(Ticket, other.id)
    assert "山田 太郎" not in theirs.body and "1234-5678" not in theirs.body
    assert "山田花子" in theirs.body  # another person with the same surname is left alone
    row = db.session.scalar(select(AuditLog).where(AuditLog.action == "privacy.anonymised"))
    assert row is not None and row.object_id == str(person.id)
    assert "山田" not in json.dumps(row.detail, ensure_ascii=False) and "yamada" not in json.dumps(row.detail)

    again = privacy.anonymise_person(db.session, _storage(app), person.id, admin)
    assert again.counts == {} and again.tickets == []


def test_export_holds_profile_tickets_and_files(db, app, make_org, make_user, make_ticket):
    from helpdesk.ops import privacy

    person, own, other = _setup(db, app, make_org, make_user, make_ticket)
    doc, files = privacy.export_person(db.session, _storage(app), person)
    archive = zipfile.ZipFile(io.BytesIO(privacy.export_zip(doc, files)))
    data = json.loads(archive.read("person.json"))
    assert data["person"]["phone"] == "03-1234-5678" and data["person"]["organisation"]["kind"] == "clinic"
    assert [t["ref"] for t in data["tickets"]] == [own.ref]  # not the colleague's ticket
    ticket = data["tickets"][0]
    assert any("再設定" in c["body"] for c in ticket["comments"]) and ticket["events"]
    assert archive.read(ticket["attachments"][0]["file"]) == PNG
    assert "password" not in json.dumps(data["person"])


def test_export_and_anonymise_cli(db, app, make_org, make_user, make_ticket, tmp_path):
    person, own, other = _setup(db, app, make_org, make_user, make_ticket)
    runner = app.test_cli_runner()
    out = tmp_path / "p.zip"
    result = runner.invoke(args=["privacy", "export", person.email, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "person.json" in zipfile.ZipFile(out).namelist()
    result = runner.invoke(args=["privacy", "anonymise", person.email, "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["dry_run"] is True
    result = runner.invoke(args=["privacy", "anonymise", "nobody@example.jp"])
    assert result.exit_code != 0 and "no person" in result.output


def test_retention_anonymises_old_closed_tickets_once(db, app, make_org, make_user, make_ticket):
    from helpdesk.accounts.models import AuditLog
    from helpdesk.ops import privacy
    from helpdesk.tickets import attachments
    from helpdesk.tickets.models import Ticket

    person = _person(make_org, make_user)
    now = dt.datetime(2030, 4, 1, tzinfo=dt.timezone.utc)
    old = make_ticket(requester=person, body="担当の山田太郎です。電話 090-1111-2222。佐藤様にも伝えました。")
    attachments.save_bytes(db.session, old, "a.txt", "山田".encode(), Actor(person.id, person.email), commit=True)
    recent = make_ticket(requester=person, body="山田太郎です。090-1111-2222")
    still_open = make_ticket(requester=person, body="山田太郎です。090-1111-2222")
    for ticket, closed in ((old, now - dt.timedelta(days=6 * 366)), (recent, now - dt.timedelta(days=200))):
        ticket.status, ticket.closed_at = "closed", closed
    still_open.created_at = now - dt.timedelta(days=3000)
    db.session.commit()
    actor = Actor.system("retention")

    dry = privacy.apply_retention(db.session, _storage(app), 5, actor, dry_run=True, now=now)
    assert dry.tickets == [old.ref] and dry.counts["attachment.deleted"] == 1
    db.session.expire_all()
    assert "山田太郎" in db.session.get(Ticket, old.id).body

    real = privacy.apply_retention(db.session, _storage(app), 5, actor, now=now)
    assert real.tickets == [old.ref]
    db.session.expire_all()
    body = db.session.get(Ticket, old.id).body
    assert "山田" not in body and "1111" not in body and "佐藤" not in body  # names found in the text too
    assert "山田太郎" in db.session.get(Ticket, recent.id).body
    assert "山田太郎" in db.session.get(Ticket, still_open.id).body
    assert db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "privacy.retention")) == 1

    again = privacy.apply_retention(db.session, _storage(app), 5, actor, now=now)
    assert again.tickets == [] and again.counts == {}
