"""import-tickets (per-line errors, idempotent re-import), seed, demo tickets, auto-close."""
import datetime as dt
import json
import random

from sqlalchemy import func, select

from helpdesk.accounts.models import Organisation
from helpdesk.audit import Actor
from helpdesk.tickets import queue, service
from helpdesk.tickets.cli import import_tickets, import_tickets_cli
from helpdesk.tickets.models import Comment, Ticket, TicketEvent


def _line(**kw):
    base = {"external_id": "E1", "subject": "ログインできない", "body": "初期パスワードが通りません", "org_code": "999001",
            "org_kind": "municipality", "channel": "phone", "created_at": "2026-09-01T09:00:00+09:00"}
    base.update(kw)
    return json.dumps({k: v for k, v in base.items() if v is not ...}, ensure_ascii=False)


def test_import_reports_errors_by_line_and_imports_valid_lines(db, make_user, make_org):
    org = make_org(code="131016", kind="municipality")
    user = make_user(org=org, email="req@city.example.jp")
    lines = [
        _line(external_id="A1", requester_email="REQ@city.example.jp", category="login", priority="P2", extra="ignored"),
        "{not json",
        _line(external_id="A2", channel="fax"),
        _line(external_id="A3", created_at="2026-13-40"),
        _line(external_id="A4", body=...),
        _line(external_id="A5", org_kind="hospital"),
        _line(external_id="A6", category="nope"),
        "[1, 2]",
        "",
        _line(external_id="A7", org_code="NEWCODE", org_kind="wholesaler", status="resolved",
              resolved_at="2026-09-02T10:00:00+09:00"),
        _line(external_id="A8", created_at="2026-09-01T09:00:00", requester_email="ghost@example.jp"),
    ]
    summary = import_tickets(db.session, lines)
    errors = dict(summary.errors)
    assert sorted(errors) == [2, 3, 4, 5, 6, 7, 8]
    assert "JSON" in errors[2] and "fax" in errors[3] and "created_at" in errors[4]
    assert "body" in errors[5] and "hospital" in errors[6] and "nope" in errors[7]
    assert summary.created == 3 and summary.organisations_created == 2  # 999001 and NEWCODE
    assert [n for n, _ in summary.warnings] == [11]
    a1 = db.session.scalar(select(Ticket).where(Ticket.external_id == "A1"))
    assert a1.requester_id == user.id and a1.role == "municipality" and a1.priority == "P2"
    assert a1.category.code == "login"
    assert a1.created_at == dt.datetime(2026, 9, 1, 0, 0, tzinfo=dt.timezone.utc)  # preserved
    assert "初期パスワード" in a1.search_text
    kinds = db.session.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == a1.id)).all()
    assert kinds == ["created"]
    a7 = db.session.scalar(select(Ticket).where(Ticket.external_id == "A7"))
    assert a7.status == "resolved" and a7.role == "wholesaler" and a7.requester_id is None
    new_org = db.session.scalar(select(Organisation).where(Organisation.code == "NEWCODE"))
    assert new_org.kind == "wholesaler" and new_org.name == "NEWCODE"
    a8 = db.session.scalar(select(Ticket).where(Ticket.external_id == "A8"))
    assert a8.created_at == a1.created_at  # no offset = Japan time
    # Imported tickets are searchable like live ones.
    from helpdesk.accounts.models import User

    staff = User(email="s@helpdesk.example.jp", name="s", roles="agent")
    db.session.add(staff)
    db.session.commit()
    refs = [t.ref for t in queue.query_tickets(db.session, staff, queue.parse_filters({"q": "ログインできない"})).items]
    assert a1.ref in refs


