"""`helpdesk backup` then `helpdesk restore` into an empty database finds every ticket, event and attachment."""
from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import func, select

from helpdesk.extensions import db
from tests.ops.conftest import BACKENDS, migrate, ops_app, run_cli

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _fill(app) -> dict:
    """Committed tickets with replies, events and attachments; returns what a restore must give back."""
    from helpdesk.accounts.models import Organisation, User
    from helpdesk.audit import Actor
    from helpdesk.tickets import attachments, service
    from helpdesk.tickets.models import Attachment, Ticket, TicketEvent

    with app.app_context():
        org = Organisation(code="131016", name="千代田区", kind="municipality", prefecture="東京都")
        db.session.add(org)
        db.session.flush()
        user = User(email="taro@city.example.jp", name="山田 太郎", roles="requester", organisation_id=org.id)
        agent = User(email="agent@helpdesk.example.jp", name="受付 花子", roles="agent")
        db.session.add_all([user, agent])
        db.session.commit()
        actor, staff = Actor(user.id, user.email), Actor(agent.id, agent.email)
        for n in range(3):
            ticket = service.create_ticket(db.session, actor=actor, subject=f"ログインできません {n}",
                                           body="初期パスワードが通りません。", channel="web",
                                           requester_id=user.id, organisation_id=org.id)
            service.add_comment(db.session, ticket.id, "再設定をお願いします。", staff, public=True)
            attachments.save_bytes(db.session, ticket, f"画面{n}.png", PNG + bytes([n]), actor, commit=True)
            attachments.save_bytes(db.session, ticket, "log.txt", f"エラー {n}\n".encode(), actor, commit=True)
        expected = {
            "refs": sorted(t.ref for t in db.session.scalars(select(Ticket))),
            "events": db.session.scalar(select(func.count(TicketEvent.id))),
            "files": {row.stored_name: row.sha256 for row in db.session.scalars(select(Attachment))},
        }
        db.engine.dispose()
    return expected


@pytest.mark.parametrize("kind", BACKENDS)
def test_backup_restores_into_empty_database(kind, new_database, tmp_path):
    from helpdesk.ops.storage import storage_for
    from helpdesk.tickets.models import Attachment, Ticket, TicketEvent

    source = ops_app(new_database(kind), str(tmp_path / "up-src"))
    migrate(source)
    expected = _fill(source)
    assert len(expected["refs"]) == 3 and len(expected["files"]) == 6

    out = tmp_path / "backup"
    result = run_cli(source, ["backup", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["tickets"] == 3
    assert manifest["counts"]["ticket_events"] == expected["events"]
    assert {f["stored_name"] for f in manifest["attachments"]} == set(expected["files"])
    assert manifest["database"]["alembic_revision"]

    target = ops_app(new_database(kind), str(tmp_path / "up-dst"))
    result = run_cli(target, ["restore", str(out)])
    assert result.exit_code == 0, result.output
    with target.app_context():
        assert sorted(t.ref for t in db.session.scalars(select(Ticket))) == expected["refs"]
        assert db.session.scalar(select(func.count(TicketEvent.id))) == expected["events"]
        storage = storage_for(target)
        for row in db.session.scalars(select(Attachment)):
            data = storage.read(row.stored_name)
            assert data is not None and hashlib.sha256(data).hexdigest() == expected["files"][row.stored_name]
        assert len(expected["files"]) == db.session.scalar(select(func.count(Attachment.id)))
        db.engine.dispose()
    with source.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("kind", BACKENDS)
def test_restore_refuses_damaged_backup_and_non_empty_database(kind, new_database, tmp_path):
    source = ops_app(new_database(kind), str(tmp_path / "up-src"))
    migrate(source)
    _fill(source)
    out = tmp_path / "backup"
    assert run_cli(source, ["backup", str(out)]).exit_code == 0

    # Restoring over the live (non-empty) database is refused.
    result = run_cli(source, ["restore", str(out)])
    assert result.exit_code != 0 and "not empty" in result.output

    # A flipped byte in one attachment is found before anything is written.
    manifest = json.loads((out / "manifest.json").read_text())
    victim = out / manifest["attachments"][0]["path"]
    victim.write_bytes(victim.read_bytes()[:-1] + b"X")
    target = ops_app(new_database(kind), str(tmp_path / "up-dst"))
    result = run_cli(target, ["restore", str(out)])
    assert result.exit_code != 0 and "checksum" in result.output
    assert not (tmp_path / "up-dst").exists()
    with target.app_context():
        from sqlalchemy import inspect

        assert [t for t in inspect(db.engine).get_table_names()] == []
        db.engine.dispose()
    with source.app_context():
        db.engine.dispose()