def test_reimport_is_idempotent_and_updates(db):
    lines = [_line(external_id="R1"), _line(external_id="R2", subject="配送")]
    first = import_tickets(db.session, lines)
    assert first.created == 2
    count = db.session.scalar(select(func.count(Ticket.id)))
    events = db.session.scalar(select(func.count(TicketEvent.id)))
    again = import_tickets(db.session, lines)
    assert again.created == 0 and again.updated == 0 and again.unchanged == 2
    assert db.session.scalar(select(func.count(Ticket.id))) == count
    assert db.session.scalar(select(func.count(TicketEvent.id))) == events
    changed = import_tickets(db.session, [_line(external_id="R2", subject="配送が遅れています", priority="P1")])
    assert changed.updated == 1 and db.session.scalar(select(func.count(Ticket.id))) == count
    r2 = db.session.scalar(select(Ticket).where(Ticket.external_id == "R2"))
    assert r2.subject == "配送が遅れています" and r2.priority == "P1" and "遅れています" in r2.search_text
    ev = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == r2.id, TicketEvent.kind == "import")).one()
    assert set(ev.detail["changed"]) == {"subject", "priority"}


def test_duplicate_external_id_in_one_file_creates_one_ticket(db):
    summary = import_tickets(db.session, [_line(external_id="D1", subject="一回目"), _line(external_id="D1", subject="二回目")])
    assert summary.created == 1
    assert db.session.scalar(select(Ticket.subject).where(Ticket.external_id == "D1")) == "二回目"


def test_import_cli(app, db, tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join([_line(external_id="C1"), "oops", _line(external_id="C2", channel="fax")]) + "\n",
                    encoding="utf-8")
    monkeypatch.setattr("helpdesk.cli.ensure_db", lambda: None)
    result = app.test_cli_runner().invoke(import_tickets_cli, [str(path), "--json"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "line 2: error" in out and "line 3: error" in out and "fax" in out
    assert '"created": 1' in out


def test_seed_tickets_realistic(db):
    n = 300
    from helpdesk.tickets.seed import seed_tickets

    made = seed_tickets(db.session, n, rng=random.Random(3))
    assert made == n
    rows = db.session.scalars(select(Ticket)).all()
    assert len(rows) == n
    assert {t.status for t in rows} >= {"closed", "open"} and all(t.search_text for t in rows)
    assert {t.role for t in rows} == {"municipality", "clinic", "wholesaler"}
    assert all(t.category_id for t in rows)
    resolved = [t for t in rows if t.status in ("resolved", "closed")]
    assert all(t.resolved_at and t.resolved_at >= t.created_at for t in resolved)
    created_events = db.session.scalar(select(func.count(TicketEvent.id)).where(TicketEvent.kind == "created"))
    assert created_events == n
    assert db.session.scalar(select(func.count(Comment.id))) > 0
    # Seeded tickets continue the id sequence: a live ticket can be created afterwards.
    t = service.create_ticket(db.session, actor=Actor.system(), subject="after seed")
    assert t.id == max(r.id for r in rows) + 1


def test_demo_tickets(db):
    from helpdesk.demo import load_demo

    load_demo(db.session)
    total = db.session.scalar(select(func.count(Ticket.id)))
    assert 70 <= total <= 90
    kinds = set(db.session.scalars(select(TicketEvent.kind)).all())
    assert {"created", "reply", "note", "escalation", "merge", "link"} <= kinds
    from helpdesk.tickets.demo import load_demo_tickets

    assert load_demo_tickets(db.session) == 0  # only once


def test_auto_close_job_is_idempotent(db, make_ticket, agent):
    from helpdesk.tickets.jobs import auto_close

    old, recent = make_ticket(), make_ticket()
    actor = Actor.for_user(agent)
    service.change_status(db.session, old.id, "resolved", actor)
    service.change_status(db.session, recent.id, "resolved", actor)
    old.resolved_at = old.resolved_at - dt.timedelta(days=10)
    db.session.commit()
    assert auto_close(7) == 1
    assert auto_close(7) == 0
    db.session.expire_all()
    assert db.session.get(Ticket, old.id).status == "closed"
    assert db.session.get(Ticket, recent.id).status == "resolved"
